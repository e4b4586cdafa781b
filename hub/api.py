"""``hub.load``: a task or model name in, a ready Pipeline out."""

from __future__ import annotations

from typing import Any

from hub.errors import HubError, InputTypeError, InvalidInputError

_DTYPES = {"float32": "float32", "fp32": "float32", "float": "float32",
           "bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16",
           "half": "float16", "float64": "float64", "fp64": "float64", "double": "float64"}
#: the dtypes a model may run in (an integer dtype would truncate every weight to 0, 1, -1 ...)
ALLOWED_DTYPES = ("float32", "bfloat16", "float16", "float64")


def load(name: str, *, model: str | None = None, revision: str | None = None,
         device: Any = None, dtype: Any = None, quantize: Any = None, backend: str = "torch",
         backend_options: dict[str, Any] | None = None, **call_defaults: Any) -> Any:
    """Load a pipeline for a task (``"text-classify"``) or a catalogue model.

    Args:
        name: a task name or alias (``"text-classify"``, ``"sentiment-analysis"``) or a
            catalogue model name (``hub list`` shows them).
        model: the weights, when ``name`` is a task: a catalogue name, a local folder (e.g.
            one written by ``pipe.save``) or a Hugging Face repo id (``"org/name"``). Default:
            the task's default model.
        revision: branch, tag or commit of a Hugging Face model (pin a commit to know what
            you run); the resolved commit is in ``pipe.metadata["commit"]``.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; default CUDA when available, else CPU.
        dtype: ``"float32"`` (default), ``"bfloat16"``, ``"float16"`` or a torch dtype.
        quantize: ``"int8"`` (or True): every Linear layer computes with int8 weights and
            dynamically quantised int8 activations, on the CPU (:mod:`hub.int8_compute`);
            False: float compute; None (default, ``"auto"``): int8 for a folder saved with
            ``save(quantize=True)`` (the shipped text default) on the CPU when no ``dtype`` is
            given, float otherwise. ``pipe.metadata["compute"]`` says what runs and why.
            With ``backend="onnxruntime"``: ``"int8"`` is ONNX Runtime's own dynamic int8
            quantisation of the graph; otherwise the graph runs in float32.
        backend: ``"torch"`` (default) or ``"onnxruntime"``: the same pipeline (preprocessing,
            batching, long inputs, results) with the model run by ONNX Runtime, from a folder
            ``pipe.export`` wrote or exported on the fly and cached (:mod:`hub.ort_backend`;
            needs ``pip install 'hub-sdk[onnx]'``).
        backend_options: ONNX Runtime's options: ``optimization`` (``"all"`` default,
            ``"extended"``, ``"basic"``, ``"disabled"``), ``threads`` (intra-op; default torch's
            thread count), ``providers``.
        **call_defaults: defaults for every call (``hub.load("text-classify", top_k=2,
            batch_size=16)``, as transformers' ``pipeline(...)`` takes them), checked against
            the task's call keywords now; a call's own keyword wins.

    Returns:
        The task's :class:`hub.pipeline.Pipeline`, ready to call.

    Raises:
        UnknownNameError: an unknown name (with the closest matches), or a well-known task no
            installed plugin provides.
        InvalidInputError, InputTypeError: a bad argument (named), before any download.
        ModelLoadError: the folder is not a loadable model (names the file and the problem).
    """

    from hub.registry import get_registry
    from hub.sources import resolve_model_argument, resolve_source
    from hub.specs import load_object
    from hub.validate import check_keywords

    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"hub.load needs a task or model name, got {name!r}; "
                                "run `hub list` to see them.")
    model = _check_model_argument(model)
    if revision is not None and (not isinstance(revision, str) or not revision.strip()):
        raise InputTypeError(f"hub.load(revision=...) must be a branch, tag or commit string, got "
                             f"{type(revision).__name__} {revision!r:.60}.")
    torch_device, torch_dtype = _torch_device(device), _torch_dtype(dtype)  # before any download
    from hub.int8_compute import apply_quantize, check_quantize_request

    if backend != "torch" or backend_options is not None:  # ONNX Runtime: its own quantisation
        from hub.ort_backend import check_backend_arguments

        check_backend_arguments(backend, quantize, backend_options)
    if backend == "torch":
        check_quantize_request(quantize, device=torch_device, dtype=torch_dtype)
    registry = get_registry()
    task, entry = registry.resolve(name.strip())
    if task.spec is None:
        raise HubError(f"Task {task.name!r} is in the catalogue but no installed plugin provides "
                       "it yet; `hub plugins` lists what is installed.")
    matched = registry.pattern_match(name.strip())  # translation_en_to_de: src_lang/tgt_lang defaults
    if matched is not None:
        call_defaults = {**matched[1], **call_defaults}
    pipeline_cls = load_object(task.spec.pipeline)
    if call_defaults:  # names checked before any download; values once the pipeline exists
        check_keywords(task.name, call_defaults, pipeline_cls.accepted_call_parameters())
    if model is not None:
        if entry is not None:
            raise InvalidInputError(f"{name!r} already names a model; pass a task as the first "
                                    "argument when you choose the model with model=.")
        # A catalogue model of another task loads as its folder would (a classifier's backbone
        # embeds, a bare encoder gets a task head): the pipeline's loader decides, and refuses
        # a module it cannot run naming the task that can (see _load_other_task below).
        entry, resolved = resolve_model_argument(model, registry.models, revision=revision)
    else:
        if entry is None:
            entry = registry.default_model_entry(task)  # no default: says so, lists the task's models
        resolved = resolve_source(entry.source, revision=revision)

    metadata = {"task": task.name, **resolved.metadata}
    if entry is not None:
        metadata.update(model_name=entry.name, license=entry.license, labels=list(entry.labels))
    if backend == "onnxruntime":
        from hub.ort_backend import load_ort_pipeline

        pipe = load_ort_pipeline(pipeline_cls, resolved.folder, device=torch_device, metadata=metadata,
                                 quantize=quantize, options=backend_options)
        if call_defaults:
            pipe.set_call_defaults(call_defaults)
        return pipe
    _refuse_onnx_folder(resolved.folder)
    if entry is not None and registry.task(entry.task).name != task.name:
        metadata["model_task"] = entry.task
        pipe = _load_other_task(pipeline_cls, entry, task.name, resolved.folder, device=torch_device,
                                dtype=torch_dtype, metadata=metadata)
    else:
        pipe = pipeline_cls.from_folder(resolved.folder, device=torch_device, dtype=torch_dtype, metadata=metadata)
    apply_quantize(pipe, quantize, stored_int8=_stored_int8(resolved.folder))
    if call_defaults:
        pipe.set_call_defaults(call_defaults)
    return pipe


