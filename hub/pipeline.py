"""The Pipeline base: preprocess -> length-sorted batches -> model -> postprocess.

A pipeline takes one input (returns one result) or a list (returns a list in the
same order). Lists are preprocessed at once into *features* (one per input, or
several when a long input is cut into windows), sorted by length and cut into
batches of ``batch_size`` so that each batch pads only to its own longest item.
The model's per-feature outputs are then grouped back by input and postprocessed.
Subclasses implement the steps and the training verbs of their task.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import torch

from hub.errors import InputTypeError, InvalidInputError, NotSupportedError
from hub.validate import check_bool, check_int, check_keywords

if TYPE_CHECKING:
    from hub.modeling import LoadedModel

#: call keywords the base itself handles, for every pipeline
BASE_CALL_PARAMETERS = frozenset({"batch_size", "progress"})
_END = object()  # an exhausted iterator's next()
ErrorT = TypeVar("ErrorT", bound=Exception)
#: with ``progress=None`` a bar appears on a terminal only when the work lasts longer than this
PROGRESS_DELAY_S = 2.0
#: the verbs that train the pipeline's weights
TRAINING_VERBS = ("fine_tune", "pretrain")


def _float_weights_first(method: Any, verb: str) -> Any:
    """``method`` (a task's ``fine_tune``/``pretrain``), first turning an int8-computing model
    (``hub.load(..., quantize="int8")``, or an int8-stored folder on CPU) back into float
    Linear layers with the same dequantised weights: int8 weights have no gradients. Wrapped
    once, for every task, by ``Pipeline.__init_subclass__``."""
    import functools

    @functools.wraps(method)
    def wrapper(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        compute = (getattr(self, "metadata", None) or {}).get("compute")
        if isinstance(compute, dict) and compute.get("weights") == "int8":
            from hub.int8_compute import dequantize_pipeline

            dequantize_pipeline(self, verb)
        return method(self, *args, **kwargs)

    wrapper._float_weights_first = True  # type: ignore[attr-defined]
    return wrapper


class Pipeline:
    """Base class of every task pipeline; plugins subclass it."""

    task: ClassVar[str] = ""
    default_batch_size: ClassVar[int] = 32
    #: the call keywords this task takes besides ``batch_size`` and ``progress``. ``None``
    #: (the default): the keyword parameters of :meth:`preprocess` and :meth:`postprocess`
    #: (``**kwargs`` catch-alls do not count). A pipeline that reads keywords through
    #: ``**kwargs`` or overrides ``__call__`` declares them here. Any other keyword is
    #: refused before work starts, with the closest accepted one.
    call_parameters: ClassVar[frozenset[str] | None] = None
    #: call keywords that carry one value per input (recommend's ``history=``: one item list per
    #: user). For a list they are lists of the same length; for a stream, any iterable read in
    #: step with the inputs, a batch at a time, so neither is materialised.
    per_input_parameters: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # contract checked at definition time, not when a user first calls the pipeline
        if not cls.__name__.startswith("_") and not cls.task and not cls.__dict__.get("__abstract__", False):
            raise TypeError(f"Pipeline subclass {cls.__qualname__} must set the class attribute `task`.")
        # every task's fine_tune (its own or a mixin's) takes adapter= (PEFT, hub.adapters), inside the
        # wrappers below: an int8 model is float again before the adapter goes in
        method = cls.fine_tune
        if method is not Pipeline.fine_tune and not getattr(method, "__hub_adapter_wrapper__", False):
            from hub.adapters import accepts_adapter

            cls.fine_tune = accepts_adapter(method)  # type: ignore[method-assign]
        for verb in TRAINING_VERBS:  # int8-computing pipelines train on float weights (see _float_weights_first)
            method = getattr(cls, verb)
            if method is not getattr(Pipeline, verb, None) and not getattr(method, "_float_weights_first", False):
                setattr(cls, verb, _float_weights_first(method, verb))
        # every task's training verbs (its own or a mixin's) take Hugging Face datasets and record
        # lineage for the model card (hub.train.provenance), outermost: splits resolved first
        from hub.train.provenance import wrap_verb

        for verb in ("fine_tune", "pretrain", "evaluate"):
            method = getattr(cls, verb)
            if method is not getattr(Pipeline, verb, None) and not getattr(method, "__hub_verb__", False):
                setattr(cls, verb, wrap_verb(verb, method))

    def __init__(self, model: torch.nn.Module, *, device: torch.device | str = "cpu",
                 dtype: torch.dtype | None = None, metadata: dict[str, Any] | None = None) -> None:
        self.model = model
        self.device = torch.device(device)
        self.dtype = dtype
        self.metadata: dict[str, Any] = dict(metadata or {})
        #: call keywords given at ``hub.load(task, top_k=2, ...)``, used when a call omits them
        self.call_defaults: dict[str, Any] = {}

    # -- loading: written once, with small override points (huggingface_hub's ModelHubMixin:
    #    the public from_pretrained calls the subclass's _from_pretrained), the mirror of save
    #: the module type(s) this task runs; a folder holding another is refused by
    #: :meth:`_model_from_loaded` with :func:`hub.modeling.wrong_model` (which names the task
    #: the model is for). ``None``: any module.
    model_types: ClassVar[type | tuple[type, ...] | None] = None
    #: what that error says the task needs, e.g. "a causal language model (e.g. GPT2LMHeadModel)"
    model_needs: ClassVar[str] = ""

    @classmethod
    def from_folder(cls, folder: Path, *, device: torch.device, dtype: torch.dtype | None,
                    metadata: dict[str, Any]) -> Pipeline:
        """Build the pipeline from a model folder (what ``hub.load`` calls): the model through
        :meth:`_load_model` (:func:`hub.modeling.load_model`: Hub's format or a converted foreign
        one, on ``device`` in ``dtype``), the module the task runs (:meth:`_model_from_loaded`,
        which refuses another task's model), the pipeline's metadata (``architecture``,
        ``converted_from``) and the pipeline itself (:meth:`_from_loaded`, which reads the task's
        extra files through :meth:`_load_extra_files`). Subclasses override the ``_``-methods,
        not this one.

        Args:
            folder: a local model folder (Hub's format or a converted foreign one).
            device: where the model runs; dtype: its floating dtype (None: as stored).
            metadata: what the loader knows (task, source, commit, catalogue entry).

        Returns:
            The pipeline, in eval mode.

        Raises:
            ModelLoadError: the folder cannot be read, or holds a model for another task.
        """
        folder = Path(folder)
        from hub.adapters import is_adapter_folder, load_adapter_folder

        if is_adapter_folder(folder):  # an adapter: its base through hub.load, then the adapter on it
            return load_adapter_folder(cls, folder, device=device, dtype=dtype, metadata=metadata)
        loaded = cls._load_model(folder, device=device, dtype=dtype)
        metadata = {**metadata, "architecture": loaded.architecture}
        from hub.card import read_card_data

        for key, value in read_card_data(folder).items():  # lineage survives load + save (the card's data)
            if metadata.get(key) is None:
                metadata[key] = value
        if loaded.converted_from:
            metadata["converted_from"] = loaded.converted_from
        model = cls._model_from_loaded(loaded, metadata)
        return cls._from_loaded(model.eval(), folder, device=device, dtype=dtype, metadata=metadata)

    @classmethod
    def _load_model(cls, folder: Path, *, device: torch.device, dtype: torch.dtype | None) -> LoadedModel:
        """Read the folder's model (default :func:`hub.modeling.load_model`); a task without
        Hub-format weights returns its own :class:`hub.modeling.LoadedModel`."""
        from hub.modeling import load_model

        return load_model(folder, device=device, dtype=dtype)

    @classmethod
    def _model_from_loaded(cls, loaded: LoadedModel, metadata: dict[str, Any]) -> torch.nn.Module:
        """The module the pipeline runs: ``loaded.module`` if it is one of :attr:`model_types`,
        else the wrong-task error. An override may adapt the module (add a head, take the
        encoder) and record what it learns in ``metadata`` (labels...), which it may change."""
        from hub.modeling import wrong_model

        if cls.model_types is not None and not isinstance(loaded.module, cls.model_types):
            raise wrong_model(loaded, cls.task, cls.model_needs or f"a model of type {cls.model_types!r}")
        return loaded.module

    @classmethod
    def _load_extra_files(cls, folder: Path, model: torch.nn.Module, metadata: dict[str, Any]) -> dict[str, Any]:
        """The task's files beside the weights (a tokenizer, id maps...), read and checked
        against ``model`` where they must agree, as keyword arguments of the pipeline's
        constructor (default none); the mirror of :meth:`_save_extra_files`. It may add to
        ``metadata``."""
        return {}

    @classmethod
    def _from_loaded(cls, model: torch.nn.Module, folder: Path, *, device: torch.device,
                     dtype: torch.dtype | None, metadata: dict[str, Any]) -> Pipeline:
        """The pipeline from its module: ``cls(model, device=, dtype=, metadata=,
        **_load_extra_files(folder, model, metadata))``; override when the constructor differs."""
        extra = cls._load_extra_files(folder, model, metadata)
        return cls(model, device=device, dtype=dtype, metadata=metadata, **extra)

    # -- the steps a subclass provides -----------------------------------------------
    def preprocess(self, inputs: list[Any], **params: Any) -> list[dict[str, Any]]:
        """Turn the inputs into feature dicts with an integer ``"length"``.

        One feature per input, in order; or, for inputs split into several pieces, features
        carrying ``"input_index"`` (the input they belong to).
        """
        raise NotImplementedError

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, batch: dict[str, torch.Tensor]) -> Any:
        raise NotImplementedError

    def unbatch(self, outputs: Any) -> list[Any]:
        """Split a batch of model outputs into one output per feature (on the CPU)."""
        if isinstance(outputs, torch.Tensor):
            return list(outputs.cpu().unbind(0))
        if isinstance(outputs, dict):
            columns = {k: self.unbatch(v) for k, v in outputs.items()}
            return [dict(zip(columns, row)) for row in zip(*columns.values())]
        raise TypeError(f"{type(self).__name__}.forward returned {type(outputs).__name__}; override unbatch().")

    def postprocess(self, outputs: list[Any], features: list[dict[str, Any]], **params: Any) -> Any:
        """One input's result from the outputs of its features (usually exactly one)."""
        raise NotImplementedError

    # -- saving: written once, with small override points (huggingface_hub's ModelHubMixin:
    #    the public save_pretrained calls the subclass's _save_pretrained) ----------------
    #: whether ``save(quantize=True)`` can store this task's weights as int8 (a task whose
    #: model has no weights, or whose weights must stay exact, sets False: a clear error)
    can_quantize: ClassVar[bool] = True
    #: the pipeline metadata copied into the model card (README.md)
    CARD_KEYS: ClassVar[tuple[str, ...]] = ("license", "model_name", "metrics", "base_model", "labels", "training",
                                            "evaluation")

    def save(self, folder: str | Path, *, quantize: bool = False) -> Path:
        """Write the model folder atomically: ``config.json`` + ``model.safetensors``
        (:meth:`_save_model`), the task's extra files (:meth:`_save_extra_files`: tokenizer, id
        maps...) and the model card ``README.md`` (:meth:`card_data`). Subclasses override the
        ``_``-methods, not this one. ``hub.load(task, model=folder)`` reads it back.

        Args:
            folder: a new or empty folder, or one holding a model Hub saved and nothing else
                (a crash leaves the old model or the new one; see :mod:`hub._fs`).
            quantize: store large 2-D weights as int8 with one scale per row (about 4x
                smaller; dequantised when loaded); a task that cannot says so
                (:attr:`can_quantize`).

        Returns:
            The folder's absolute path.

        Raises:
            SaveTargetError: ``folder`` holds something Hub did not write.
        """
        from hub._fs import atomic_directory
        from hub.card import render_model_card

        quantize = bool(check_bool("quantize", quantize))
        if quantize and not self.can_quantize:
            raise InvalidInputError(f"{self.task}: save(quantize=True) is not supported: this task's model has "
                                    "no weights to quantize; call save(folder) without quantize.")
        from hub.adapters import adapter_state, save_adapter

        if quantize and adapter_state(self) is not None:
            raise InvalidInputError(f"{self.task}: save(quantize=True) writes a full model, but this pipeline runs an "
                                    "adapter (save writes only the adapter); call merge_adapter() first.")
        with atomic_directory(folder) as tmp:
            if adapter_state(self) is not None:  # only the adapter + a pointer to its base (hub.adapters)
                save_adapter(self, tmp)
            else:
                self._save_model(tmp, quantize=quantize)
                self._save_extra_files(tmp)
            (tmp / "README.md").write_text(render_model_card(self.card_data()), encoding="utf-8")
        return Path(folder).resolve()

    def _save_model(self, folder: Path, *, quantize: bool) -> None:
        """config.json + model.safetensors through :func:`hub.modeling.save_model` (the module
        of :meth:`_module_to_save`, its ``.config``, the architecture name of
        :meth:`_architecture_to_save`, and ``{"task": ..., **self._config_extra()}``)."""
        from hub.modeling import save_model

        module = self._module_to_save()
        save_model(module, self._architecture_to_save(), module.config, folder, quantize=quantize,
                   extra={"task": self.task, **self._config_extra()})

    def _module_to_save(self) -> torch.nn.Module:
        """The module whose weights are saved (default ``self.model``)."""
        return self.model

    def _architecture_to_save(self) -> str:
        """The registered architecture name written to config.json (default ``self.architecture``)."""
        architecture = getattr(self, "architecture", "")
        if not architecture:
            raise NotImplementedError(f"{type(self).__name__} sets no `architecture`; set the attribute or "
                                      "override _architecture_to_save().")
        return architecture

    def _config_extra(self) -> dict[str, Any]:
        """Extra top-level config.json fields of this task (default none)."""
        return {}

    def _save_extra_files(self, folder: Path) -> None:
        """Write the task's files beside the weights (a tokenizer, id maps...); default none."""

    def card_data(self) -> dict[str, Any]:
        """What the model card shows: the task (its Hugging Face ``pipeline_tag`` comes from its
        TaskSpec) and the metadata keys of :attr:`CARD_KEYS`."""
        from hub.adapters import adapter_state
        from hub.adapters import card_data as adapter_card

        extra = adapter_card(self) if adapter_state(self) is not None else {}
        return {**{k: v for k, v in self.metadata.items() if k in self.CARD_KEYS}, **extra, "task": self.task}

    # -- PEFT adapters (hub.adapters): fine_tune(..., adapter=peft.LoraConfig(...)) adds one ----
    #: why this task's fine_tune refuses ``adapter=`` (None: it takes one)
    adapters_refused: ClassVar[str | None] = None

    @property
    def adapters(self) -> list[str]:
        """The names of the pipeline's adapters (empty for a plain model)."""
        from hub.adapters import adapter_state

        state = adapter_state(self)
        return list(state.infos) if state is not None else []

    @property
    def active_adapter(self) -> str | None:
        """The adapter calls run and ``save`` writes (None: a plain model)."""
        from hub.adapters import adapter_state

        state = adapter_state(self)
        return state.active if state is not None else None

    def set_adapter(self, name: str) -> None:
        """Run (and save, and train) adapter ``name`` from now on; a call's ``adapter=`` picks one for
        that call only.

        Raises:
            InvalidInputError: an unknown name (with the close ones), or no adapters at all.
        """
        from hub.adapters import set_adapter

        set_adapter(self, name)

    def load_adapter(self, folder: str | Path, *, name: str | None = None) -> str:
        """Add the adapter saved in ``folder`` to this base model and make it active (see
        :func:`hub.adapters.load_adapter`).

        Args:
            folder: an adapter folder ``save`` wrote.
            name: its name here (default: the saved one).

        Returns:
            The adapter's name.
        """
        from hub.adapters import load_adapter

        return load_adapter(self, folder, name=name)

    def merge_adapter(self) -> None:
        """Fold the active adapter into the base weights (PEFT's ``merge_and_unload``; the other
        adapters are dropped): the pipeline holds a plain model again, which ``save`` writes in full.

        Raises:
            InvalidInputError: the pipeline has no adapter.
        """
        from hub.adapters import merge_adapter

        merge_adapter(self)

    # -- export and other backends (hub.export, hub.ort_backend): the module call inside
    #    ``forward`` becomes a graph; every other step stays the pipeline's -------------
    #: the attribute holding the module ``forward`` calls: what ``export`` traces and what
    #: ``backend="onnxruntime"`` replaces with an ONNX Runtime session
    runner_attribute: ClassVar[str] = "model"

    def export(self, path: str | Path, *, format: str = "onnx", opset: int | None = None,
               atol: float = 1e-4) -> Path:
        """Export the model to an ONNX folder that ``hub.load(task, model=path,
        backend="onnxruntime")`` runs with this pipeline's pre- and postprocessing.

        The export checks itself: ONNX Runtime runs the graph on inputs of other batch sizes
        and lengths than the traced ones and must match the eager model within ``atol``
        (else nothing is written). See :mod:`hub.export` for what the folder holds.

        Args:
            path: a new or empty folder, or one Hub wrote (written atomically).
            format: ``"onnx"``.
            opset: the ONNX opset (default 17).
            atol: the largest absolute difference allowed on the task's outputs (fp32).

        Returns:
            The folder's absolute path.

        Raises:
            NotSupportedError: the task cannot be exported (names those that can).
            hub.export.ExportParityError: the graph does not reproduce the model.
            MissingExtraError: the onnx extra is not installed.
        """
        from hub.export import export_pipeline

        return export_pipeline(self, path, format=format, opset=opset, atol=atol)

    def _export_spec(self) -> Any:
        """What :meth:`export` traces (a :class:`hub.export.ExportSpec`): the module call of
        :meth:`forward` with example inputs and input/output names. A task that cannot be
        exported keeps this default, a :class:`~hub.errors.NotSupportedError`."""
        able = tasks_supporting("_export_spec")
        raise NotSupportedError(f"Task {self.task!r} cannot be exported to ONNX ({type(self).__name__} defines no "
                                f"_export_spec). Tasks that can: {', '.join(able) or 'none installed'}.")

    def _install_runner(self, runner: torch.nn.Module) -> None:
        """Put ``runner`` (an ONNX Runtime stand-in) where :meth:`forward` finds its module."""
        setattr(self, self.runner_attribute, runner)

    # -- the training verbs: one meaning and one return type each on every task; a task that
    #    lacks one raises the same "not supported" error naming the verbs it has ------------
    VERBS: ClassVar[tuple[str, ...]] = ("from_scratch", "fine_tune", "pretrain", "evaluate")

    @classmethod
    def supported_verbs(cls) -> list[str]:
        """The verbs of :attr:`VERBS` this pipeline class implements (overrides)."""
        return [verb for verb in cls.VERBS if _overrides(cls, verb)]

    @classmethod
    def _not_supported(cls, verb: str) -> NotSupportedError:
        """The one error of a verb a task lacks: the task, the verbs it has, the tasks that have it."""
        have = cls.supported_verbs()
        offered = ", ".join(f"{v}()" for v in have) if have else "none of the training verbs"
        what = "cannot be created from scratch" if verb == "from_scratch" else f"does not support {verb}()"
        able = tasks_supporting(verb)
        hint = " Use hub.load(task, model=...) to start from a trained model instead." if verb == "from_scratch" else ""
        return NotSupportedError(
            f"Task {cls.task!r} {what}: its pipeline {cls.__name__} implements {offered} (besides prediction "
            f"and save()). Tasks that support {verb}(): {', '.join(able) or 'none installed'}.{hint}")

    @classmethod
    def from_scratch(cls, config: dict[str, Any] | None = None, *, tokenizer: Any = None,
                     device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                     seed: int | None = None) -> "Pipeline":
        """A pipeline holding a freshly initialised model (what ``hub.create`` calls).

        Args:
            config: the model's sizes (keys are the task's; unknown ones are refused).
            tokenizer: for tasks that read text (others refuse one).
            device: where the model lives; dtype: its floating dtype.
            seed: reproducible initialisation.

        Returns:
            The new pipeline. A task without it raises :class:`~hub.errors.NotSupportedError`.
        """
        raise cls._not_supported("from_scratch")

    def fine_tune(self, train: Any, eval: Any = None, **training_args: Any) -> Any:
        """Train on labelled data; the pipeline keeps the trained (best) weights.

        Args:
            train: the task's training data (files, folders or lists; see the task's docs).
            eval: held-out data for metrics and the best epoch.
            **training_args: the task's own keywords and :class:`hub.train.TrainingArguments`.

        Returns:
            The :class:`hub.train.TrainResult`. A task without it raises
            :class:`~hub.errors.NotSupportedError`.
        """
        raise self._not_supported("fine_tune")

    def pretrain(self, data: Any, eval: Any = None, **training_args: Any) -> Any:
        """Self-supervised (or from-scratch) training.

        Args:
            data: unlabelled training data in the task's format.
            eval: held-out data.
            **training_args: as for :meth:`fine_tune`.

        Returns:
            The :class:`hub.train.TrainResult`.
        """
        raise self._not_supported("pretrain")

    def evaluate(self, data: Any, **options: Any) -> dict[str, float]:
        """The task's metrics on held-out labelled data.

        Args:
            data: labelled data in the format :meth:`fine_tune` takes.
            **options: the task's evaluation options.

        Returns:
            ``{metric name: number}``.
        """
        raise self._not_supported("evaluate")

    # -- call keywords ---------------------------------------------------------------
    @classmethod
    def accepted_call_parameters(cls) -> frozenset[str]:
        """Every keyword a call of this pipeline takes (see :attr:`call_parameters`)."""
        cached = cls.__dict__.get("_accepted_call_parameters")
        if cached is not None:
            return cached
        if cls.call_parameters is not None:
            names = set(cls.call_parameters)
        else:
            names = set()
            for method, positional in ((cls.preprocess, 1), (cls.postprocess, 2)):
                parameters = list(inspect.signature(method).parameters.values())[1 + positional:]
                names.update(p.name for p in parameters
                             if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        accepted = frozenset(names | BASE_CALL_PARAMETERS)
        cls._accepted_call_parameters = accepted  # type: ignore[attr-defined]
        return accepted

    @classmethod
    def _step_keywords(cls, step: str) -> frozenset[str] | None:
        """The keywords ``preprocess`` or ``postprocess`` names (None: it takes ``**params``,
        so it gets every call keyword). Steps receive only their own keywords, as
        transformers' ``_sanitize_parameters`` routes them, so none needs a ``**_`` catch-all."""
        cache = cls.__dict__.get("_step_keyword_cache")
        if cache is None:
            cache = {}
            cls._step_keyword_cache = cache  # type: ignore[attr-defined]
        if step not in cache:
            parameters = inspect.signature(getattr(cls, step)).parameters.values()
            if any(p.kind is p.VAR_KEYWORD for p in parameters):
                cache[step] = None
            else:
                cache[step] = frozenset(p.name for p in parameters
                                        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        return cache[step]

    def _params_for(self, step: str, params: Mapping[str, Any]) -> dict[str, Any]:
        names = self._step_keywords(step)
        return dict(params) if names is None else {k: v for k, v in params.items() if k in names}

    def check_call_parameters(self, params: Mapping[str, Any]) -> None:
        """Refuse unknown call keywords (with the close match), then let the task check the
        values of its own (:meth:`check_parameters`): all before any input is touched. A pipeline
        with adapters also takes ``adapter=`` (one of :attr:`adapters`)."""
        if "adapter" in params and self.adapters:
            if params["adapter"] not in self.adapters:
                self.set_adapter(params["adapter"])  # the unknown-name error, with the close names
            params = {k: v for k, v in params.items() if k != "adapter"}
        check_keywords(self.task, params, self.accepted_call_parameters())
        self.check_parameters(dict(params))

    def check_parameters(self, params: dict[str, Any]) -> None:
        """Check the values of the task's call keywords (types, ranges) before any work;
        subclasses override it. ``params`` holds only the keywords the caller gave."""

    def resolve_batch_size(self, batch_size: Any) -> int:
        """``None`` -> the task's default; otherwise a positive integer (0 is an error, not
        "the default")."""
        if batch_size is None:
            return self.default_batch_size
        return check_int("batch_size", batch_size, minimum=1)  # type: ignore[return-value]

    def progress_bar(self, total: int, progress: bool | None, *, unit: str = "input") -> Any:
        """A tqdm bar over ``total`` steps: always with ``progress=True``, never with
        ``False``; with ``None`` only on a terminal (stderr) and only for work that lasts
        longer than :data:`PROGRESS_DELAY_S` seconds."""
        from tqdm.auto import tqdm

        if progress is False:
            return tqdm(total=total, disable=True)
        if progress is None:
            isatty = getattr(sys.stderr, "isatty", None)
            if total <= 1 or not (isatty and isatty()):
                return tqdm(total=total, disable=True)
            return tqdm(total=total, desc=self.task, unit=unit, delay=PROGRESS_DELAY_S, leave=False)
        return tqdm(total=total, desc=self.task, unit=unit)

    # -- one input, a batch or a stream ----------------------------------------------
    def is_batch(self, inputs: Any) -> bool:
        """Whether ``inputs`` is a batch of inputs (a list of results comes back) rather than
        one input. Default: a ``list`` or ``tuple`` is a batch. A modality whose single input
        is itself a list (a time series, token ids, an item history) overrides this."""
        return isinstance(inputs, (list, tuple))

    def is_stream(self, inputs: Any) -> bool:
        """Whether ``inputs`` is an iterable to stream (a generator, a file, a dataset column):
        any iterable that is not a batch (:meth:`is_batch`), a list, a tuple, a string, bytes, a
        mapping, or an array (NumPy, torch: one input of an audio or image task)."""
        if self.is_batch(inputs) or isinstance(inputs, (list, tuple, str, bytes, bytearray, Mapping)):
            return False
        if hasattr(inputs, "__array__") or hasattr(inputs, "__array_interface__"):
            return False
        return isinstance(inputs, Iterable)

    def iter_results(self, inputs: Iterable[Any], *, batch_size: int | None = None,
                     **params: Any) -> Iterator[Any]:
        """Results of an iterable of inputs, in order, computed ``batch_size`` inputs at a time
        without reading the whole iterable first (a generator). Keywords as :meth:`__call__`."""
        self.check_call_parameters({k: v for k, v in params.items() if k != "progress"})
        size = self.resolve_batch_size(batch_size)
        aligned = {}
        for name in self.per_input_parameters & params.keys():
            value = params.pop(name)
            if value is None:
                continue
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
                raise InvalidInputError(f"For a stream of inputs, {name}= must be an iterable with one value per "
                                        f"input, in the inputs' order (a list or a generator); got "
                                        f"{type(value).__name__}.")
            aligned[name] = iter(value)
        return self._iter_results(iter(inputs), size, params, aligned)

    def _iter_results(self, iterator: Iterator[Any], size: int, params: dict[str, Any],
                      aligned: dict[str, Iterator[Any]] | None = None) -> Iterator[Any]:
        params = {**params, "progress": False}
        aligned = aligned or {}
        offset = 0
        while True:
            chunk = list(itertools.islice(iterator, size))
            per_input = {name: list(itertools.islice(values, len(chunk))) for name, values in aligned.items()}
            for name, values in per_input.items():
                if len(values) < len(chunk):
                    raise InvalidInputError(f"{name}= ran out after {offset + len(values)} values but the inputs "
                                            f"go on; give one {name} value per input.")
                if not chunk and next(aligned[name], _END) is not _END:
                    raise InvalidInputError(f"{name}= has more values than the {offset} inputs; give one "
                                            f"{name} value per input.")
            if not chunk:
                return
            try:
                yield from self(chunk, batch_size=size, **params, **per_input)
            except (InvalidInputError, InputTypeError) as exc:  # name the index in the whole stream
                raise shift_input_index(exc, offset) from None
            offset += len(chunk)

    def with_defaults(self, batch_size: Any, progress: Any, params: dict[str, Any]
                      ) -> tuple[Any, Any, dict[str, Any]]:
        """A call's ``batch_size``, ``progress`` and task keywords over the defaults given at
        ``hub.load(task, **defaults)`` (:meth:`set_call_defaults`); what the call gives wins."""
        defaults = self.call_defaults
        if not defaults:
            return batch_size, progress, params
        batch_size = defaults.get("batch_size") if batch_size is None else batch_size
        progress = defaults.get("progress") if progress is None else progress
        rest = {k: v for k, v in defaults.items() if k not in BASE_CALL_PARAMETERS}
        return batch_size, progress, {**rest, **params}

    def set_call_defaults(self, defaults: Mapping[str, Any]) -> None:
        """Keep ``defaults`` (e.g. ``top_k=2, batch_size=16``) for every call, checked now
        against the task's keywords (an unknown one: InvalidInputError with the close match)."""
        defaults = dict(defaults)
        rest = {k: v for k, v in defaults.items() if k not in BASE_CALL_PARAMETERS}
        self.check_call_parameters(rest)
        if "batch_size" in defaults:
            self.resolve_batch_size(defaults["batch_size"])
        if "progress" in defaults:
            check_bool("progress", defaults["progress"], none_ok=True)
        self.call_defaults = defaults

    # -- shared machinery ------------------------------------------------------------
    def __call__(self, inputs: Any, *, batch_size: int | None = None, progress: bool | None = None,
                 **params: Any) -> Any:
        """Run the task on one input, a list, or a stream.

        Args:
            inputs: one input; a list (:meth:`is_batch` decides what is a batch); or an
                iterable such as a generator or a file, read batch by batch.
            batch_size: inputs (or pieces of inputs) per forward pass (default: the task's);
                a positive integer.
            progress: a progress bar (``True``/``False``; default: on a terminal, for long work).
            **params: the task's keywords (:meth:`accepted_call_parameters`); an unknown one is
                an :class:`~hub.errors.InvalidInputError` naming the closest. Defaults given at
                ``hub.load`` apply to keywords the call leaves out.

        Returns:
            One result (a :class:`hub.results.Result` or :class:`~hub.results.ResultList`) for
            one input; a list of results in the same order for a list (``[]`` -> ``[]``); a
            generator of results, in order, for an iterable (:meth:`iter_results`).
        """
        batch_size, progress, params = self.with_defaults(batch_size, progress, params)
        if self.is_stream(inputs):
            return self.iter_results(inputs, batch_size=batch_size, **params)
        self.check_call_parameters(params)
        adapter = params.pop("adapter", None)
        if adapter is not None and adapter != self.active_adapter:  # this call only (hub.adapters)
            from hub.adapters import using_adapter

            with using_adapter(self, adapter):
                return self(inputs, batch_size=batch_size, progress=progress, **params)
        batch_size = self.resolve_batch_size(batch_size)
        progress = check_bool("progress", progress, none_ok=True)
        single = not self.is_batch(inputs)
        items = [inputs] if single else list(inputs)
        if not items:
            return []  # as transformers' pipeline does
        results = self._predict(items, batch_size=batch_size, progress=progress, params=params)
        return results[0] if single else results

    def _predict(self, items: list[Any], *, batch_size: int, progress: bool | None,
                 params: dict[str, Any]) -> list[Any]:
        """One result per input of ``items`` (a non-empty list), in order; what :meth:`__call__`
        runs after its shared work (call defaults, streams, keyword checks, ``adapter=``, the
        batch size, one input vs a list). The default: preprocess -> length-sorted batches ->
        forward -> postprocess. A task whose model is not one forward pass per batch (token by
        token generation) overrides this, not ``__call__``."""
        features = self.preprocess(items, **self._params_for("preprocess", params))
        order = sorted(range(len(features)), key=lambda i: features[i]["length"])
        outputs: list[Any] = [None] * len(features)
        unit = "piece" if len(features) != len(items) else "input"
        with self.progress_bar(len(features), progress, unit=unit) as bar:
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                batch = {k: v.to(self.device, non_blocking=True)
                         for k, v in self.collate([features[i] for i in chunk]).items()}
                with torch.inference_mode(), self.autocast():
                    for index, output in zip(chunk, self.unbatch(self.forward(batch))):
                        outputs[index] = output
                bar.update(len(chunk))
        groups: list[list[int]] = [[] for _ in items]
        for index, feature in enumerate(features):
            groups[feature.get("input_index", index)].append(index)
        post_params = self._params_for("postprocess", params)
        return [self.postprocess([outputs[i] for i in group], [features[i] for i in group], **post_params)
                for group in groups]

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16/fp16 autocast when the pipeline was loaded with such a dtype on CUDA."""
        if self.device.type == "cuda" and self.dtype in (torch.bfloat16, torch.float16):
            return torch.autocast("cuda", dtype=self.dtype)
        return contextlib.nullcontext()

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool = False,
                    commit_message: str = "Upload model with Hub") -> str:
        """Save to a temporary folder (safetensors + config + model card) and upload it."""
        import tempfile

        from hub.hf import push_folder

        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save(Path(tmp) / "model")
            return push_folder(folder, repo_id, token=token, private=private,
                               commit_message=commit_message)

    def __repr__(self) -> str:
        name = self.metadata.get("model_name") or self.metadata.get("source", "?")
        return f"{type(self).__name__}(task={self.task!r}, model={name!r}, device={str(self.device)!r})"


def default_device(device: torch.device | str | None) -> torch.device:
    """``device``, or CUDA when available else the CPU (what ``from_scratch`` runs on by default)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def tasks_supporting(verb: str) -> list[str]:
    """The registered tasks whose pipeline implements ``verb`` (for error messages)."""
    from hub.registry import get_registry
    from hub.specs import load_object

    able = []
    for name, entry in sorted(get_registry().tasks.items()):
        try:
            if entry.spec is not None and _overrides(load_object(entry.spec.pipeline), verb):
                able.append(name)
        except Exception:  # a broken plugin must not hide the error being reported
            continue
    return able


def _overrides(cls: type, name: str) -> bool:
    """Whether ``cls`` (or a base between it and Pipeline) defines ``name`` itself."""
    for klass in cls.__mro__:
        if klass is Pipeline:
            return False
        if name in klass.__dict__:
            return True
    return False


def shift_input_index(exc: ErrorT, offset: int) -> ErrorT:
    """The same error with "input N" counted from ``offset`` (a chunk's index -> the index in
    the whole list or stream)."""
    import re

    if not offset:
        return exc
    message = re.sub(r"\binput (\d+)\b", lambda m: f"input {int(m.group(1)) + offset}", str(exc), count=1)
    return type(exc)(message)


def check_batch_of(items: Sequence[Any], expected: type | tuple[type, ...], what: str, task: str) -> None:
    """Raise InputTypeError naming the first item of the wrong type and its index."""
    from hub.errors import InputTypeError

    for index, item in enumerate(items):
        if not isinstance(item, expected):
            raise InputTypeError(f"{task}: input {index} is a {type(item).__name__} "
                                 f"({item!r:.60}); expected {what}.")
