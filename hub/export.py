"""ONNX export of a pipeline's model: ``pipe.export(path, format="onnx")`` and ``hub export``.

What is exported is the one module call inside the pipeline's ``forward`` (a text classifier's
logits, an encoder's hidden states, a vision model's logits and pooled features, a CTC model's
frame log-its and frame mask): every other step of the pipeline (tokenisation, windows of long
inputs, length-sorted batching, pooling, decoding, labels) stays Hub's, so an exported folder
loads back into the same pipeline with ``hub.load(task, model=folder, backend="onnxruntime")``
(:mod:`hub.ort_backend`) and gives the same results. Each task says what it exports through
:meth:`hub.pipeline.Pipeline._export_spec` (an :class:`ExportSpec`).

The exporter is torch's TorchScript-based ``torch.onnx.export(..., dynamo=False)``. The
``dynamo=True`` exporter (``torch.export``) refuses Hub's backbone: its attention skips the
mask when nothing is padded (``bool(padding_mask.all())``), a data-dependent branch that
``torch.export`` cannot guard on. The tracer records the branch its example takes, so Hub
traces a *padded* example: the general masked path is recorded, which is exact for unpadded
batches as well (a mask of ones masks nothing). ``scaled_dot_product_attention`` with a
boolean mask is traced as ``softmax(q·scale kᵀ + bias) v`` with one additive (B, 1, T, S)
bias (:func:`_additive_mask_attention`; the tracer's own boolean form costs a Where and an
IsNaN + Where over every score tensor: ORT int8 MiniLM 16 % more CPU time).

Every export checks itself before anything is written: ONNX Runtime runs the graph on
examples of other batch sizes and lengths than the traced one (batch 1 and 5, padded and
not), and each output must equal the eager model's within ``atol`` (fp32, default 1e-4;
boolean and integer outputs exactly). A graph that fails is not written. The folder is
written atomically (:func:`hub._fs.atomic_directory`: a crash leaves the old folder or the
new one, and a folder holding files Hub did not write is refused) and holds:

* ``model.onnx``: the graph (weights inside; dynamic batch and sequence axes);
* ``config.json``: Hub's config of the model (architecture, sizes, labels, the vision
  preprocessing, the audio sample rate, ...) with ``"weights_format": "onnx"``;
* the task's files (tokenizer files for text);
* ``onnx.json``: what the graph takes and returns (names, dtypes, dynamic axes), what it
  computes, the preprocessing a consumer outside Hub needs, the parity figures, versions.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hub.errors import HubError, InvalidInputError, MissingExtraError, NotSupportedError

#: a :class:`hub.pipeline.Pipeline` (not imported: the pipeline imports this module to export)
Pipeline = Any

ONNX_EXTRA = "pip install 'hub-sdk[onnx]'"
ONNX_NAME = "model.onnx"
INFO_NAME = "onnx.json"
FORMATS = ("onnx",)
#: the ONNX opset written (17: LayerNormalization; what ONNX Runtime >= 1.14 runs)
DEFAULT_OPSET = 17
#: the parity bound of an fp32 export (ONNX Runtime vs eager, on the task's outputs)
DEFAULT_ATOL = 1e-4
INFO_FORMAT = 1


class ExportParityError(HubError):
    """The exported graph does not reproduce the eager model within the tolerance."""


@dataclass
class ExportSpec:
    """What a task exports: the module call inside its ``forward``, as a graph.

    Attributes:
        module: the module to trace: positional tensors in (``inputs`` order), a tuple of
            tensors out (``outputs`` order).
        inputs: the graph's input names, in the order the pipeline's call passes them.
        outputs: the graph's output names.
        dynamic_axes: per input and output name, ``{axis: name}`` of its dynamic axes.
        examples: input tuples; the first is traced (padded, so the masked path is
            recorded), all of them are checked against the eager module.
        description: what the graph computes, in words (written to ``onnx.json``).
        returns: how the ONNX Runtime stand-in returns the outputs to ``forward``: ``"dict"``
            (``{name: tensor}``, as Hub's task models do) or ``"tensor"`` (the first output).
        optional_inputs: inputs a call may leave out (speech's ``attention_mask``), each with
            a function of the given inputs that makes the value meaning "nothing masked".
        preprocessing: what a consumer outside Hub needs to feed the graph (written to
            ``onnx.json``: tokenizer files, labels, image preprocessing, sample rate...).
        trace_context: a context manager the tracing runs in (e.g. speech's front end as an
            exportable convolution in place of ``torch.stft``); the eager reference runs outside.
    """

    module: Any
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]
    examples: list[tuple[Any, ...]]
    description: str
    returns: str = "dict"
    optional_inputs: dict[str, Callable[[dict[str, Any]], Any]] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    trace_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext


def require_onnx(what: str) -> tuple[Any, Any]:
    """``(onnx, onnxruntime)``, imported now; missing, a :class:`MissingExtraError` naming the extra.

    Args:
        what: the feature that needs them, for the message (``"pipe.export"``).
    """
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        name = getattr(exc, "name", None) or "onnx/onnxruntime"
        raise MissingExtraError(f"{what} needs onnx and onnxruntime, and {name} is not installed; install the "
                                f"ONNX extra: {ONNX_EXTRA}") from None
    return onnx, onnxruntime


def export_pipeline(pipe: Pipeline, path: str | Path, *, format: str = "onnx", opset: int | None = None,
                    atol: float = DEFAULT_ATOL) -> Path:
    """Export ``pipe``'s model to an ONNX folder at ``path`` (see the module docstring).

    Args:
        pipe: a loaded pipeline whose task can be exported (:meth:`~hub.pipeline.Pipeline._export_spec`).
        path: the folder to write: new, empty, or one Hub wrote (an earlier export).
        format: ``"onnx"`` (the only format).
        opset: the ONNX opset (default :data:`DEFAULT_OPSET`).
        atol: the largest absolute difference allowed between ONNX Runtime and the eager model.

    Returns:
        The folder's absolute path.

    Raises:
        NotSupportedError: the task cannot be exported (names the tasks that can).
        ExportParityError: ONNX Runtime's outputs differ from the eager model's; nothing is written.
        MissingExtraError: onnx / onnxruntime are not installed.
        SaveTargetError: ``path`` holds files Hub did not write.
    """
    from hub._fs import atomic_directory, check_save_target

    if format not in FORMATS:
        raise InvalidInputError(f"export format {format!r} is not supported; use one of {FORMATS}.")
    if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not atol > 0:
        raise InvalidInputError(f"export atol must be a positive number, got {atol!r}.")
    opset = DEFAULT_OPSET if opset is None else opset
    if isinstance(opset, bool) or not isinstance(opset, int) or not 14 <= opset <= 20:
        raise InvalidInputError(f"export opset must be an integer from 14 to 20, got {opset!r}.")
    onnx, ort = require_onnx(f"{pipe.task}: export to ONNX")
    check_save_target(path)  # before the tracing, which takes a while
    spec = _float_spec(pipe, pipe._export_spec())
    with atomic_directory(path) as tmp:
        graph = tmp / ONNX_NAME
        trace(spec, graph, opset)
        parity = check_parity(spec, graph, atol, ort)
        write_export_files(pipe, spec, tmp, opset=opset, parity=parity, onnx_version=onnx.__version__)
    return Path(path).resolve()


def _float_spec(pipe: Pipeline, spec: ExportSpec) -> ExportSpec:
    """The spec's module on the CPU in float32, in eval mode. An int8-computing model
    (``quantize="int8"``, :mod:`hub.int8_compute`) is exported from a float copy holding the
    same, dequantised weights (ONNX Runtime quantises the graph itself: ``quantize="int8"``
    with ``backend="onnxruntime"``); torch.ao's quantized modules are refused."""
    import copy

    from hub.int8_compute import count_int8_layers, dequantize_module

    module = spec.module
    if count_int8_layers(module):
        module = copy.deepcopy(module)
        dequantize_module(module)
    quantized = [name for name, m in module.named_modules()
                 if type(m).__module__.startswith(("torch.ao.nn.quantized", "torch.nn.quantized"))]
    if quantized:
        raise NotSupportedError(f"{pipe.task}: this pipeline computes in int8 ({quantized[0]} is a quantized module), "
                                "and the ONNX export traces the float model; load it with quantize=False (and "
                                "use backend='onnxruntime' with quantize='int8' for ONNX Runtime's own int8).")
    params = list(module.parameters())
    if any(p.dtype != torch.float32 or p.device.type != "cpu" for p in params):
        module = copy.deepcopy(module).to(device="cpu", dtype=torch.float32)
    spec.module = module.eval()
    return spec


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The tracer's warnings (data-dependent Python values, deprecation) are expected here:
    the parity check is what decides whether the graph is right."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _additive_mask_attention() -> Iterator[None]:
    """While tracing, ``scaled_dot_product_attention`` with a boolean mask is written as
    ``softmax(q·scale kᵀ + bias) v`` with a (B, 1, T, S) additive bias (0 where attended, the
    float minimum where masked): the tracer's own form of a boolean mask adds a Where before
    the softmax and an IsNaN + Where after it, two more passes over every (B, H, T, S) score
    tensor. Same values: no row of Hub's masks is fully masked (a key-padding row keeps its
    real keys; a causal query always sees itself), so no NaN needs catching."""
    import torch.nn.functional as F

    original = F.scaled_dot_product_attention

    def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None,
                  dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                  **kwargs: Any) -> torch.Tensor:
        if attn_mask is None or attn_mask.dtype != torch.bool or is_causal or dropout_p or kwargs:
            return original(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale,
                            **kwargs)
        factor = scale if scale is not None else 1.0 / float(q.shape[-1]) ** 0.5
        bias = torch.zeros_like(attn_mask, dtype=q.dtype).masked_fill(~attn_mask, torch.finfo(q.dtype).min)
        scores = torch.matmul(q * factor, k.transpose(-2, -1)) + bias
        return torch.matmul(torch.softmax(scores, dim=-1), v)

    F.scaled_dot_product_attention = attention
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def trace(spec: ExportSpec, graph: Path, opset: int) -> None:
    """``torch.onnx.export`` (TorchScript tracer) of the spec's module on its first example."""
    with torch.no_grad():
        spec.module(*spec.examples[0])  # warm caches (speech filterbanks) outside the trace
    # traced with autograd on: inference-only kernels (the backbone's fused oneDNN linear, taken
    # under no_grad) have no ONNX form, their plain equivalents do
    with _quiet(), torch.enable_grad(), spec.trace_context(), _additive_mask_attention():
        try:
            torch.onnx.export(spec.module, tuple(spec.examples[0]), str(graph), dynamo=False,
                              input_names=list(spec.inputs), output_names=list(spec.outputs),
                              dynamic_axes=spec.dynamic_axes, opset_version=opset, do_constant_folding=True)
        except Exception as exc:  # the exporter's own errors: unsupported operators mostly
            raise NotSupportedError(f"torch.onnx.export could not export this model ({type(exc).__name__}: "
                                    f"{str(exc).strip().splitlines()[0][:300]}).") from exc


def session_for(ort: Any, graph: Path, *, threads: int | None = None, optimization: str = "all",
                providers: Sequence[str] | None = None) -> Any:
    """An ONNX Runtime InferenceSession on ``graph`` with Hub's options."""
    options = ort.SessionOptions()
    levels = {"disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    options.graph_optimization_level = levels[optimization]
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initialisers etc. are noise here
    return ort.InferenceSession(str(graph), sess_options=options,
                                providers=list(providers or ["CPUExecutionProvider"]))


def feeds_for(session: Any, names: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    """NumPy inputs of the dtypes the graph declares (an int mask for an int64 input...)."""
    import numpy as np

    kinds = {i.name: i.type for i in session.get_inputs()}
    dtypes = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32,
              "tensor(bool)": np.bool_, "tensor(double)": np.float64}
    feeds = {}
    for name, value in zip(names, values):
        array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        wanted = dtypes.get(kinds.get(name, ""))
        feeds[name] = np.ascontiguousarray(array.astype(wanted, copy=False) if wanted else array)
    return feeds


def check_parity(spec: ExportSpec, graph: Path, atol: float, ort: Any) -> dict[str, Any]:
    """Run the graph with ONNX Runtime on every example and compare with the eager module.

    Returns:
        ``{"atol", "max_abs_diff": {output: worst}, "examples": [shapes]}``.

    Raises:
        ExportParityError: an output differs by more than ``atol`` (or in shape / exactly, for
            boolean and integer outputs).
    """
    import numpy as np
    session = session_for(ort, graph, threads=1)
    worst = {name: 0.0 for name in spec.outputs}
    shapes = []
    for number, example in enumerate(spec.examples):
        with torch.no_grad():
            expected = spec.module(*example)
        expected = expected if isinstance(expected, (tuple, list)) else (expected,)
        got = session.run(list(spec.outputs), feeds_for(session, spec.inputs, example))
        shapes.append({name: list(value.shape) for name, value in zip(spec.inputs, example)})
        for name, ref, out in zip(spec.outputs, expected, got):
            ref = ref.detach().cpu().numpy()
            where = (f"output {name!r} on example {number} (inputs "
                     f"{', '.join(f'{k} {tuple(v)}' for k, v in shapes[-1].items())})")
            if tuple(ref.shape) != tuple(out.shape):
                raise ExportParityError(f"The ONNX graph's {where} has shape {tuple(out.shape)}, the eager model's "
                                        f"{tuple(ref.shape)}: a size was recorded as a constant when tracing. "
                                        "Nothing was written.")
            if ref.dtype.kind in "biu":
                if not np.array_equal(ref, out.astype(ref.dtype)):
                    raise ExportParityError(f"The ONNX graph's {where} differs from the eager model's. Nothing "
                                            "was written.")
                continue
            diff = float(np.abs(ref.astype(np.float64) - out.astype(np.float64)).max()) if ref.size else 0.0
            if not diff <= atol:
                raise ExportParityError(f"The ONNX graph's {where} differs from the eager model's by up to "
                                        f"{diff:.3g}, more than atol={atol:g}. Nothing was written.")
            worst[name] = max(worst[name], diff)
    return {"atol": atol, "max_abs_diff": worst, "examples": shapes}


def write_export_files(pipe: Pipeline, spec: ExportSpec, folder: Path, *, opset: int, parity: dict[str, Any],
                       onnx_version: str) -> None:
    """config.json (Hub's, without weights), the task's files and onnx.json beside the graph."""
    from hub._version import __version__
    from hub.card import render_model_card
    from hub.modeling import CONFIG_NAME, HUB_FORMAT, hidden_shapes_record

    module = pipe._module_to_save()
    config = dict(module.config)
    payload = {"hub_format": HUB_FORMAT, "architecture": pipe._architecture_to_save(), "config": config,
               "weights_format": "onnx", **hidden_shapes_record(config), "task": pipe.task, **pipe._config_extra()}
    (folder / CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    pipe._save_extra_files(folder)
    info = {
        "hub_onnx": INFO_FORMAT, "task": pipe.task, "graph": ONNX_NAME, "description": spec.description,
        "inputs": [{"name": name, "dtype": str(value.dtype).removeprefix("torch."),
                    "axes": _axes(spec.dynamic_axes.get(name, {}), value.dim())}
                   for name, value in zip(spec.inputs, spec.examples[0])],
        "outputs": [{"name": name, "axes": spec.dynamic_axes.get(name, {})} for name in spec.outputs],
        "optional_inputs": sorted(spec.optional_inputs), "returns": spec.returns,
        "preprocessing": spec.preprocessing, "opset": opset, "exporter": "torch.onnx.export (TorchScript)",
        "parity": parity, "versions": {"hub": __version__, "torch": torch.__version__, "onnx": onnx_version},
        "source": {k: pipe.metadata[k] for k in ("model_name", "source", "commit", "architecture")
                   if pipe.metadata.get(k) is not None},
    }
    (folder / INFO_NAME).write_text(json.dumps(info, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    card = {**pipe.card_data(), "exported": "onnx"}
    (folder / "README.md").write_text(render_model_card(card), encoding="utf-8")


def _axes(dynamic: dict[int, str], rank: int) -> list[str | None]:
    """Per axis its dynamic name, or None where fixed."""
    return [dynamic.get(axis) for axis in range(rank)]


def read_export_info(folder: Path) -> dict[str, Any]:
    """``onnx.json`` of an exported folder (see :func:`export_pipeline`)."""
    from hub.errors import ModelLoadError

    path = Path(folder) / INFO_NAME
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{str(folder)!r} holds {ONNX_NAME} but no {INFO_NAME}; Hub loads the ONNX folders it "
                             "exported (pipe.export / hub export), which say there what the graph takes.") from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{str(path)!r} cannot be read ({exc}); export the model again.") from None
    if not isinstance(info, dict) or info.get("hub_onnx") != INFO_FORMAT or not isinstance(info.get("inputs"), list):
        raise ModelLoadError(f"{str(path)!r} is not an export description Hub wrote; export the model again.")
    return info


# -- helpers the tasks' _export_spec use ------------------------------------------------------
class ModuleCall(nn.Module):
    """``module(*inputs)`` as a traceable module: the outputs named ``keys`` of the dict the
    module returns, as a tuple in that order, or the tensor it returns (``keys=None``)."""

    def __init__(self, module: nn.Module, keys: str | Sequence[str] | None,
                 defaults: dict[str, Callable[[dict[str, Any]], Any]] | None = None) -> None:
        super().__init__()
        self.module = module
        self.keys = (keys,) if isinstance(keys, str) else (tuple(keys) if keys is not None else None)
        #: for outputs a module leaves out on some inputs (a frame mask when nothing is padded):
        #: the value from the other outputs
        self.defaults = dict(defaults or {})

    def forward(self, *inputs: Any) -> Any:
        out = self.module(*inputs)
        if self.keys is None:
            return out
        return tuple(out[key] if key in out else self.defaults[key](out) for key in self.keys)


def token_examples(vocab_size: int, max_tokens: int, *, low: int = 0, left_padding: bool = False
                   ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(input_ids, attention_mask) examples for a text model: the traced one padded, then batch
    1 and 5 of other lengths (padded and not), within ``max_tokens``."""
    generator = torch.Generator().manual_seed(0)
    examples = []
    for batch, length, padded in ((2, 9, True), (1, 5, False), (5, 13, True), (3, 4, False)):
        length = max(2, min(length, max_tokens))
        ids = torch.randint(low, vocab_size, (batch, length), generator=generator)
        mask = torch.ones(batch, length, dtype=torch.long)
        if padded:
            keep = max(1, length // 2)
            if left_padding:
                mask[0, :length - keep] = 0
            else:
                mask[0, keep:] = 0
        examples.append((ids, mask))
    return examples


def waveform_examples(sample_rate: int, min_samples: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(input_values, attention_mask) examples for a speech model: the traced one padded, then
    batch 1 and 5 of other lengths, each clip at least ``min_samples`` long."""
    generator = torch.Generator().manual_seed(0)
    examples = []
    for batch, seconds, padded in ((2, 0.9, True), (1, 0.55, False), (5, 1.3, True)):
        length = max(int(seconds * sample_rate), 2 * min_samples)
        values = torch.randn(batch, length, generator=generator) * 0.1
        mask = torch.ones(batch, length, dtype=torch.long)
        if padded:
            keep = max(min_samples, length // 2)
            values[0, keep:] = 0
            mask[0, keep:] = 0
        examples.append((values, mask))
    return examples