def _load_other_task(pipeline_cls: Any, entry: Any, task: str, folder: Any, **kwargs: Any) -> Any:
    """Load catalogue model ``entry`` (listed for another task) with ``task``'s pipeline.

    The same folder loads by path, so the name must too (``hub.load("image-embed",
    model="icon-context-resnet")`` embeds with the classifier's backbone). When the pipeline
    cannot run the module, its :class:`~hub.errors.ModelLoadError` is re-raised naming the
    catalogue model, its task and the load that works.
    """
    from hub.errors import ModelLoadError

    try:
        return pipeline_cls.from_folder(folder, **kwargs)
    except ModelLoadError as exc:
        raise ModelLoadError(f"Catalogue model {entry.name!r} is listed for task {entry.task!r} and {task} "
                             f"cannot run it (load it with hub.load({entry.task!r}, model={entry.name!r})): "
                             f"{exc}") from exc


def _refuse_onnx_folder(folder: Any) -> None:
    """A folder holding only an ONNX export has no torch weights: say which backend runs it."""
    from pathlib import Path

    from hub.errors import ModelLoadError

    folder = Path(folder)
    if (folder / "model.onnx").is_file() and (folder / "onnx.json").is_file() and not any(
            (folder / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json",
                                                   "pytorch_model.bin")):
        raise ModelLoadError(f"{str(folder)!r} holds an ONNX export (model.onnx) and no torch weights; run it with "
                             "hub.load(task, model=folder, backend='onnxruntime'), or load the model it was "
                             "exported from for backend='torch'.")


def _stored_int8(folder: Any) -> bool:
    """Whether the folder's weights were saved as int8 rows (``save(quantize=True)``)."""
    from hub.modeling import read_config
    from hub.quantize import FORMAT

    try:
        return read_config(folder).get("weights_format") == FORMAT
    except (HubError, OSError, TypeError):
        return False


def _check_model_argument(model: Any) -> str | None:
    """``model=`` is a name, a folder or a repo id: a string or a path (returned as a string)."""
    import os

    if model is None:
        return None
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
        model = model.decode() if isinstance(model, bytes) else model
    if not isinstance(model, str):
        raise InputTypeError(f"hub.load(model=...) takes a catalogue name, a local folder or a Hugging Face "
                             f"repo id ('org/name') as a string or path, got {type(model).__name__} "
                             f"{model!r:.60}; to wrap a model object, use the task's pipeline class.")
    if not model.strip():
        raise InvalidInputError("hub.load(model='') is empty; pass a catalogue name, a folder or a repo id "
                                "(or leave model= out for the task's default).")
    return model


