"""ONNX Runtime int8 with outlier columns spread: what ``quantize="int8"`` with
``backend="onnxruntime"`` runs (:func:`hub.ort_backend.load_ort_pipeline`).

ONNX Runtime's ``quantize_dynamic`` quantises each MatMul's input per tensor (one uint8
scale and zero point per call, from that batch's min/max). Transformer hidden states carry a
few "massive" channels (all-MiniLM-L6-v2's channel 99 reaches 28 where 99.9 % of values are
below 5) that then take most of the 256 levels, and the shipped sentiment default flipped
13 of the 1,000 held-out reviews' argmaxes (98.7 %). Hub's torch int8 compute spreads such
columns over a few (:mod:`hub.int8_compute`); this module does the same to the graph before
``quantize_dynamic``:

1. a probe: the float graph, with every constant-weight MatMul's input added as an output,
   runs the pipeline on :data:`hub.int8_compute.PROBE_TEXTS` (text pipelines; other tasks
   are quantised plainly, as in torch), giving each input column's largest ``|value|``;
2. :func:`hub.int8_compute.outlier_split` picks the outlier columns and how many columns
   each is spread over (at most 1/16 more);
3. the graph is rewritten (:func:`spread_outlier_columns`): before such a MatMul, ``x * s``
   (``s_j = 1/n_j`` on a spread column, 1 elsewhere) is concatenated with the repeated
   columns ``(x * s)[..., repeats]``, and the weight gets the repeated rows ``W[repeats]``:
   the same product, an ``n``-times smaller range on those columns; the int8 weights and
   their per-channel scales are unchanged (the repeated rows hold the same values);
4. padded rows are zeroed before each such MatMul (``x * attention_mask``, on the inputs laid
   out as token rows): they are masked out of every
   real token's attention and of the pooling, so nothing real changes, but their hidden
   states would otherwise widen the per-tensor range (Hub's torch path computes real tokens
   only, packed, so it never sees them);
5. ``quantize_dynamic`` quantises the rewritten graph (:data:`QUANTIZATION`).

Measured on the shipped default and the 1,000 held-out reviews (2-core AMD EPYC, AVX-512
VNNI): plain ``quantize_dynamic`` (embedding tables in int8 too) 987/1,000 argmaxes agree
with fp32; MatMuls only 992; with the columns spread 988 (mean |probability change| down
from 0.0129 to 0.0058); with padded rows zeroed alone 988; with both 996 (accuracy 0.849 ->
0.851, mean |probability change| 0.0043, as torch int8's 0.0040). Zeroing only the 12
LayerNormalization outputs of the 24 MatMul inputs gives the same 996 but ran 5 % slower in
ONNX Runtime (CPU time, one thread), so every token-row input is zeroed. Cost against plain
MatMul-only ``quantize_dynamic``: about 12 % more CPU time (all-MiniLM-L6-v2, 128 reviews:
2.96 s vs 2.64 s; fp32 5.30 s).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: ``quantize_dynamic``'s settings: int8 weights with one scale per output channel (per-tensor
#: scales flipped 5 % of the shipped sentiment default's argmaxes on real reviews; per channel
#: keeps them), activations quantised per batch; only MatMuls with a constant weight. The
#: operator types: MatMul only. Convolutions stay float as in Hub's torch int8 compute
#: (ConvInteger is slow on CPUs, and a channels-last CNN's traced conv weights are not
#: initialisers ``quantize_dynamic`` can rewrite); embedding tables (Gather) stay float too
#: (int8 tables with one scale per table cost accuracy and save no compute).
QUANTIZATION = {"weight_type": "QInt8", "per_channel": True, "extra_options": {"MatMulConstBOnly": True},
                "op_types_to_quantize": ["MatMul"]}
#: the inputs of a text graph (Hub's text exports): the graphs probed and masked
TEXT_INPUTS = ("input_ids", "attention_mask")
#: bump when the rewriting changes, so cached int8 graphs are made anew
FORMAT = 2


def constant_matmuls(model: Any) -> list[Any]:
    """The MatMul nodes whose second input is a 2-D initialiser (the ones quantised)."""
    inits = {i.name: i for i in model.graph.initializer}
    return [n for n in model.graph.node
            if n.op_type == "MatMul" and n.input[1] in inits and len(inits[n.input[1]].dims) == 2]


def probe_graph(model: Any) -> tuple[Any, list[str]]:
    """A copy of ``model`` with each constant-weight MatMul's activation input as an extra output."""
    import copy

    from onnx import TensorProto, helper

    probe = copy.deepcopy(model)
    outputs = {o.name for o in probe.graph.output}
    names = []
    for node in constant_matmuls(probe):
        name = node.input[0]
        if name not in names and name not in outputs:
            names.append(name)
            probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return probe, names


