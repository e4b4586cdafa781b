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

Outlier columns: transformer hidden states carry a few "massive" channels (all-MiniLM-L6-v2's
channel 99 reaches 28 where 99.9 % of values are below 5), which with one scale per tensor
would take most of the 256 levels. For text models a probe run on generic English
(:data:`PROBE_TEXTS`, at load) finds each layer's outlier input columns, and
:class:`Int8Linear` spreads each over a few columns (``x_j / n`` repeated ``n`` times, the
weight's column repeated: the same product, an ``n``-times smaller range; at most 1/16 more
columns). On the shipped default this took the argmax agreement with float32 on the 1,000
held-out reviews from 98.8 % to 99.5 % and all-MiniLM-L6-v2's worst embedding cosine on 200
real reviews from 0.986 to 0.995, for one extra pass over each layer's input. Other
modalities get plain per-tensor quantisation (no probe).

Consequences to know:

* Activations are quantised per tensor, so an input's scores can move in the third decimal
  with the other inputs of its batch (tests/text/test_int8_default.py holds the shipped
  default to >= 99.5 % argmax agreement with float32 on the held-out reviews).
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
                 reduce_range: bool, split: dict[int, int] | None = None) -> None:
        super().__init__()
        self.out_features, self.in_features = (int(n) for n in weight.shape)
        self.engine, self.reduce_range = engine, bool(reduce_range)
        self.set_split(split or {}, weight, bias)

    def set_split(self, split: dict[int, int], weight: torch.Tensor | None = None,
                  bias: torch.Tensor | None = None) -> None:
        """Spread each outlier input column ``j`` over ``split[j]`` columns (see :func:`outlier_split`):
        the input's column is divided by that count and repeated, the weight's column repeated,
        so the product is the same while the per-tensor activation range shrinks. Each row's
        int8 values and scale are unchanged (the repeated columns hold the same values)."""
        if weight is None:
            weight, bias = self.unpacked()
        split = {int(j): int(n) for j, n in split.items() if int(n) > 1}
        self.split = split
        if split:
            divide = torch.ones(self.in_features)
            repeats = []
            for j, n in sorted(split.items()):
                divide[j] = n
                repeats += [j] * (n - 1)
            self._scale, self._repeats = 1 / divide, torch.tensor(repeats, dtype=torch.long)
        else:
            self._scale = self._repeats = None
        self._pack(weight, bias)

    def _pack(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        weight = weight.detach().float().cpu()
        if self._repeats is not None:
            weight = torch.cat([weight, weight.index_select(1, self._repeats)], 1)
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
        dtype = x.dtype
        if dtype != torch.float32:
            x = x.float()
        if self._repeats is not None:  # outlier columns spread over several (same product, smaller range)
            width = self.in_features
            spread = x.new_empty(*x.shape[:-1], width + self._repeats.numel())  # one pass over x, no cat
            torch.mul(x, self._scale, out=spread[..., :width])
            spread[..., width:] = spread[..., :width].index_select(-1, self._repeats)
            x = spread
        y = torch.ops.quantized.linear_dynamic(x, self._packed, self.reduce_range)
        return y if dtype == torch.float32 else y.to(dtype)

    def unpacked(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(float32 weight, bias) as stored: the int8 rows times their scales."""
        qweight, bias = torch.ops.quantized.linear_unpack(self._packed)
        return qweight.dequantize()[:, :self.in_features], bias

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
        spread = f", outlier columns spread={sorted(self.split.items())}" if self.split else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, engine={self.engine}, "
                f"activations={'7' if self.reduce_range else '8'}-bit dynamic{spread}")


# -- outlier columns -------------------------------------------------------------------
#: a column whose largest |value| on the probe exceeds this many times the median column's
#: is spread over ceil(its max / (this x the median)) columns
OUTLIER_RATIO = 3.0
#: at most this fraction of extra input columns per layer (the extra matmul work)
MAX_EXTRA_COLUMNS = 1 / 16
#: generic English text for the probe run of text models (no data package needed)
PROBE_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "I bought this coffee last month and it arrived quickly; the flavour is rich, not bitter.",
    "Terrible product. It broke after two days and customer service never answered my emails!",
    "What time does the museum open on Sundays, and is there a student discount?",
    "Prices rose by 3.5% in 2024, while wages grew 2%, according to the report.",
    "She said: \"honestly, it's the best book I've read this year\" - and I agree.",
    "ok",
    "Add two cups of flour, a pinch of salt and 250 ml of warm milk, then stir for five minutes.",
)


def outlier_split(column_max: torch.Tensor, ratio: float = OUTLIER_RATIO,
                  max_extra: float = MAX_EXTRA_COLUMNS) -> dict[int, int]:
    """How many columns to spread each outlier input column over, from the largest |value| of
    every input column on a probe run.

    Transformer hidden states carry a few "massive" channels (in all-MiniLM-L6-v2 channel 99
    reaches 28 where 99.9 % of values are below 5); with one scale per tensor they would
    take most of the 256 int8 levels. Spreading such a column over ``n`` columns (each
    ``x_j / n``, the weight's column repeated) computes the same product with an ``n``-times
    smaller range there, for ``n - 1`` more columns of work (at most ``max_extra`` of the width).
    """
    width = column_max.numel()
    if width < 8:
        return {}
    typical = float(column_max.median()) * ratio
    if typical <= 0:
        return {}
    budget = max(0, int(width * max_extra))
    split: dict[int, int] = {}
    for j in torch.argsort(column_max, descending=True).tolist():
        n = min(int(-(-float(column_max[j]) // typical)), budget + 1)  # past the budget: spread less
        if n <= 1:
            break
        split[j] = n
        budget -= n - 1
    return split


def _probe(pipe: Any) -> bool:
    """Run the pipeline's model once on generic input, for the input ranges of its Linear
    layers. Text pipelines only (their ``encode``/``collate``/``forward``, or a causal LM on
    token ids); others return False and keep plain per-tensor quantisation."""
    tokenizer = getattr(pipe, "tokenizer", None)
    if tokenizer is None:
        return False
    ran = 0
    for text in PROBE_TEXTS:  # one at a time: a text the tokenizer or model cannot take is skipped
        try:
            if all(hasattr(pipe, name) for name in ("encode", "collate", "forward")):
                pipe.forward(pipe.collate(pipe.encode([text], long_inputs="truncate", warn=False)))
            else:
                pipe.model(torch.tensor([tokenizer(text)["input_ids"]], device=pipe.device))
            ran += 1
        except Exception as exc:  # noqa: BLE001 - a task this probe does not fit: plain int8
            logger.debug("int8 outlier probe: %s skipped %r: %s", type(pipe).__name__, text, exc)
    return ran > 0


def probe_column_ranges(pipe: Any) -> dict[int, torch.Tensor]:
    """``{id(linear): largest |input| per column}`` over a probe run (:func:`_probe`); empty
    when the pipeline has no probe."""
    import warnings

    ranges: dict[int, torch.Tensor] = {}

    def record(module: nn.Module, inputs: tuple, _output: Any) -> None:
        x = inputs[0].detach().float()
        found = x.reshape(-1, x.shape[-1]).abs().amax(0)
        old = ranges.get(id(module))
        ranges[id(module)] = found if old is None else torch.maximum(old, found)

    model = getattr(pipe, "model", None)
    if not isinstance(model, nn.Module):
        return ranges
    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            with torch.backends.mkldnn.flags(enabled=False):  # module calls, so that the hooks run
                ok = _probe(pipe)
    finally:
        for hook in hooks:
            hook.remove()
    return ranges if ok else {}


# -- whole models ----------------------------------------------------------------------
def _linear_slots(module: nn.Module) -> Iterator[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute, child) for every submodule, parents before children, skipping
    the inside of ``nn.MultiheadAttention`` (it reads ``out_proj.weight`` itself)."""
    for parent in module.modules():
        if isinstance(parent, nn.MultiheadAttention):
            continue
        for name, child in parent.named_children():
            yield parent, name, child


def quantize_module(module: nn.Module, *, engine: str | None = None, reduce_range: bool | None = None,
                    column_ranges: dict[int, torch.Tensor] | None = None) -> int:
    """Replace every ``nn.Linear`` inside ``module`` by an :class:`Int8Linear`, in place.

    Args:
        module: a model on the CPU (its Linear weights are read as float32).
        engine: the quantized engine (default :func:`choose_engine`).
        reduce_range: 7-bit activations (default: unless the CPU has VNNI/AMX).
        column_ranges: ``{id(layer): largest |input| per column}`` from a probe run
            (:func:`probe_column_ranges`): outlier columns are spread (:func:`outlier_split`).

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
        ranges = (column_ranges or {}).get(id(child))
        split = outlier_split(ranges) if ranges is not None else None
        setattr(parent, name, Int8Linear(child.weight, child.bias, engine=engine, reduce_range=reduce_range,
                                         split=split))
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
    ranges = probe_column_ranges(pipe)
    count = quantize_module(model, engine=engine, reduce_range=reduce_range, column_ranges=ranges)
    spread = [m for m in model.modules() if isinstance(m, Int8Linear) and m.split]
    pipe.metadata["compute"] = {
        "weights": "int8", "activations": f"dynamic int8 (per tensor, {'7' if reduce_range else '8'}-bit)",
        "engine": engine, "kernel": "torch.ops.quantized.linear_dynamic", **cpu_capability(),
        "linear_layers": count, "threads": torch.get_num_threads(),
        "outlier_columns": {"layers": len(spread), "columns": sum(len(m.split) for m in spread),
                            "extra_columns": sum(n - 1 for m in spread for n in m.split.values()),
                            "probe": "generic English text" if ranges else "none (plain per-tensor)"},
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
