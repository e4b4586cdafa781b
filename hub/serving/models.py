"""The models a server serves: :class:`ServedModel` and loading them from ``NAME[=MODEL]`` specs.

A spec is ``[NAME=][TASK:]MODEL``:

* ``text-classify`` or ``sentiment-minilm``: a task (its default model) or a catalogue model,
  served under that name;
* ``clf=text-classify``: the same under the name ``clf``;
* ``clf=./my-model``: a folder written by ``pipe.save`` (its ``config.json`` names the task);
* ``clf=text-classify:./ckpt`` or ``emb=text-embed:org/name``: a task and the weights
  (a folder or a Hugging Face repo id), for checkpoints whose config does not name Hub's task.

Everything goes through :func:`hub.load`, so a served model is exactly the pipeline a Python
user gets, plugins included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.errors import InvalidInputError

#: the keywords of :func:`hub.load` a server passes on for every model it loads
LOAD_OPTIONS = ("device", "dtype", "revision", "quantize", "backend")

if TYPE_CHECKING:
    from hub.serving.batcher import Batcher

#: call keywords the server owns: a request may not set them
SERVER_OPTIONS = frozenset({"batch_size", "progress"})
#: resource limits only the operator may raise (their environment variables apply to every call)
OPERATOR_LIMITS = {"max_windows": "HUB_MAX_WINDOWS", "max_chunks": "HUB_MAX_CHUNKS",
                   "max_pixels": "HUB_MAX_IMAGE_PIXELS", "max_audio_seconds": "HUB_MAX_AUDIO_SECONDS"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(eq=False)
class ServedModel:
    """One model behind the server.

    Attributes:
        name: the name in URLs (``/v2/models/{name}``); letters, digits, ``.``, ``_``, ``-``.
        pipeline: the :class:`hub.pipeline.Pipeline` (or an object with its ``task``,
            ``is_batch``, ``check_call_parameters`` and ``metadata``).
        predict: what a batch calls, ``predict(items, **options) -> list``; default the
            pipeline itself. Tests put a failing or slow function here.
        modality: the task's declared modality (``"text"``, ``"vision"``, ``"audio"``, ...),
            which decides how JSON inputs are decoded.
        source: where the weights came from (for ``GET /v2/models/{name}``).
        version: the model version the OIP routes report.
        ready: False until loaded and while shutting down.
        batcher: set by the app when it starts.
    """

    name: str
    pipeline: Any
    predict: Callable[..., Sequence[Any]] | None = None
    modality: str | None = None
    source: str = ""
    version: str = "1"
    ready: bool = True
    batcher: Batcher | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.predict is None:
            self.predict = self.pipeline
        if self.modality is None:
            self.modality = task_modality(self.task)
        if not self.source:
            self.source = str(getattr(self.pipeline, "metadata", {}).get("source", ""))

    @property
    def task(self) -> str:
        return str(getattr(self.pipeline, "task", "") or "")

    def split_inputs(self, inputs: Any) -> tuple[list[Any], bool]:
        """``(items, single)``: the request's inputs as a list, and whether it was one input
        (the pipeline's own :meth:`~hub.pipeline.Pipeline.is_batch` decides, as in Python)."""
        is_batch = getattr(self.pipeline, "is_batch", None)
        batch = is_batch(inputs) if callable(is_batch) else isinstance(inputs, (list, tuple))
        return (list(inputs), False) if batch else ([inputs], True)

    def check_options(self, options: Any) -> dict[str, Any]:
        """A request's call options, checked as the Python call checks them (unknown keyword:
        the closest; bad value: named), before the request is queued.

        Args:
            options: the request's ``options`` / ``parameters`` object.

        Returns:
            The options as a dict.

        Raises:
            InvalidInputError: not an object, a server-owned keyword, or what the pipeline's
                ``check_call_parameters`` refuses.
        """
        if options is None:
            return {}
        if not isinstance(options, Mapping):
            raise InvalidInputError(f"options must be a JSON object of {self.task} call keywords, got "
                                    f"{type(options).__name__}.")
        options = dict(options)
        for key in options:
            if key in SERVER_OPTIONS:
                raise InvalidInputError(f"option {key!r} is set by the server (it batches requests itself); "
                                        "drop it from the request.")
            if key in OPERATOR_LIMITS:
                raise InvalidInputError(f"option {key!r} is a resource limit only the server's operator sets "
                                        f"(environment variable {OPERATOR_LIMITS[key]} of `hub serve`); drop it.")
        accepted = getattr(self.pipeline, "accepted_call_parameters", None)
        if callable(accepted):  # unknown keywords: the close match among those a request may set
            from hub.validate import check_keywords

            check_keywords(self.task, options, set(accepted()) - SERVER_OPTIONS - set(OPERATOR_LIMITS))
        check = getattr(self.pipeline, "check_call_parameters", None)
        if callable(check):
            check(options)
        return options

    def info(self) -> dict[str, Any]:
        """What ``GET /models/{name}`` shows."""
        accepted = getattr(self.pipeline, "accepted_call_parameters", None)
        options = sorted(set(accepted()) - SERVER_OPTIONS - set(OPERATOR_LIMITS)) if callable(accepted) else []
        metadata = getattr(self.pipeline, "metadata", {}) or {}
        return {"name": self.name, "task": self.task, "modality": self.modality, "source": self.source,
                "ready": self.ready, "version": self.version, "options": options,
                "labels": list(metadata.get("labels") or [])}


def check_name(name: Any) -> str:
    """A served model's name: URL-safe (letters, digits, ``.``, ``_``, ``-``; 128 at most)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInputError(f"served model name {name!r} is not usable in a URL: use letters, digits, '.', '_' "
                                "and '-' (at most 128, starting with a letter or digit), e.g. clf=MODEL.")
    return name


def task_modality(task: str) -> str | None:
    """The modality a task declares in its TaskSpec (None when unknown or undeclared)."""
    if not task:
        return None
    try:
        from hub.registry import get_registry

        entry = get_registry().task(task)
    except Exception:  # an unregistered pipeline object (tests, wrappers): no modality
        return None
    return entry.spec.modality if entry.spec is not None else None


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``[NAME=][TASK:]MODEL``: what :func:`hub.load` receives."""

    name: str
    load_name: str
    model: str | None = None

    def load(self, **load_options: Any) -> ServedModel:
        """Load the pipeline (:func:`hub.load`) and wrap it.

        Args:
            **load_options: :data:`LOAD_OPTIONS` for :func:`hub.load`.

        Returns:
            The served model, ready.
        """
        from hub.api import load

        pipe = load(self.load_name, model=self.model, **load_options)
        return ServedModel(self.name, pipe)


def parse_spec(spec: str) -> ModelSpec:
    """Parse ``[NAME=][TASK:]MODEL`` (see the module docstring).

    Args:
        spec: the command-line argument.

    Returns:
        The name to serve under and what to load.

    Raises:
        InvalidInputError: an empty part, a bad name, or a folder whose task cannot be told.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidInputError(f"a model to serve is NAME, NAME=MODEL or NAME=TASK:MODEL, got {spec!r}.")
    spec = spec.strip()
    name, sep, target = spec.partition("=")
    if not sep:
        name, target = "", spec
    if sep and (not name or not target):
        raise InvalidInputError(f"{spec!r}: NAME=MODEL needs both parts (e.g. clf=text-classify).")
    task, model = _split_task(target)
    if task is not None:
        return ModelSpec(name or _derive_name(model), task, model)
    folder = Path(target).expanduser()
    if folder.is_dir():
        return ModelSpec(name or _derive_name(target), _folder_task(folder, spec), str(folder))
    if "/" in target and not _known_name(target):
        raise InvalidInputError(f"{spec!r}: {target!r} is not a task, a catalogue model or an existing folder; for "
                                f"a Hugging Face repo id, name the task: {name or 'NAME'}=TASK:{target}.")
    return ModelSpec(name or _derive_name(target), target)


def _known_name(text: str) -> bool:
    try:
        from hub.registry import get_registry

        registry = get_registry()
        registry.resolve(text)
        return True
    except Exception:
        return False


def _split_task(target: str) -> tuple[str | None, str]:
    """``TASK:MODEL`` when the part before the first ``:`` is a task or alias; else no task."""
    head, sep, rest = target.partition(":")
    if not sep or not head or not rest or head == "hf":
        return None, target
    from hub.registry import get_registry

    registry = get_registry()
    if head in registry.tasks or head in registry.aliases:
        return head, rest
    return None, target


def _folder_task(folder: Path, spec: str) -> str:
    """The task a Hub-saved folder's ``config.json`` names."""
    config = folder / "config.json"
    task = None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        task = data.get("task") if isinstance(data, dict) else None
    except (OSError, ValueError):
        pass
    if not isinstance(task, str) or not task:
        raise InvalidInputError(f"{spec!r}: {str(config)!r} does not name a Hub task (a checkpoint from another "
                                f"library); name it: NAME=TASK:{folder}.")
    return task


def _derive_name(target: str) -> str:
    text = target.rstrip("/").removeprefix("hf://")
    text = text.split("@", 1)[0].rsplit("/", 1)[-1] or "model"
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._") or "model"
    return text[:128]


def load_models(specs: Iterable[str | ModelSpec | ServedModel], **load_options: Any) -> list[ServedModel]:
    """Load every spec (strings are parsed by :func:`parse_spec`); names must be distinct.

    Args:
        specs: ``NAME[=MODEL]`` strings, parsed specs or ready :class:`ServedModel` objects.
        **load_options: :data:`LOAD_OPTIONS` (``device``, ``dtype``, ``revision``, ``quantize``,
            ``backend``) for :func:`hub.load`.

    Returns:
        The served models, in order.

    Raises:
        InvalidInputError: no specs, or two with one name.
    """
    if isinstance(specs, (str, ModelSpec, ServedModel)):
        specs = [specs]
    parsed = [parse_spec(s) if isinstance(s, str) else s for s in specs]
    if not parsed:
        raise InvalidInputError("no model to serve: pass at least one NAME[=MODEL], e.g. `hub serve text-classify`.")
    names = [p.name for p in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInputError(f"two models would be served as {', '.join(map(repr, duplicates))}; give each its own "
                                "name: NAME=MODEL.")
    load_options = {k: v for k, v in load_options.items() if v is not None}
    return [p if isinstance(p, ServedModel) else p.load(**load_options) for p in parsed]