class _RecordingSession:
    """Runs the probe graph in place of the float session, recording each probed input's
    per-column largest ``|value|``; answers what :class:`hub.ort_backend.OrtModule` asks."""

    def __init__(self, session: Any, names: list[str]) -> None:
        self.session, self.names = session, names
        self.ranges: dict[str, np.ndarray] = {}
        self.token_rows: set[str] = set()  # inputs laid out (batch, sequence, C) like attention_mask

    def get_inputs(self) -> Any:
        return self.session.get_inputs()

    def run(self, output_names: list[str], feeds: dict[str, Any]) -> list[Any]:
        values = self.session.run(list(output_names) + self.names, feeds)
        mask = feeds.get("attention_mask")
        for name, value in zip(self.names, values[len(output_names):]):
            if mask is not None and value.ndim == 3 and value.shape[:2] == mask.shape:
                self.token_rows.add(name)
            found = np.abs(value.reshape(-1, value.shape[-1])).max(0)
            old = self.ranges.get(name)
            self.ranges[name] = found if old is None else np.maximum(old, found)
        return values[:len(output_names)]


def probe_ranges(pipe: Any, runner: Any, model: Any, ort: Any, threads: int
                 ) -> tuple[dict[str, np.ndarray], set[str]]:
    """``{MatMul input name: largest |value| per column}`` from running ``pipe`` (whose runner,
    an :class:`~hub.ort_backend.OrtModule`, is ``runner``) on the probe texts with the float
    graph ``model``, and the inputs laid out as token rows (batch, sequence, C); empty for
    pipelines without a text probe."""
    import torch

    from hub.int8_compute import _probe

    if getattr(pipe, "tokenizer", None) is None or [i.name for i in model.graph.input] != list(TEXT_INPUTS):
        return {}, set()
    probe, names = probe_graph(model)
    if not names:
        return {}, set()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    recorder = _RecordingSession(ort.InferenceSession(probe.SerializeToString(), sess_options=options,
                                                      providers=["CPUExecutionProvider"]), names)
    before, runner.session = runner.session, recorder
    try:
        with torch.inference_mode():
            ran = _probe(pipe)
    finally:
        runner.session = before
    return (recorder.ranges, recorder.token_rows) if ran else ({}, set())


def plan(model: Any, ranges: dict[str, np.ndarray]) -> dict[str, dict[int, int]]:
    """``{MatMul input name: {column: spread count}}`` (:func:`hub.int8_compute.outlier_split`)."""
    import torch

    from hub.int8_compute import outlier_split

    chosen = {}
    for name, found in ranges.items():
        split = outlier_split(torch.from_numpy(np.asarray(found, dtype=np.float32)))
        if split:
            chosen[name] = split
    return chosen


def token_mask(model: Any) -> Any:
    """Nodes giving the text graph's ``attention_mask`` as float (batch, sequence, 1), to zero
    padded rows with; None when the graph has no such input."""
    from onnx import TensorProto, helper

    if "attention_mask" not in [i.name for i in model.graph.input]:
        return None
    return [helper.make_node("Cast", ["attention_mask"], ["hub_mask/float"], name="hub_mask/Cast",
                             to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["hub_mask/float", "hub_mask/axes"], ["hub_mask/rows"],
                             name="hub_mask/Unsqueeze")]


