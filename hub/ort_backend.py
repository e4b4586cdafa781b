"""``hub.load(..., backend="onnxruntime")``: Hub's pipelines with ONNX Runtime running the model.

The pipeline is Hub's own (preprocessing, windows of long inputs, length-sorted batches,
postprocessing and result types unchanged); only the module call inside its ``forward`` is
an ONNX Runtime session (:class:`OrtModule`, standing in for the torch module and answering
its attribute look-ups: labels, sizes, config). The graph comes from

* a folder holding ``model.onnx`` that Hub exported (``pipe.export`` / ``hub export``): no torch
  weights are read; the module is built on the meta device for its attributes only; or
* any other model folder: it is loaded with torch, exported once (the export checks its own
  parity) and cached under ``$HUB_ONNX_CACHE`` (default ``~/.cache/hub/onnx``), keyed by the
  folder's commit (Hugging Face models) or the hash of its files, the task and the versions of
  Hub, torch and the exporter, so a changed model is exported anew.

ONNX Runtime computes every padded position, where the torch path packs real tokens, so
:class:`OrtModule` runs a right-padded token batch as groups of similar length, each padded
only to its own longest (:meth:`OrtModule.length_groups`); on all-MiniLM-L6-v2 and 128 real
reviews in batches of 32 this took ORT int8 from 3.1 s to 1.2 s end to end (a batch holding
a 512-token review no longer pads its 31 others, and their (B, H, T, T) scores, to 512).

Options (``backend_options=``): ``optimization`` (ONNX Runtime's graph optimisation level:
``"all"`` (default), ``"extended"``, ``"basic"``, ``"disabled"``), ``threads`` (intra-op threads;
default torch's thread count, so the two backends compare at equal threads), ``providers``
(default the CPU; ``device="cuda"`` asks for CUDA first when ONNX Runtime has it).
``quantize="int8"`` runs ONNX Runtime's own dynamic int8 quantisation
(``onnxruntime.quantization.quantize_dynamic``: int8 weights, activations quantised per
batch) on the graph once, after Hub's outlier-column spreading and padded-row masking
(:mod:`hub.ort_int8`), and caches the result beside the float export.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hub.backbone.fastpaths import greedy_length_groups
from hub.errors import InvalidInputError, ModelLoadError, NotSupportedError
from hub.export import INFO_NAME, ONNX_NAME, read_export_info, require_onnx, session_for

BACKENDS = ("torch", "onnxruntime")
OPTIMIZATIONS = ("all", "extended", "basic", "disabled")
#: quantize= values with backend="onnxruntime" ("auto" and "float": the float graph)
QUANTIZE = (None, False, True, "int8", "auto", "float")
BACKEND_OPTIONS = ("optimization", "threads", "providers")
CACHE_ENV = "HUB_ONNX_CACHE"
#: bump when the export changes what it writes, so old cache entries are not reused
CACHE_FORMAT = 3


def cache_root() -> Path:
    """``$HUB_ONNX_CACHE``, else ``$XDG_CACHE_HOME/hub/onnx`` (``~/.cache/hub/onnx``)."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(os.path.expanduser(root))
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "hub" / "onnx"


def is_onnx_folder(folder: Path) -> bool:
    """Whether ``folder`` is a Hub ONNX export (``model.onnx`` + ``onnx.json``)."""
    return (Path(folder) / ONNX_NAME).is_file() and (Path(folder) / INFO_NAME).is_file()


