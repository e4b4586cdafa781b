"""int8 *compute* on CPU: every ``nn.Linear`` runs with int8 weights and dynamically
quantised int8 activations (storage is another job: :mod:`hub.quantize` only shrinks files).

What runs: each ``nn.Linear`` of the pipeline's model becomes an :class:`Int8Linear`
holding its weight as int8 with one symmetric scale per output row (absmax / 127, the
very numbers :func:`hub.quantize.quantize_state_dict` stores, so an int8-stored folder
computes with exactly its stored weights), packed once for the CPU's quantized engine.
A call quantises its input per tensor (dynamic: scale and zero point from that batch's
min/max), multiplies in int8 with int32 accumulation and returns float32:
``torch.ops.quantized.linear_dynamic``, the kernel behind torch's own
``torch.ao.quantization.quantize_dynamic`` (fbgemm, or oneDNN, which uses AMX where the
CPU has it). Attention's softmax(q kᵀ) v, norms, embeddings, convolutions and tied output
heads (``F.linear`` on an embedding matrix) stay in float32.

Why this kernel path and not another (measured on the 2-core AMD EPYC Zen 4 development
machine, AVX-512 VNNI, no AMX, torch 2.11, median of interleaved repeats, shared machine,
± 20 %; a MiniLM QKV projection, (1024 tokens x 384) @ (384 x 1152), and a BERT-base MLP
(1024 x 768) @ (768 x 3072)):

=====================================================  ==========  ==========
kernel                                                 MiniLM QKV  BERT-base
=====================================================  ==========  ==========
float32, oneDNN fused linear (Hub's float path)        24-40 ms    117 ms
``quantized.linear_dynamic``, ``x86`` engine (fbgemm)  8-16 ms     51 ms
same, ``onednn`` engine (no AMX on this CPU)           30-38 ms    52-62 ms
torchao 0.18 ``Int8DynamicActivationInt8WeightConfig``  110 ms      —
``torch._int_mm`` + per-row activation quantisation    77 ms       —
=====================================================  ==========  ==========

torchao's CPU int8 path is made for ``torch.compile``; in eager mode it is 4-10x slower
than fbgemm here, so it is not used (and not a dependency). The engine is the first of
``x86``, ``fbgemm``, ``onednn``, ``qnnpack`` (ARM) that this torch build supports;
``HUB_INT8_ENGINE`` picks another (e.g. ``onednn`` on an AMX Xeon, to measure). On CPUs
with VNNI or AMX (``vpdpbusd``: int32 accumulation, no int16 saturation) activations use
the full 8 bits; without them they use 7 (``reduce_range``), as torch does by default.

Consequences to know:

* Activations are quantised per tensor, so a text's scores can move in the third decimal
  with the other texts of its batch (argmaxes agree with float32 on >= 99.5 % of the
  held-out reviews; tests/text/test_int8_compute.py holds it to that).
* CPU only: torch has no CUDA kernel for dynamic int8. ``quantize="int8"`` on CUDA is
  refused with an error saying so; the default (``None``/``"auto"``) computes in float
  there and says why in ``pipe.metadata["compute"]["reason"]``.
* Saving writes the storage format (float, or int8 rows with ``save(quantize=True)``),
  never torch's packed parameters: :class:`Int8Linear`'s state dict is an ``nn.Linear``'s.
* Training needs float weights: ``fine_tune`` / ``pretrain`` turn the layers back into
  float ``nn.Linear`` holding the same (dequantised) weights first, with a warning
  (:func:`dequantize_pipeline`); the pipeline computes in float afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from hub.errors import InvalidInputError, NotSupportedError

logger = logging.getLogger(__name__)

#: what ``quantize=`` takes: None/"auto" (int8 compute for an int8-stored folder on CPU),
#: "int8"/True (int8 compute), False/"float" (float compute)
QUANTIZE_CHOICES = (None, "auto", "int8", True, False, "float")
ENGINE_ENV = "HUB_INT8_ENGINE"
ENGINE_PREFERENCE = ("x86", "fbgemm", "onednn", "qnnpack")


# -- the CPU ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def choose_engine() -> str:
    """The quantized engine to pack for: ``HUB_INT8_ENGINE`` if set (checked), else the first
    of :data:`ENGINE_PREFERENCE` this torch build supports.

    Raises:
        NotSupportedError: this torch build has no quantized CPU engine, or the variable
            names one it lacks.
    """
    supported = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    asked = os.environ.get(ENGINE_ENV, "").strip().lower()
    if asked:
        if asked not in supported:
            raise NotSupportedError(f"{ENGINE_ENV}={asked!r} is not a quantized engine of this torch build; "
                                    f"it has {', '.join(supported) or 'none'}. Unset it or pick one of those.")
        return asked
    for engine in ENGINE_PREFERENCE:
        if engine in supported:
            return engine
    raise NotSupportedError("This torch build has no quantized CPU engine (fbgemm, onednn or qnnpack), so "
                            "int8 compute is unavailable; load with quantize=False (float compute).")


def cpu_capability() -> dict[str, Any]:
    """What the CPU offers int8 matmuls: torch's vector capability and the int8 dot-product
    instructions found in ``/proc/cpuinfo`` (``amx_int8``, ``avx512_vnni``, ``avx_vnni``,
    ARM ``asimddp``/``i8mm``), summed up as ``"cpu"`` (e.g. ``"AVX512 + VNNI"``)."""
    try:
        vector = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        vector = "unknown"
    flags = _cpu_flags()
    int8 = [f for f in ("amx_int8", "amx_tile", "avx512_vnni", "avx_vnni", "asimddp", "i8mm") if f in flags]
    extra = ("AMX" if "amx_int8" in flags else "VNNI" if {"avx512_vnni", "avx_vnni"} & flags
             else "DOTPROD" if {"asimddp", "i8mm"} & flags else "")
    return {"cpu": f"{vector} + {extra}" if extra else str(vector), "int8_flags": int8}


def full_range_activations() -> bool:
    """Whether activations may use all 8 bits: with VNNI/AMX (or on ARM) the int8 products
    accumulate in int32; otherwise x86 sums pairs in int16 (``vpmaddubsw``), which can
    saturate, so torch's 7-bit ``reduce_range`` is kept."""
    flags = _cpu_flags()
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags) or not ({"avx2", "sse4_2"} & flags)