def create(task: str, *, config: dict[str, Any] | None = None, tokenizer: Any = None,
           device: Any = None, dtype: Any = None, seed: int | None = None, quantize: Any = None) -> Any:
    """A pipeline for ``task`` holding a fresh, randomly initialised model, to pretrain.

    Args:
        task: a task name or alias whose pipeline implements ``from_scratch``.
        config: the model's sizes (what a task accepts is in its pipeline's
            ``from_scratch``; e.g. ``{"num_layers": 4, "hidden_size": 256, "num_heads": 4}``);
            unknown keys are refused with the closest match. Default: the task's small default.
        tokenizer: a tokenizer object or a folder holding one, for tasks that read text.
        device: as for :func:`load`; default CUDA when available.
        dtype: as for :func:`load`.
        seed: makes the initialisation reproducible.
        quantize: ``"int8"`` (or True): the new model's Linear layers compute in int8 on the
            CPU (as for :func:`load`; e.g. to measure speed); default float.

    Returns:
        The task's pipeline holding the new model (``pipe.pretrain(...)`` / ``fine_tune``).

    Raises:
        NotSupportedError: the task cannot be created from scratch (names those that can).
        ConfigError: a config key or value the task does not take.

    >>> pipe = hub.create("text-generate", config={"num_layers": 4}, tokenizer=tok)  # doctest: +SKIP
    >>> pipe.pretrain("corpus.txt", block_size=128, epochs=1)                     # doctest: +SKIP
    """
    from hub.registry import get_registry
    from hub.specs import load_object

    if not isinstance(task, str) or not task.strip():
        raise InvalidInputError(f"hub.create needs a task name, got {task!r}; run `hub list` to see them.")
    if config is not None and not isinstance(config, dict):
        raise InputTypeError(f"hub.create(config=...) must be a dict of model sizes (e.g. {{'num_layers': 4}}), "
                             f"got {type(config).__name__} {config!r:.60}.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
        raise InvalidInputError(f"hub.create(seed=...) must be a non-negative integer, got {seed!r:.60}.")
    registry = get_registry()
    entry = registry.task(task.strip())  # unknown names: an error with the closest matches
    if entry.spec is None:
        raise HubError(f"Task {entry.name!r} is in the catalogue but no installed plugin provides "
                       "it yet; `hub plugins` lists what is installed.")
    from hub.int8_compute import apply_quantize, check_quantize_request

    torch_device, torch_dtype = _torch_device(device), _torch_dtype(dtype)
    check_quantize_request(quantize, device=torch_device, dtype=torch_dtype)
    pipeline_cls = load_object(entry.spec.pipeline)
    # Pipeline.from_scratch: a task without it raises NotSupportedError naming the tasks that have it
    pipe = pipeline_cls.from_scratch(config, tokenizer=tokenizer, device=torch_device, dtype=torch_dtype, seed=seed)
    return apply_quantize(pipe, quantize)


def _torch_dtype(dtype: Any):
    import torch

    allowed = ", ".join(repr(d) for d in ALLOWED_DTYPES)
    if dtype is None:
        return None
    if isinstance(dtype, torch.dtype):
        if str(dtype).removeprefix("torch.") in ALLOWED_DTYPES:
            return dtype
        raise InvalidInputError(f"dtype {dtype} cannot hold a model's weights; use one of {allowed} "
                                "(or the torch.dtype of one); for int8 compute pass quantize='int8'.")
    if isinstance(dtype, str) and dtype.strip().lower().removeprefix("torch.") in _DTYPES:
        return getattr(torch, _DTYPES[dtype.strip().lower().removeprefix("torch.")])
    raise InvalidInputError(f"dtype {dtype!r} is not understood; use one of {allowed} (or a torch.dtype).")


def _torch_device(device: Any):
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise InvalidInputError(f"device {device!r:.60} is not understood; use 'cpu', 'cuda' or 'cuda:N'.")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InvalidInputError(f"device {device!r} is not understood; use 'cpu', 'cuda' or "
                                "'cuda:N'.") from None
    if resolved.type == "meta":
        raise InvalidInputError("device 'meta' holds shapes but no data, so a model cannot run there; use "
                                "'cpu', 'cuda' or 'cuda:N'.")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} was asked for but this machine has no CUDA GPU "
                                "(or torch was built without CUDA); use device='cpu'.")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise InvalidInputError(f"device {device!r} does not exist: this machine has "
                                f"{torch.cuda.device_count()} CUDA device(s), cuda:0 to "
                                f"cuda:{torch.cuda.device_count() - 1}.")
    if resolved.type not in ("cpu", "cuda"):
        backend = getattr(torch, resolved.type, None)
        if backend is None or not getattr(backend, "is_available", lambda: False)():
            gpu = " or 'cuda'" if torch.cuda.is_available() else ""
            raise InvalidInputError(f"device {device!r} is not available on this machine; use 'cpu'{gpu}.")
    return resolved
