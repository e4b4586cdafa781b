"""What every text pipeline shares: input checks, tokenisation with long-input handling
(sliding windows, truncation or an error), padding into batches, and the tokenizer files
of a save (the rest of a save is :meth:`hub.pipeline.Pipeline.save`).

Long inputs: with ``long_inputs="window"`` a text longer than the model's maximum is cut
into overlapping windows (``stride`` tokens shared between neighbours, each window with
its own special tokens, as transformers' tokenizers make them), every window goes through
the model, and the task aggregates the windows' outputs; ``"truncate"`` keeps the head of
the text, ``"error"`` refuses. Each result says what happened in ``result.metadata``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import torch

from hub.data.padding import pad_sequences
from hub.errors import InvalidInputError
from hub.modeling import LoadedModel
from hub.pipeline import Pipeline, check_batch_of
from hub.validate import check_choice, check_int, resolve_limit
from hub_text.tokenizer import load_tokenizer, model_max_tokens

logger = logging.getLogger(__name__)
LONG_INPUT_MODES = ("window", "truncate", "error")
#: at most this many windows per input unless ``max_windows=`` or ``HUB_MAX_WINDOWS`` says otherwise
DEFAULT_MAX_WINDOWS = 256
MAX_WINDOWS_ENV = "HUB_MAX_WINDOWS"
#: an input cut into more windows than this is worth a warning (once per pipeline)
MANY_WINDOWS = 32


def count_windows(content: int, room: int, overlap: int) -> int:
    """How many windows of ``room`` tokens, neighbours sharing ``overlap``, cover ``content``
    tokens (the count transformers' overflowing tokenization gives)."""
    if content <= room:
        return 1
    step = room - overlap
    return 1 + -(-(content - room) // step)


def check_window_count(task: str, index: int, windows: int, max_windows: int, tokens: int, limit: int) -> None:
    """Refuse an input that would take more than ``max_windows`` passes of the model."""
    if windows > max_windows:
        raise InvalidInputError(
            f"{task}: input {index} has {tokens:,} tokens and would be cut into {windows:,} windows of "
            f"{limit} tokens, more than max_windows={max_windows}; pass max_windows={windows} (or set "
            f"{MAX_WINDOWS_ENV}={windows}) to read it all, long_inputs='truncate' to keep only its head, or "
            "split the text.")


class TextModelLoading:
    """How a text task reads a model folder (mixed into :class:`TextPipeline` and the
    generation pipeline, in front of :class:`hub.pipeline.Pipeline`, whose ``from_folder``
    calls these): a model of the task's :attr:`model_types` is used as it is; with
    :attr:`head_for_encoder`, a bare encoder gets a freshly initialised head of that class
    (to fine-tune); anything else is refused with the task's :attr:`model_needs`. The
    tokenizer is the folder's extra file."""

    task: ClassVar[str]
    architecture: ClassVar[str]
    model_types: ClassVar[type | tuple[type, ...] | None]
    #: a head class (``from_encoder(encoder, labels)``) that turns a bare encoder into this task's model
    head_for_encoder: ClassVar[type | None] = None
    #: the labels of such a new head when the catalogue names none
    default_labels: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _model_from_loaded(cls, loaded: LoadedModel, metadata: dict[str, Any]) -> torch.nn.Module:
        from hub_text.models.bert import BertEncoder

        metadata["architecture"] = cls.architecture
        if cls.head_for_encoder is not None and type(loaded.module) is BertEncoder:
            labels = metadata.get("labels") or list(cls.default_labels)
            logger.warning("%s holds an encoder without a %s head; a new head for labels %s is initialised "
                           "at random: fine-tune before use.", loaded.folder, cls.task, labels)
            model = cls.head_for_encoder.from_encoder(loaded.module, labels)
            metadata["head_initialized"] = False
        else:
            model = super()._model_from_loaded(loaded, metadata)  # type: ignore[misc]
        if "labels" in getattr(model, "config", {}):
            metadata["labels"] = list(model.config["labels"])
        return model

    @classmethod
    def _load_extra_files(cls, folder: Path, model: torch.nn.Module, metadata: dict[str, Any]) -> dict[str, Any]:
        return {"tokenizer": load_tokenizer(folder)}


class TextPipeline(TextModelLoading, Pipeline):
    """Base of the text pipelines; ``self.model`` has a ``BertEncoder`` at ``.encoder``."""

    __abstract__ = True
    architecture: ClassVar[str] = ""
    default_long_inputs: ClassVar[str] = "window"

    def __init__(self, model: torch.nn.Module, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.tokenizer = tokenizer
        self.model.to(self.device)
        self._warned_many_windows = False

    @property
    def max_tokens(self) -> int:
        return model_max_tokens(self.tokenizer, self.model.encoder.max_positions)

    def check_parameters(self, params: dict[str, Any]) -> None:
        """The long-input keywords every text task shares (before any tokenisation)."""
        if params.get("long_inputs") is not None:
            check_choice("long_inputs", params["long_inputs"], LONG_INPUT_MODES)
        check_int("stride", params.get("stride"), minimum=0, none_ok=True)
        resolve_limit("max_windows", params.get("max_windows"), MAX_WINDOWS_ENV, DEFAULT_MAX_WINDOWS)

    def warn_many_windows(self, index: int, windows: int, limit: int) -> None:
        """Say once per pipeline that a long input costs many passes of the model."""
        if windows > MANY_WINDOWS and not self._warned_many_windows:
            self._warned_many_windows = True
            logger.warning("%s: input %d is cut into %d windows of %d tokens; each runs through the model "
                           "(long_inputs='truncate' keeps only the head; max_windows= caps the count). This "
                           "warning is shown once.", self.task, index, windows, limit)

    def check_texts(self, inputs: list[Any]) -> None:
        check_batch_of(inputs, str, "a string", self.task)
        for index, text in enumerate(inputs):
            if not text.strip():
                raise InvalidInputError(f"{self.task}: input {index} is an empty string; pass some text.")

    def encode(self, texts: list[str], *, long_inputs: str | None = None, stride: int | None = None,
               max_tokens: int | None = None, warn: bool = True,
               max_windows: int | None = None) -> list[dict[str, Any]]:
        """Token ids per text, or per window of a long text (features carry ``input_index``).

        ``stride``: tokens shared by neighbouring windows (default a quarter of the window,
        at most 128); ``max_windows``: the most windows one text may take (default
        :data:`DEFAULT_MAX_WINDOWS`, or ``HUB_MAX_WINDOWS``), checked before the windows
        are made, because every window is a pass of the model.
        """
        mode = long_inputs or self.default_long_inputs
        if mode not in LONG_INPUT_MODES:
            raise InvalidInputError(f"long_inputs must be one of {LONG_INPUT_MODES}, got {mode!r}.")
        limit = max_tokens or self.max_tokens
        cap = resolve_limit("max_windows", max_windows, MAX_WINDOWS_ENV, DEFAULT_MAX_WINDOWS)
        specials = self.tokenizer.num_special_tokens_to_add(pair=False)
        room = limit - specials
        overlap = min(128, limit // 4) if stride is None else stride
        if stride is not None:  # the tokenizer overflows (negative) or panics (>= room) otherwise
            check_int("stride", stride, minimum=0, maximum=room - 1)
        ids = self.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        self.check_token_ids(ids)
        long = [i for i, seq in enumerate(ids) if len(seq) > limit]
        if long and mode == "error":
            raise InvalidInputError(f"{self.task}: input {long[0]} has {len(ids[long[0]])} tokens, more than "
                                    f"the model's {limit}; pass long_inputs='window' or 'truncate'.")
        pieces: dict[int, list[list[int]]] = {}
        if long:
            chosen = [texts[i] for i in long]
            if mode == "truncate":
                cut = self.tokenizer(chosen, truncation=True, max_length=limit, verbose=False)["input_ids"]
                pieces = {i: [seq] for i, seq in zip(long, cut)}
            else:
                counts = {i: count_windows(len(ids[i]) - specials, room, overlap) for i in long}
                for i in long:
                    check_window_count(self.task, i, counts[i], cap, len(ids[i]), limit)
                most = max(long, key=counts.__getitem__)
                self.warn_many_windows(most, counts[most], limit)
                enc = self.tokenizer(chosen, truncation=True, max_length=limit, stride=overlap,
                                     return_overflowing_tokens=True, verbose=False)
                for seq, sample in zip(enc["input_ids"], enc["overflow_to_sample_mapping"]):
                    pieces.setdefault(long[sample], []).append(seq)
            (logger.warning if warn else logger.debug)(
                "%d of %d texts exceed %d tokens: %s (see result.metadata).", len(long), len(texts), limit,
                "truncated" if mode == "truncate" else "split into overlapping windows")
        features = []
        for index, seq in enumerate(ids):
            parts = pieces.get(index, [seq])
            meta = {"num_tokens": len(seq), "truncated": mode == "truncate" and index in pieces,
                    "windows": len(parts)}
            for part in parts:
                features.append({"input_ids": part, "length": len(part), "input_index": index, "meta": meta})
        return features

    def check_token_ids(self, ids: list[list[int]]) -> None:
        """Refuse token ids the model's embeddings have no row for (a tokenizer that does not
        belong to the model), before torch's bare ``IndexError`` from the embedding lookup.

        Args:
            ids: the tokenizer's ids, one list per text.

        Raises:
            InvalidInputError: naming the input, the id, the sizes and the fix.
        """
        rows = int(getattr(self.model.encoder, "config", {}).get("vocab_size") or 0)
        if rows <= 0:
            return
        for index, seq in enumerate(ids):
            if seq and max(seq) >= rows:
                token = self.tokenizer.convert_ids_to_tokens(max(seq))
                raise InvalidInputError(
                    f"{self.task}: input {index} gives token id {max(seq)} ({token!r}), but the model's embeddings "
                    f"have {rows} rows: the tokenizer ({len(self.tokenizer)} tokens) does not belong to this model. "
                    "Save the tokenizer the model was trained with beside its weights (or resize the model's "
                    "embeddings to the tokenizer and fine-tune).")

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids, mask = pad_sequences([f["input_ids"] for f in features], value=self.tokenizer.pad_token_id or 0)
        batch = {"input_ids": ids, "attention_mask": mask}
        if "label" in features[0]:
            labels = [f["label"] for f in features]
            if isinstance(labels[0], list):  # per-token labels, padded with -100
                batch["labels"] = pad_sequences(labels, value=-100, length=ids.shape[1])[0]
            else:
                batch["labels"] = torch.tensor(labels, dtype=torch.long)
        return batch

    def _save_extra_files(self, folder: Path) -> None:
        """The tokenizer's files beside the weights (``Pipeline.save`` writes the rest)."""
        self.tokenizer.save_pretrained(str(folder))

    def _text_export_spec(self, module: torch.nn.Module, output: str, axes: dict[int, str], description: str,
                          *, key: str | None = "logits", returns: str = "dict") -> Any:
        """The export of ``module(input_ids, attention_mask)`` (its ``key`` output, or the
        tensor it returns), as this task's :meth:`forward` calls it (see :mod:`hub.export`)."""
        from hub.export import ExportSpec, ModuleCall, token_examples

        sequence = {0: "batch", 1: "sequence"}
        config = getattr(module, "config", {})
        return ExportSpec(
            module=ModuleCall(module, key), inputs=("input_ids", "attention_mask"), outputs=(output,),
            dynamic_axes={"input_ids": sequence, "attention_mask": sequence, output: axes},
            examples=token_examples(int(self.model.encoder.config["vocab_size"]), self.max_tokens),
            description=description, returns=returns,
            preprocessing={"tokenizer": "the tokenizer files in this folder (transformers' AutoTokenizer reads them)",
                           "max_tokens": self.max_tokens, "pad_token_id": self.tokenizer.pad_token_id or 0,
                           "long_inputs": f"{self.default_long_inputs} (Hub's default for this task)",
                           **({"labels": list(config["labels"])} if "labels" in config else {})})