@contextlib.contextmanager
def _engine(engine: str) -> Iterator[None]:
    """Pack weights for ``engine`` without changing the process-wide choice."""
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        yield
    finally:
        torch.backends.quantized.engine = before


# -- the layer -------------------------------------------------------------------------
def _int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 rows and per-row fp32 scales, the same numbers :mod:`hub.quantize` stores."""
    from hub.quantize import SCALE_SUFFIX, quantize_state_dict

    rows = quantize_state_dict({"w": weight.detach().float().cpu()}, min_numel=0)
    return rows["w"], rows["w" + SCALE_SUFFIX]


class Int8Linear(nn.Module):
    """An ``nn.Linear`` computing with int8 weights and dynamically quantised int8 inputs
    (``torch.ops.quantized.linear_dynamic``); float32 in, float32 out (other float inputs
    are cast, and the result cast back).

    It holds no parameters (the weights are packed for the engine, the bias inside them);
    its state dict is an ``nn.Linear``'s (``weight`` dequantised, ``bias``), so saving and
    ``load_state_dict`` see float weights. ``weight``/``bias`` read as float tensors for
    code that inspects a layer (slow: they are unpacked on each read).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, *, engine: str,
                 reduce_range: bool) -> None:
        super().__init__()
        self.out_features, self.in_features = (int(n) for n in weight.shape)
        self.engine, self.reduce_range = engine, bool(reduce_range)
        self._pack(weight, bias)

    def _pack(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        rows, scales = _int8_rows(weight)
        qweight = torch._make_per_channel_quantized_tensor(rows, scales.double(),
                                                           torch.zeros_like(scales, dtype=torch.long), 0)
        bias = None if bias is None else bias.detach().float().cpu().contiguous()
        with _engine(self.engine):
            self._packed = torch.ops.quantized.linear_prepack(qweight, bias)

    @classmethod
    def from_linear(cls, layer: nn.Linear, *, engine: str, reduce_range: bool) -> Int8Linear:
        """The int8 layer computing what ``layer`` computes (its weights rounded to int8 rows)."""
        return cls(layer.weight, layer.bias, engine=engine, reduce_range=reduce_range)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            return torch.ops.quantized.linear_dynamic(x.float(), self._packed, self.reduce_range).to(x.dtype)
        return torch.ops.quantized.linear_dynamic(x, self._packed, self.reduce_range)

    def unpacked(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(float32 weight, bias) as stored: the int8 rows times their scales."""
        qweight, bias = torch.ops.quantized.linear_unpack(self._packed)
        return qweight.dequantize(), bias

    @property
    def weight(self) -> torch.Tensor:
        return self.unpacked()[0]

    @property
    def bias(self) -> torch.Tensor | None:
        return self.unpacked()[1]

    def to_linear(self) -> nn.Linear:
        """A float ``nn.Linear`` with the same (dequantised) weights."""
        weight, bias = self.unpacked()
        layer = nn.Linear(self.in_features, self.out_features, bias=bias is not None)
        with torch.no_grad():
            layer.weight.copy_(weight)
            if bias is not None:
                layer.bias.copy_(bias)
        return layer

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        weight, bias = self.unpacked()
        destination[prefix + "weight"] = weight
        if bias is not None:
            destination[prefix + "bias"] = bias

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict, strict: bool,
                              missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
        weight = state_dict.get(prefix + "weight")
        if weight is None:
            missing_keys.append(prefix + "weight")
            return
        _, old_bias = self.unpacked()
        bias = state_dict.get(prefix + "bias")
        if old_bias is not None and bias is None:
            missing_keys.append(prefix + "bias")
        self._pack(weight, bias)

    def __getstate__(self) -> dict[str, Any]:  # copy.deepcopy / pickle: float weights, packed again
        state = self.__dict__.copy()
        state["_packed"] = self.unpacked()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weight, bias = state.pop("_packed")
        super().__setstate__(state)
        self._pack(weight, bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, engine={self.engine}, "
                f"activations={'7' if self.reduce_range else '8'}-bit dynamic")


# -- whole models ----------------------------------------------------------------------
def _linear_slots(module: nn.Module) -> Iterator[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute, child) for every submodule, parents before children, skipping
    the inside of ``nn.MultiheadAttention`` (it reads ``out_proj.weight`` itself)."""
    for parent in module.modules():
        if isinstance(parent, nn.MultiheadAttention):
            continue
        for name, child in parent.named_children():
            yield parent, name, child


def quantize_module(module: nn.Module, *, engine: str | None = None, reduce_range: bool | None = None) -> int:
    """Replace every ``nn.Linear`` inside ``module`` by an :class:`Int8Linear`, in place.

    Args:
        module: a model on the CPU (its Linear weights are read as float32).
        engine: the quantized engine (default :func:`choose_engine`).
        reduce_range: 7-bit activations (default: unless the CPU has VNNI/AMX).

    Returns:
        How many layers were replaced.
    """
    engine = engine or choose_engine()
    reduce_range = (not full_range_activations()) if reduce_range is None else reduce_range
    slots = [(p, n, c) for p, n, c in _linear_slots(module) if isinstance(c, nn.Linear)]
    for parent, name, child in slots:
        if child.weight.device.type != "cpu":
            raise NotSupportedError(f"int8 compute runs on the CPU; layer {name!r} is on {child.weight.device}. "
                                    "Load the model with device='cpu'.")
        setattr(parent, name, Int8Linear.from_linear(child, engine=engine, reduce_range=reduce_range))
    return len(slots)


def dequantize_module(module: nn.Module) -> int:
    """Turn every :class:`Int8Linear` back into a float32 ``nn.Linear`` with the same
    (dequantised) weights, in place; returns how many."""
    slots = [(p, n, c) for p, n, c in _linear_slots(module) if isinstance(c, Int8Linear)]
    for parent, name, child in slots:
        setattr(parent, name, child.to_linear())
    return len(slots)


def count_int8_layers(module: nn.Module) -> int:
    """How many :class:`Int8Linear` layers ``module`` holds (0: it computes in float)."""
    return sum(isinstance(m, Int8Linear) for m in module.modules())


# -- the decision and the pipeline -------------------------------------------------------
def check_quantize(quantize: Any) -> str:
    """``quantize=`` normalised to ``"auto"``, ``"int8"`` or ``"float"``.

    Raises:
        InvalidInputError: any other value (named, with the accepted ones).
    """
    if quantize is None or quantize == "auto":
        return "auto"
    if quantize is True or quantize == "int8":
        return "int8"
    if quantize is False or quantize == "float":
        return "float"
    raise InvalidInputError(f"quantize must be 'int8' (or True), False (float compute) or None/'auto' (int8 "
                            f"compute for a model stored as int8, on CPU), got {quantize!r:.60}.")


def check_quantize_request(quantize: Any, *, device: torch.device, dtype: torch.dtype | None) -> str:
    """:func:`check_quantize`, and refuse what cannot be honoured before any download:
    ``"int8"`` on a GPU, or with a dtype other than float32.

    Raises:
        NotSupportedError: int8 compute asked for on a non-CPU device.
        InvalidInputError: int8 compute with dtype bfloat16/float16/float64.
    """
    mode = check_quantize(quantize)
    if mode == "int8" and device.type != "cpu":
        raise NotSupportedError(f"quantize='int8' runs on the CPU only (torch has no {device.type} kernel for "
                                "dynamically quantised int8 matmuls); use device='cpu', or dtype='bfloat16' "
                                f"on {device.type} for a faster float model.")
    if mode == "int8" and dtype is not None and dtype != torch.float32:
        raise InvalidInputError(f"quantize='int8' computes with float32 activations around int8 matmuls; it "
                                f"cannot be combined with dtype={str(dtype).removeprefix('torch.')!r}. Pass one "
                                "of them.")
    return mode


def float_compute(reason: str, dtype: torch.dtype | None = None) -> dict[str, Any]:
    """``metadata["compute"]`` of a float model."""
    name = str(dtype or torch.float32).removeprefix("torch.")
    return {"weights": name, "activations": name, "reason": reason}


def apply_quantize(pipe: Any, quantize: Any = None, *, stored_int8: bool = False) -> Any:
    """Make ``pipe`` compute as ``quantize`` asks and say so in ``pipe.metadata["compute"]``:
    what ``hub.load`` and ``hub.create`` call once the pipeline is built.

    Args:
        pipe: a :class:`hub.pipeline.Pipeline` (its ``model``, ``device``, ``dtype``).
        quantize: ``"int8"``/True: int8 compute; False/``"float"``: float; None/``"auto"``:
            int8 when the folder stores int8 weights (``stored_int8``), the pipeline is on the
            CPU and no dtype was asked for, float otherwise.
        stored_int8: the folder was saved with ``save(quantize=True)``.

    Returns:
        ``pipe`` (changed in place).

    Raises:
        NotSupportedError: int8 asked for on a GPU, or for a model without Linear layers.
        InvalidInputError: a bad ``quantize`` value, or int8 with a non-float32 dtype.
    """
    device, dtype = torch.device(getattr(pipe, "device", "cpu")), getattr(pipe, "dtype", None)
    mode = check_quantize_request(quantize, device=device, dtype=dtype)
    model = getattr(pipe, "model", None)
    if mode == "float":
        pipe.metadata["compute"] = float_compute("quantize=False", dtype)
        return pipe
    if mode == "auto":
        reason = ("auto: the weights are stored as float" if not stored_int8
                  else f"auto: stored as int8, but dynamic int8 matmuls run on the CPU only, not {device.type}"
                  if device.type != "cpu"
                  else f"auto: stored as int8, but dtype={str(dtype).removeprefix('torch.')} was asked for"
                  if dtype is not None else "")
        if reason:
            pipe.metadata["compute"] = float_compute(reason, dtype)
            return pipe
    if not isinstance(model, nn.Module) or not any(isinstance(m, nn.Linear) for m in model.modules()):
        if mode == "auto":
            pipe.metadata["compute"] = float_compute("auto: the model has no Linear layers", dtype)
            return pipe
        raise NotSupportedError(f"{getattr(pipe, 'task', 'this task')}: quantize='int8' runs Linear layers in "
                                f"int8, and this model ({type(model).__name__}) has none; load it without "
                                "quantize=.")
    engine = choose_engine()
    reduce_range = not full_range_activations()
    count = quantize_module(model, engine=engine, reduce_range=reduce_range)
    pipe.metadata["compute"] = {
        "weights": "int8", "activations": f"dynamic int8 (per tensor, {'7' if reduce_range else '8'}-bit)",
        "engine": engine, "kernel": "torch.ops.quantized.linear_dynamic", **cpu_capability(),
        "linear_layers": count, "threads": torch.get_num_threads(),
        "reason": "quantize='int8'" if mode == "int8" else "auto: the weights are stored as int8, on CPU",
    }
    return pipe


def dequantize_pipeline(pipe: Any, why: str = "") -> bool:
    """Turn an int8-computing pipeline back into float32 (the same, dequantised weights: what
    ``quantize=False`` would have loaded) and update ``pipe.metadata["compute"]``.

    Args:
        pipe: any pipeline.
        why: what needs float weights (e.g. ``"fine_tune"``), for the warning.

    Returns:
        Whether anything was changed.
    """
    model = getattr(pipe, "model", None)
    if not isinstance(model, nn.Module) or not count_int8_layers(model):
        return False
    count = dequantize_module(model)
    if why:
        logger.warning("%s: %s needs float weights; %d int8 Linear layers were turned back into float32 ones "
                       "(same weights, dequantised). The pipeline now computes in float.",
                       getattr(pipe, "task", "pipeline"), why, count)
    pipe.metadata["compute"] = float_compute(f"dequantized for {why}" if why else "dequantized")
    return True