def spread_outlier_columns(model: Any, splits: dict[str, dict[int, int]], masked: set[str] | frozenset = frozenset()
                           ) -> int:
    """Rewrite ``model`` in place so that each constant-weight MatMul on an input of ``splits``
    multiplies the spread input by the weight with its rows repeated (see the module
    docstring), and each on an input of ``masked`` (token rows, (batch, sequence, C)) sees
    padded rows as zeros; returns how many MatMuls were rewritten."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    prepared: dict[str, str] = {}  # input name -> its rewritten tensor's name (shared by the MatMuls on it)
    new_nodes: dict[int, list[Any]] = {}
    mask_nodes = token_mask(model) if masked else None
    rewritten = 0
    nodes = list(model.graph.node)
    for node in constant_matmuls(model):
        source = node.input[0]
        split = splits.get(source) or {}
        mask = mask_nodes is not None and source in masked
        weight = numpy_helper.to_array(inits[node.input[1]])
        width = weight.shape[0]
        if split and max(split) >= width:
            split = {}
        if not split and not mask:
            continue
        repeats = [j for j, n in sorted(split.items()) for _ in range(n - 1)]
        if source not in prepared:
            base = f"hub_int8/{len(prepared)}"
            made, current = [], source
            if mask:
                made.append(helper.make_node("Mul", [current, "hub_mask/rows"], [f"{base}/masked"],
                                             name=f"{base}/Mask"))
                current = f"{base}/masked"
            if split:
                scale = np.ones(width, dtype=np.float32)
                for j, n in split.items():
                    scale[j] = 1.0 / n
                model.graph.initializer.extend([numpy_helper.from_array(scale, f"{base}/scale"),
                                                numpy_helper.from_array(np.asarray(repeats, dtype=np.int64),
                                                                        f"{base}/repeats")])
                made += [helper.make_node("Mul", [current, f"{base}/scale"], [f"{base}/scaled"], name=f"{base}/Mul"),
                         helper.make_node("Gather", [f"{base}/scaled", f"{base}/repeats"], [f"{base}/extra"],
                                          name=f"{base}/Gather", axis=-1),
                         helper.make_node("Concat", [f"{base}/scaled", f"{base}/extra"], [f"{base}/spread"],
                                          name=f"{base}/Concat", axis=-1)]
                current = f"{base}/spread"
            new_nodes.setdefault(nodes.index(node), []).extend(made)
            prepared[source] = current
        if repeats:
            wide = np.concatenate([weight, weight[repeats]], 0).astype(weight.dtype)
            wide_name = f"{node.input[1]}/hub_spread"
            model.graph.initializer.append(numpy_helper.from_array(wide, wide_name))
            node.input[1] = wide_name
        node.input[0] = prepared[source]
        rewritten += 1
    if new_nodes:  # keep the node list topologically sorted: each new node before its first consumer
        ordered = []
        if mask_nodes is not None and any(name in masked for name in prepared):
            model.graph.initializer.append(numpy_helper.from_array(np.asarray([-1], dtype=np.int64), "hub_mask/axes"))
            ordered.extend(mask_nodes)
        for position, node in enumerate(nodes):
            ordered.extend(new_nodes.get(position, []))
            ordered.append(node)
        del model.graph.node[:]
        model.graph.node.extend(ordered)
    used = {name for n in model.graph.node for name in n.input}
    kept = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return rewritten


def quantized_graph(graph: Path, target_root: Path, splits: dict[str, dict[int, int]],
                    masked: set[str] | frozenset = frozenset()) -> Path:
    """The int8 graph of ``graph`` with ``splits`` spread (:func:`spread_outlier_columns`) and
    ``quantize_dynamic`` (:data:`QUANTIZATION`), made once and cached under ``target_root`` by
    the graph's hash, the settings and the splits."""
    from hub._fs import atomic_directory
    from hub.export import ONNX_NAME

    chosen = {**QUANTIZATION, "format": FORMAT,
              "outlier_columns": {name: {str(j): n for j, n in sorted(split.items())}
                                  for name, split in sorted(splits.items())},
              "masked": sorted(masked)}
    digest = hashlib.sha256(json.dumps(chosen, sort_keys=True).encode())
    with graph.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    target = target_root / f"int8-{digest.hexdigest()[:32]}"
    if (target / ONNX_NAME).is_file():
        return target / ONNX_NAME
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(graph))
    rewritten = spread_outlier_columns(model, splits, masked)
    settings = {k: v for k, v in QUANTIZATION.items()}
    settings["weight_type"] = getattr(QuantType, settings["weight_type"])
    quiet = logging.getLogger()  # quantize_dynamic logs advice on the root logger
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with atomic_directory(target) as tmp:
            spread = tmp / "spread.onnx"
            onnx.save(model, str(spread))
            quantize_dynamic(str(spread), str(tmp / ONNX_NAME), **settings)
            spread.unlink()
            record = {"source": str(graph), "method": "onnxruntime.quantization.quantize_dynamic",
                      "matmuls_spread": rewritten, **chosen}
            (tmp / "quantization.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    finally:
        quiet.setLevel(level)
    return target / ONNX_NAME


def prepare_int8(pipe: Any, runner: Any, graph: Path, ort: Any, cache: Path, *, threads: int
                 ) -> tuple[Path, dict[str, Any]]:
    """The int8 graph for ``pipe`` (probe, plan, rewrite, quantise; cached) and what was done,
    for ``pipe.metadata["int8"]``.

    Args:
        pipe: the pipeline, its runner already the ONNX Runtime stand-in ``runner``.
        runner: the :class:`~hub.ort_backend.OrtModule` (its session is swapped for the probe's).
        graph: the float graph.
        ort: the onnxruntime module.
        cache: the folder the int8 graphs are cached in.
        threads: intra-op threads of the probe session.
    """
    import onnx

    model = onnx.load(str(graph))
    ranges, token_rows = probe_ranges(pipe, runner, model, ort, threads)
    splits = plan(model, ranges)
    path = quantized_graph(graph, cache, splits, token_rows)
    record = {"method": "onnxruntime.quantization.quantize_dynamic", "weights": "int8, per output channel",
              "activations": "dynamic uint8 per tensor",
              "outlier_columns": {"inputs": len(splits), "columns": sum(len(s) for s in splits.values()),
                                  "extra_columns": sum(n - 1 for s in splits.values() for n in s.values()),
                                  "probe": "generic English text" if ranges else "none (plain per-tensor)"},
              "padded_rows_zeroed": len(token_rows), "graph": str(path)}
    return path, record
