"""``hub.load``: a task or model name in, a ready Pipeline out."""

from __future__ import annotations

from typing import Any

from hub.errors import HubError, InvalidInputError

_DTYPES = {"float32": "float32", "fp32": "float32", "float": "float32",
           "bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16",
           "half": "float16"}


def load(name: str, *, model: str | None = None, revision: str | None = None,
         device: Any = None, dtype: Any = None) -> Any:
    """Load a pipeline for a task (``"text-classify"``) or a catalogue model.

    ``model`` picks the weights: a catalogue name, a local folder (e.g. one written by
    ``pipe.save``) or a Hugging Face repo id (``"org/name"``, pinned by ``revision``).
    ``device`` defaults to CUDA when available, else CPU; ``dtype`` to float32.
    """

    from hub.registry import get_registry
    from hub.sources import resolve_model_argument, resolve_source
    from hub.specs import load_object

    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"hub.load needs a task or model name, got {name!r}; "
                                "run `hub list` to see them.")
    registry = get_registry()
    task, entry = registry.resolve(name.strip())
    if task.spec is None:
        raise HubError(f"Task {task.name!r} is in the catalogue but no installed plugin provides "
                       "it yet; `hub plugins` lists what is installed.")
    if model is not None:
        if entry is not None:
            raise InvalidInputError(f"{name!r} already names a model; pass a task as the first "
                                    "argument when you choose the model with model=.")
        entry, resolved = resolve_model_argument(model, registry.models, revision=revision)
        if entry is not None and registry.task(entry.task).name != task.name:
            raise InvalidInputError(f"Model {entry.name!r} is a {entry.task!r} model, "
                                    f"not a {task.name!r} one.")
    else:
        if entry is None:
            entry = registry.default_model_entry(task)  # no default: says so, lists the task's models
        resolved = resolve_source(entry.source, revision=revision)

    metadata = {"task": task.name, **resolved.metadata}
    if entry is not None:
        metadata.update(model_name=entry.name, license=entry.license, labels=list(entry.labels))
    torch_device = _torch_device(device)
    pipeline_cls = load_object(task.spec.pipeline)
    return pipeline_cls.from_folder(resolved.folder, device=torch_device,
                                    dtype=_torch_dtype(dtype), metadata=metadata)


def create(task: str, *, config: dict[str, Any] | None = None, tokenizer: Any = None,
           device: Any = None, dtype: Any = None, seed: int | None = None) -> Any:
    """A pipeline for ``task`` holding a fresh, randomly initialised model, to pretrain.

    ``config`` holds the model's sizes (what a task accepts is in its pipeline's
    ``from_scratch``; e.g. ``{"num_layers": 4, "hidden_size": 256, "num_heads": 4}``),
    ``tokenizer`` a tokenizer object or a folder holding one, ``seed`` makes the
    initialisation reproducible. ``device`` defaults to CUDA when available.

    >>> pipe = hub.create("text-generate", config={"num_layers": 4}, tokenizer=tok)  # doctest: +SKIP
    >>> pipe.pretrain("corpus.txt", block_size=128, epochs=1)                     # doctest: +SKIP
    """
    from hub.registry import get_registry
    from hub.specs import load_object

    if not isinstance(task, str) or not task.strip():
        raise InvalidInputError(f"hub.create needs a task name, got {task!r}; run `hub list` to see them.")
    registry = get_registry()
    entry = registry.task(task.strip())  # unknown names: an error with the closest matches
    if entry.spec is None:
        raise HubError(f"Task {entry.name!r} is in the catalogue but no installed plugin provides "
                       "it yet; `hub plugins` lists what is installed.")
    pipeline_cls = load_object(entry.spec.pipeline)
    if not callable(getattr(pipeline_cls, "from_scratch", None)):
        able = []
        for name, other in sorted(registry.tasks.items()):
            try:
                if other.spec is not None and callable(getattr(load_object(other.spec.pipeline), "from_scratch",
                                                               None)):
                    able.append(name)
            except Exception:  # a broken plugin must not hide this error
                continue
        raise HubError(f"Task {entry.name!r} cannot be created from scratch: its pipeline "
                       f"{pipeline_cls.__name__} has no from_scratch(). Tasks that can: "
                       f"{', '.join(able) or 'none installed'}. Use hub.load({entry.name!r}, model=...) "
                       "to start from a trained model instead.")
    options: dict[str, Any] = {"device": _torch_device(device), "dtype": _torch_dtype(dtype)}
    if seed is not None:
        options["seed"] = seed
    return pipeline_cls.from_scratch(config, tokenizer, **options)


def _torch_dtype(dtype: Any):
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return getattr(torch, _DTYPES[dtype.lower()])
    raise InvalidInputError(f"dtype {dtype!r} is not understood; use 'float32', 'bfloat16' or "
                            "'float16' (or a torch.dtype).")


def _torch_device(device: Any):
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidInputError(f"device {device!r} is not understood; use 'cpu', 'cuda' or "
                                "'cuda:N'.") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} was asked for but this machine has no CUDA GPU "
                                "(or torch was built without CUDA); use device='cpu'.")
    return resolved