class OrtModule(nn.Module):
    """An ONNX Runtime session standing in for the torch module a pipeline's ``forward`` calls.

    Called as that module is (the graph's inputs positionally or by name; an optional input
    left out gets its "nothing masked" value), it returns what the module returns (a dict of
    output tensors, or one tensor). Attribute look-ups it does not answer itself go to the
    original module (kept on the meta device: its structure and config, no weights), so the
    pipeline reads ``labels``, ``config``, sizes as before. Training and saving are refused:
    there are no torch weights to train or save.
    """

    def __init__(self, session: Any, info: dict[str, Any], source: nn.Module, optional: dict[str, Any]) -> None:
        super().__init__()
        object.__setattr__(self, "_source", source)  # not a submodule: .to() and state_dict skip it
        self.session = session
        self.input_names = tuple(i["name"] for i in info["inputs"])
        self.output_names = tuple(o["name"] for o in info["outputs"])
        self.returns = info.get("returns", "dict")
        self.optional = dict(optional)
        # a zero-size parameter: pipelines read ``next(model.parameters()).dtype`` (float32 here)
        self.dtype_probe = nn.Parameter(torch.empty(0), requires_grad=False)
        #: output name -> whether its axis 1 is the token axis (re-padded after grouping)
        self.token_outputs = {o["name"]: _axis_names(o.get("axes")).get(1) == "sequence" for o in info["outputs"]}
        self.groupable = self._is_text_graph(info)

    #: a group may hold at most this many padded tokens per real token (the torch path's
    #: attention groups use 1.25 on attention work; here projections pay for padding too)
    GROUP_SLACK = 1.25
    #: at most this many attention scores per head in one call (rows x length^2): bounds the
    #: (B, H, T, T) tensors of long inputs (4 rows at 512 tokens)
    GROUP_SCORES = 1 << 20

    @staticmethod
    def _is_text_graph(info: dict[str, Any]) -> bool:
        """Whether the graph is a token graph whose calls may be split by length: it takes
        ``attention_mask`` and every input and output has axes (batch[, sequence])
        only, the sequence axis being the tokens' (a speech graph's frames are not)."""
        inputs = {i["name"]: _axis_names(i.get("axes")) for i in info["inputs"]}
        if "attention_mask" not in inputs:
            return False
        for axes in [*inputs.values(), *(_axis_names(o.get("axes")) for o in info["outputs"])]:
            if axes.get(0) != "batch" or any(k > 1 or (k == 1 and v != "sequence") for k, v in axes.items()):
                return False
        return all(axes.get(1) == "sequence" for axes in inputs.values())

    def length_groups(self, given: dict[str, Any]) -> list[tuple[torch.Tensor, int]] | None:
        """Rows of a right-padded token batch grouped by length, each group to run padded only
        to its own longest (the rows, that length); None to run the batch as it is.

        ONNX Runtime computes every padded position (the torch path packs real tokens), so a
        batch with a long tail would pay for it on every row: rows sorted by length are cut
        greedily where a group would hold over :data:`GROUP_SLACK` padded tokens per real one
        or over :data:`GROUP_SCORES` attention scores. Left-padded or unmasked batches run whole.
        """
        mask = given["attention_mask"]
        if not isinstance(mask, torch.Tensor) or mask.dim() != 2 or mask.shape[0] < 2:
            return None
        real = mask != 0
        lengths = real.sum(1)
        positions = torch.arange(mask.shape[1], device=mask.device)
        if not bool((real == (positions[None, :] < lengths[:, None])).all()):
            return None  # not right-padded: slicing columns off would drop real tokens
        order = torch.argsort(lengths, descending=True, stable=True)
        sizes = lengths[order].tolist()
        groups = greedy_length_groups(sizes, lambda count, longest, tokens, squares:
                                      count * longest > self.GROUP_SLACK * tokens
                                      or count * longest * longest > self.GROUP_SCORES)
        if len(groups) == 1 and sizes[0] == mask.shape[1]:
            return None
        return [(order[members], max(sizes[members[0]], 1)) for members in groups]

    def _run_groups(self, values: list[Any], groups: list[tuple[torch.Tensor, int]]) -> list[torch.Tensor]:
        """One session call per length group; the outputs put back in batch order (token
        outputs padded with zeros to the batch's length, as padding is never read)."""
        from hub.export import feeds_for

        batch, length = values[self.input_names.index("attention_mask")].shape
        merged: list[torch.Tensor | None] = [None] * len(self.output_names)
        for rows, longest in groups:
            sliced = [value.index_select(0, rows)[:, :longest] for value in values]
            outputs = self.session.run(list(self.output_names), feeds_for(self.session, self.input_names, sliced))
            for k, (name, out) in enumerate(zip(self.output_names, outputs)):
                piece = torch.from_numpy(out)
                if merged[k] is None:
                    shape = (batch, length, *piece.shape[2:]) if self.token_outputs[name] else (batch, *piece.shape[1:])
                    merged[k] = piece.new_zeros(shape)
                if self.token_outputs[name]:
                    merged[k][rows, :longest] = piece
                else:
                    merged[k][rows] = piece
        return [t for t in merged if t is not None]

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            source = self.__dict__.get("_source")
            if source is None or name.startswith("__"):
                raise
            return getattr(source, name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        from hub.export import feeds_for

        if torch.is_grad_enabled():  # a training step (the pipeline predicts under inference_mode)
            raise NotSupportedError(self.NO_TRAINING)
        if len(args) > len(self.input_names):
            raise TypeError(f"the ONNX graph takes {len(self.input_names)} inputs {self.input_names}, "
                            f"got {len(args)}.")
        given = dict(zip(self.input_names, args))
        for name, value in kwargs.items():
            if name not in self.input_names:
                if value is None:
                    continue
                raise TypeError(f"the ONNX graph has no input {name!r}; its inputs: {self.input_names}.")
            if value is not None:
                given[name] = value
        for name in self.input_names:
            if name not in given or given[name] is None:
                if name not in self.optional:
                    raise TypeError(f"the ONNX graph needs its input {name!r}.")
                given[name] = self.optional[name](given)
        values = [given[name] for name in self.input_names]
        groups = self.length_groups(given) if self.groupable else None
        if groups is None:
            outputs = self.session.run(list(self.output_names), feeds_for(self.session, self.input_names, values))
            tensors = [torch.from_numpy(out) for out in outputs]
        else:
            tensors = self._run_groups(values, groups)
        if self.returns == "tensor":
            return tensors[0]
        return dict(zip(self.output_names, tensors))

    NO_TRAINING = ("This pipeline runs on ONNX Runtime (backend='onnxruntime') and has no torch weights to train; "
                   "load it with backend='torch' to fine-tune or pretrain.")

    def train(self, mode: bool = True) -> OrtModule:
        if mode:
            raise NotSupportedError(self.NO_TRAINING)
        return super().train(False)

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        raise NotSupportedError("This pipeline runs on ONNX Runtime (backend='onnxruntime') and has no torch "
                                "weights to save; load it with backend='torch' to save(), or copy its exported "
                                "folder (pipe.metadata['onnx_folder']).")


def _axis_names(axes: Any) -> dict[int, str]:
    """An export description's axes (a list per axis, or a {axis: name} dict whose keys JSON
    made strings) as {axis: name} for the named ones."""
    if isinstance(axes, list):
        return {k: v for k, v in enumerate(axes) if v}
    if isinstance(axes, dict):
        return {int(k): v for k, v in axes.items() if v}
    return {}


def check_backend_arguments(backend: Any, quantize: Any, options: Any) -> dict[str, Any]:
    """The backend's options, checked before any work (unknown keys with the close match)."""
    from hub.validate import check_choice, check_int, check_keywords

    check_choice("backend", backend, BACKENDS)
    if quantize not in QUANTIZE:
        raise InvalidInputError(f"quantize={quantize!r} with backend='onnxruntime' is not understood; use "
                                "quantize='int8' (ONNX Runtime's dynamic int8) or leave it out (float32).")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InvalidInputError(f"backend_options must be a dict (e.g. {{'threads': 2}}), got "
                                f"{type(options).__name__}.")
    if options and backend != "onnxruntime":
        raise InvalidInputError(f"backend_options {sorted(options)} are options of backend='onnxruntime'; "
                                "pass backend='onnxruntime' too, or leave them out.")
    check_keywords("backend_options", options, frozenset(BACKEND_OPTIONS))
    options = {"optimization": "all", "threads": None, "providers": None, **options}
    check_choice("backend_options['optimization']", options["optimization"], OPTIMIZATIONS)
    check_int("backend_options['threads']", options["threads"], minimum=1, none_ok=True)
    providers = options["providers"]
    if providers is not None and (isinstance(providers, str) or not all(isinstance(p, str) for p in providers)):
        raise InvalidInputError("backend_options['providers'] must be a list of ONNX Runtime provider names, "
                                "e.g. ['CPUExecutionProvider'].")
    return options


def load_ort_pipeline(pipeline_cls: Any, folder: Path, *, device: torch.device, metadata: dict[str, Any],
                      quantize: Any = None, options: dict[str, Any] | None = None) -> Any:
    """The task's pipeline on ``folder`` with its module call run by ONNX Runtime.

    Args:
        pipeline_cls: the task's pipeline class.
        folder: a Hub ONNX export, or any model folder (exported on the fly and cached).
        device: ``cpu`` (default) or ``cuda`` (CUDAExecutionProvider first, when installed);
            the pipeline's own tensors stay on the CPU.
        metadata: what the loader knows (task, source, commit...).
        quantize: ``"int8"``: ONNX Runtime's dynamic int8 quantisation of the graph.
        options: checked :func:`check_backend_arguments` options.

    Returns:
        The pipeline; ``pipe.metadata`` adds ``backend``, ``providers``, ``optimization``,
        ``threads``, ``quantization`` and ``onnx_folder``.
    """
    from hub.pipeline import _overrides, tasks_supporting

    task = pipeline_cls.task
    if not _overrides(pipeline_cls, "_export_spec"):
        raise NotSupportedError(f"backend='onnxruntime' does not run task {task!r}: its pipeline cannot be exported to "
                                f"ONNX. Tasks it runs: {', '.join(tasks_supporting('_export_spec'))}.")
    if pipeline_cls.runner_attribute is None:
        raise NotSupportedError(f"backend='onnxruntime' does not run task {task!r}: {pipeline_cls.__name__} calls its "
                                "model step by step with a KV cache, which the exported graph has not (pipe.export "
                                "still writes the graph, for other runtimes); use backend='torch'.")
    _, ort = require_onnx("backend='onnxruntime'")
    options = check_backend_arguments("onnxruntime", quantize, options)
    folder = Path(folder)
    cpu = torch.device("cpu")
    if is_onnx_folder(folder):
        export_folder = folder
        pipe = _pipeline_without_weights(pipeline_cls, folder, metadata)
    else:
        pipe = pipeline_cls.from_folder(folder, device=cpu, dtype=torch.float32, metadata=metadata)
        export_folder = cached_export(pipe, folder, metadata)
    info = read_export_info(export_folder)
    spec = pipe._export_spec()  # what this task's forward calls: the graph must take and give it
    takes = [i["name"] for i in info["inputs"]]
    gives = [o["name"] for o in info["outputs"]]
    if takes != list(spec.inputs) or not set(spec.outputs) <= set(gives):
        raise ModelLoadError(f"{str(export_folder)!r} is an ONNX export of a {info.get('task')!r} model (inputs "
                             f"{takes}, outputs {gives}); {pipe.task} needs inputs {list(spec.inputs)} and outputs "
                             f"{list(spec.outputs)}. Load it with hub.load({info.get('task')!r}, model=..., "
                             "backend='onnxruntime'), or export a model of this task.")
    graph = export_folder / ONNX_NAME
    quantize = "int8" if quantize in (True, "int8") else None
    providers = options["providers"] or _default_providers(ort, device)
    threads = options["threads"] or torch.get_num_threads()
    source = getattr(pipe, pipe.runner_attribute)
    runner = OrtModule(None, info, source, spec.optional_inputs)
    pipe._install_runner(runner)
    source.to("meta")  # its weights are not used again: free them (the structure and config stay)
    int8_record = None
    if quantize == "int8":
        from hub.ort_int8 import prepare_int8

        graph, int8_record = prepare_int8(pipe, runner, graph, ort, cache_root(), threads=threads)
    runner.session = session_for(ort, graph, threads=threads, optimization=options["optimization"],
                                 providers=providers)
    pipe.metadata.update(backend="onnxruntime", providers=runner.session.get_providers(),
                         optimization=options["optimization"], threads=threads,
                         quantization="int8-dynamic (onnxruntime)" if quantize == "int8" else None,
                         onnx_folder=str(export_folder), onnxruntime_version=ort.__version__)
    if int8_record is not None:
        pipe.metadata["int8"] = int8_record
    return pipe


def _default_providers(ort: Any, device: torch.device) -> list[str]:
    available = ort.get_available_providers()
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise InvalidInputError("device='cuda' with backend='onnxruntime' needs onnxruntime-gpu (its "
                                    "CUDAExecutionProvider is not installed: the installed providers are "
                                    f"{available}); use device='cpu' or install onnxruntime-gpu.")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _pipeline_without_weights(pipeline_cls: Any, folder: Path, metadata: dict[str, Any]) -> Any:
    """The pipeline of an exported folder: the module built from config.json, with uninitialised
    CPU storage while the pipeline is constructed (constructors move and inspect it), then
    moved to the meta device; ONNX Runtime computes, never these tensors."""
    from hub.modeling import LoadedModel, read_config
    from hub.registry import get_registry
    from hub.specs import load_object

    config = read_config(folder)
    architecture, arch_config = config.get("architecture"), config.get("config")
    if not isinstance(architecture, str) or not isinstance(arch_config, dict):
        raise ModelLoadError(f"{str(folder / 'config.json')!r}: an ONNX export's config needs 'architecture' "
                             "and 'config'; export the model again.")
    builder = load_object(get_registry().architecture(architecture).builder)
    with torch.device("meta"):
        module = builder(arch_config)
    module = module.to_empty(device="cpu").eval()
    task = config.get("task") if isinstance(config.get("task"), str) else None
    loaded = LoadedModel(module, architecture, arch_config, folder, None, task)
    metadata = {**metadata, "architecture": architecture}
    model = pipeline_cls._model_from_loaded(loaded, metadata)
    return pipeline_cls._from_loaded(model.eval(), folder, device=torch.device("cpu"), dtype=None,
                                     metadata=metadata)


def folder_key(folder: Path, metadata: dict[str, Any], task: str) -> str:
    """The cache key of a model folder: its commit (Hugging Face) or the hash of its files,
    with the task and the versions that shape the export."""
    import onnx

    from hub._version import __version__

    digest = hashlib.sha256()
    digest.update(json.dumps([CACHE_FORMAT, task, __version__, torch.__version__, onnx.__version__]).encode())
    commit = metadata.get("commit")
    if commit and metadata.get("source"):
        digest.update(f"commit:{metadata['source']}@{commit}".encode())
    else:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".hub-")):
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:32]


def cached_export(pipe: Any, folder: Path, metadata: dict[str, Any]) -> Path:
    """The cached export of ``pipe``'s model (made now if missing; the export checks its parity)."""
    target = cache_root() / f"{pipe.task}-{folder_key(folder, metadata, pipe.task)}"
    if not is_onnx_folder(target):
        pipe.export(target, format="onnx")
    return target
