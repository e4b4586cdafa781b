"""``text2text-generate``, and what ``summarize`` and ``translate`` share: text in, text out
through an encoder-decoder (``seq2seq-lm``: BART, mBART, Marian, T5).

``pipe(text, max_new_tokens=..., min_new_tokens=0, num_beams=1, length_penalty=1.0,
no_repeat_ngram_size=0, early_stopping=False, num_return_sequences=1, do_sample=False,
temperature=1.0, top_k=0, top_p=1.0, seed=None)`` returns ``{"generated_text": ...}``
(``summary_text`` / ``translation_text`` for the other two tasks, as transformers named
them). Keywords left out take the checkpoint's generation defaults (its
``generation_config.json``; for T5, the task's ``task_specific_params`` entry), as
transformers' ``generate`` does; outputs equal ``model.generate`` + ``tokenizer.decode`` on
the same weights (greedy, beam search, and sampling / beam sampling under the same torch
seed: ``seed=s`` draws as ``torch.manual_seed(s)`` before ``generate`` does; without
``seed`` the draws come from torch's global RNG). With ``num_return_sequences=n > 1`` (beam
search: the n best beams; sampling: n samples) each input gives a list of n results, best
beam first (one input: that list; a list of inputs: a list of such lists). Beam search's
results carry transformers' ``sequences_scores`` in ``result.metadata["score"]``. With a
``seed``, a call repeats exactly; the rows of a list are drawn in length-sorted batches, so
a list's samples are not those of each text alone. A list is generated in length-sorted batches
(right padding: each batch pads only to its own longest source). Sources longer than the
model takes are truncated (``result.metadata["truncated"]``), as transformers' pipelines
truncated them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import torch

from hub.data.padding import pad_sequences
from hub.errors import ConfigError, InvalidInputError
from hub.pipeline import Pipeline
from hub.results import Result, ResultList
from hub.validate import check_number
from hub_text.models.seq2seq import Seq2SeqLM, check_seq2seq_config
from hub_text.models.seq2seq_generation import (
    GENERATION_PARAMETERS,
    Seq2SeqGenerationConfig,
    generate_seq2seq,
    generation_config,
)
from hub_text.pipelines.base import TextModelLoading

logger = logging.getLogger(__name__)

#: a training row's fields by default: the source text and the target text
SOURCE_FIELD = "text"


class Seq2SeqPipeline(TextModelLoading, Pipeline):
    """The base of the encoder-decoder tasks: one input text -> one generated text."""

    __abstract__ = True
    architecture = "seq2seq-lm"
    model_types = Seq2SeqLM
    model_needs = ("an encoder-decoder language model (e.g. transformers' BartForConditionalGeneration, "
                   "T5ForConditionalGeneration or MarianMTModel)")
    default_batch_size = 8
    call_parameters = frozenset(GENERATION_PARAMETERS)
    #: the result's key (transformers' name for the task's output)
    result_key: ClassVar[str] = "generated_text"
    #: the task_specific_params entry of a T5 checkpoint this task reads (its prefix and defaults)
    task_params_key: ClassVar[str | None] = None
    #: fine_tune's default target field
    target_field: ClassVar[str] = "target"

    def __init__(self, model: Seq2SeqLM, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.tokenizer = tokenizer
        self.model.to(self.device)
        eos = model.config.get("eos_token_id")
        self.eos_token_id = eos if eos is not None else tokenizer.eos_token_id
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else model.config.get("pad_token_id")
        self.pad_token_id = pad if pad is not None else 0

    # -- what a call means ---------------------------------------------------------------
    def task_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The checkpoint's ``task_specific_params`` entry for this call (T5: prefix, beams...)."""
        key = self.task_params_key
        table = self.model.config.get("task_specific_params") or {}
        entry = table.get(key) if key else None
        return dict(entry) if isinstance(entry, dict) else {}

    def prefix(self, params: dict[str, Any]) -> str:
        """Text put before every input (T5's ``"summarize: "``), from the task's entry."""
        value = self.task_params(params).get("prefix")
        return value if isinstance(value, str) else ""

    def _generation(self, params: dict[str, Any]) -> Seq2SeqGenerationConfig:
        """Call keywords over the task's entry over the checkpoint's generation defaults."""
        given = {k: v for k, v in params.items() if k in GENERATION_PARAMETERS}
        entry = self.task_params(params)
        task_defaults = {k: entry[k] for k in ("num_beams", "length_penalty", "no_repeat_ngram_size",
                                                "early_stopping", "do_sample", "temperature", "top_k", "top_p")
                         if k in entry}
        if "max_length" in entry:
            task_defaults["max_new_tokens"] = max(int(entry["max_length"]) - 1, 1)
        if "min_length" in entry:
            task_defaults["min_new_tokens"] = max(int(entry["min_length"]) - 1, 0)
        config = generation_config(self.model, {**task_defaults, **given})
        config.forced_bos_token_id = self._forced_bos(params, config.forced_bos_token_id)
        return config

    def _forced_bos(self, params: dict[str, Any], default: int | None) -> int | None:
        return default

    def check_parameters(self, params: dict[str, Any]) -> None:
        self._generation(params)  # every value checked (types, ranges) before any input is read

    # -- one call ---------------------------------------------------------------------
    def _check(self, texts: list[Any]) -> None:
        from hub.pipeline import check_batch_of

        check_batch_of(texts, str, "a string", self.task)
        for index, text in enumerate(texts):
            if not text.strip():
                raise InvalidInputError(f"{self.task}: input {index} is an empty string; pass some text.")

    @property
    def max_source_tokens(self) -> int:
        from hub_text.tokenizer import model_max_tokens

        return model_max_tokens(self.tokenizer, int(self.model.config.get("max_positions", 512)))

    def source_tokenizer(self, params: dict[str, Any]) -> Any:
        """The tokenizer that encodes this call's sources (translate: one set to ``src_lang``)."""
        return self.tokenizer

    def _encode(self, texts: list[str], prefix: str, tokenizer: Any = None
                ) -> tuple[list[list[int]], list[dict[str, Any]]]:
        tokenizer = tokenizer if tokenizer is not None else self.tokenizer
        rows = tokenizer([prefix + t for t in texts], add_special_tokens=True, truncation=False,
                         verbose=False)["input_ids"]
        limit = self.max_source_tokens
        out, meta = [], []
        for index, row in enumerate(rows):
            if not row:
                raise InvalidInputError(f"{self.task}: input {index} encodes to no tokens.")
            truncated = len(row) > limit
            if truncated:  # keep the head and the closing special token, as truncation=True does
                row = row[:limit - 1] + row[-1:] if row[-1] in self.tokenizer.all_special_ids else row[:limit]
                logger.warning("%s: input %d has more tokens than the model's %d; it is truncated (see "
                               "result.metadata).", self.task, index, limit)
            out.append(row)
            meta.append({"num_tokens": len(row), "truncated": truncated})
        return out, meta

    def _predict(self, texts: list[Any], *, batch_size: int, progress: bool | None,
                 params: dict[str, Any]) -> list[Any]:
        """Texts of similar length encoded and decoded together (greedy or beam search); see the
        module docstring for the keywords. The base's ``__call__`` did the shared work (defaults,
        streams, keyword checks, ``adapter=``, one text vs a list)."""
        self._check(texts)
        config = self._generation(params)
        rows, meta = self._encode(texts, self.prefix(params), self.source_tokenizer(params))
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        results: list[Any] = [None] * len(rows)
        n = config.num_return_sequences
        generator = None  # one per call: a seeded call repeats, batches continue one stream
        if config.do_sample and config.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(config.seed)
        with self.progress_bar(len(rows), progress, unit="text") as bar:
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                ids, mask = pad_sequences([rows[i] for i in chunk], value=self.pad_token_id)
                with self.autocast():
                    generated, scores = generate_seq2seq(
                        self.model, ids.to(self.device), mask.to(self.device), config, eos_token_id=self.eos_token_id,
                        pad_token_id=self.pad_token_id, generator=generator, return_scores=True)
                for position, index in enumerate(chunk):
                    outputs = [self._result(tokens, score, meta[index])
                               for tokens, score in zip(generated[position * n:(position + 1) * n],
                                                        scores[position * n:(position + 1) * n])]
                    results[index] = outputs[0] if n == 1 else ResultList(outputs, metadata=meta[index])
                bar.update(len(chunk))
        return results

    def _result(self, tokens: list[int], score: float | None, meta: dict[str, Any]) -> Result:
        """One generated sequence as the task's result (its metadata: the source's, the new
        token count and, for beam search, the sequence's score)."""
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        extra = {"score": score} if score is not None else {}
        return Result({self.result_key: text}, metadata={**meta, "new_tokens": len(tokens), **extra})

    # -- making and training ---------------------------------------------------------------
    @classmethod
    def from_scratch(cls, config: dict[str, Any] | None = None, *, tokenizer: Any = None,
                     device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                     seed: int | None = None) -> Seq2SeqPipeline:
        """A randomly initialised encoder-decoder (mBART's layout: pre-norm, learned positions,
        embedding LayerNorm, tied head) for :meth:`fine_tune`.

        ``config``: backbone keys (``hidden_size``, ``num_layers``, ``num_heads``,
        ``intermediate_size``, ``dropout``, ...) for both stacks at the top level, or per stack
        under ``"encoder"`` / ``"decoder"``; plus ``max_positions`` (512). Defaults make a tiny
        model (2 + 2 layers, hidden 256, 4 heads). The vocabulary and the special tokens come
        from ``tokenizer`` (an object or a folder).
        """
        from hub.modeling import build_module
        from hub.pipeline import default_device
        from hub_text.pretrain.build import resolve_tokenizer

        tokenizer = resolve_tokenizer(tokenizer, cls.task)
        model_config = seq2seq_config(config, tokenizer)
        check_seq2seq_config(model_config)  # a bad size is one ConfigError before anything is built
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            model = build_module(cls.architecture, model_config)
        device = default_device(device)
        model.to(device=device, dtype=dtype).eval()
        metadata = {"task": cls.task, "architecture": cls.architecture, "source": "scratch"}
        return cls(model, tokenizer, device=device, dtype=dtype, metadata=metadata)

    def fine_tune(self, train: Any, eval: Any = None, *, source_field: str = SOURCE_FIELD,
                  target_field: str | None = None, max_source_tokens: int | None = None,
                  max_target_tokens: int = 128, label_smoothing: float = 0.0, **training_args: Any) -> Any:
        """Teacher-forced training on (source, target) pairs with the common Trainer.

        Args:
            train: a jsonl/json/csv/tsv file or a list of dicts (``source_field`` and
                ``target_field``) or ``(source, target)`` tuples.
            eval: held-out pairs in the same form (``eval_loss`` per epoch; the best is kept).
            source_field: the source text's field (default ``"text"``).
            target_field: the target text's field (default: the task's, ``"summary"``,
                ``"translation"`` or ``"target"``).
            max_source_tokens: sources are truncated to this (default: the model's maximum).
            max_target_tokens: targets are truncated to this (default 128).
            label_smoothing: the cross-entropy's label smoothing (0 to 0.99).
            **training_args: :class:`hub.train.TrainingArguments`.

        Returns:
            The :class:`~hub.train.TrainResult`; the pipeline keeps the best weights.
        """
        from hub.data import read_records
        from hub.train import Trainer, TrainingArguments

        label_smoothing = check_number("label_smoothing", label_smoothing, minimum=0.0, maximum=0.99)
        args = TrainingArguments.from_kwargs(**training_args)
        target_field = target_field or self.target_field
        fields = {"fields": (source_field, target_field), "text_fields": (source_field, target_field)}
        train_rows = read_records(train, **fields)
        eval_rows = read_records(eval, **fields) if eval is not None else None
        limit = max_source_tokens or self.max_source_tokens
        prefix = self.prefix({})

        def featurise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            sources = self.tokenizer([prefix + str(r[source_field]) for r in rows], truncation=True,
                                     max_length=limit)["input_ids"]
            targets = self.tokenizer(text_target=[str(r[target_field]) for r in rows], truncation=True,
                                     max_length=max_target_tokens)["input_ids"]
            out = []
            for source, target in zip(sources, targets):
                if self.eos_token_id is not None and (not target or target[-1] != self.eos_token_id):
                    target = [*target[:max_target_tokens - 1], self.eos_token_id]  # the model learns to stop
                out.append({"input_ids": source, "labels": target})
            return out

        def collate(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
            ids, mask = pad_sequences([f["input_ids"] for f in features], value=self.pad_token_id)
            labels, _ = pad_sequences([f["labels"] for f in features], value=-100)
            return {"input_ids": ids, "attention_mask": mask, "labels": labels}

        trainer = Trainer(_Smoothed(self.model, label_smoothing), args, train_data=featurise(train_rows),
                          collate=collate,
                          eval_data=featurise(eval_rows) if eval_rows else None,
                          save_best=lambda model, path: self.save(path))
        result = trainer.train()
        self.model.to(self.device).eval()
        return result

    @classmethod
    def conformance_example(cls) -> dict[str, Any]:
        """A tiny example for :func:`hub.testing.check_task`: a 1 + 1 layer model on a BPE
        tokenizer trained on a few sentences, and four copy pairs to train on."""
        from hub_text.pretrain import train_tokenizer

        texts = [f"the {a} sees the {b}." for a in ("cat", "dog", "fox", "bird") for b in ("tree", "road", "sun")]
        tiny = {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 32, "max_positions": 64,
                "dropout": 0.0, "attention_dropout": 0.0}
        return {"config": tiny, "tokenizer": train_tokenizer(texts, "bpe", vocab_size=300),
                "inputs": ["the cat sees the tree.", "a fox.", "the bird sees the sun and the road today."],
                "train": [(t, t) for t in texts[:4]], "train_args": {"max_steps": 2}}

    def _save_extra_files(self, folder: Path) -> None:
        """The tokenizer's files beside the weights (``Pipeline.save`` writes the rest)."""
        self.tokenizer.save_pretrained(str(folder))


class _Smoothed(torch.nn.Module):
    """The model as the Trainer calls it (``model(**batch)``), with the run's label smoothing
    (a setting of the loss, not a tensor of the batch)."""

    def __init__(self, model: Seq2SeqLM, label_smoothing: float) -> None:
        super().__init__()
        self.model, self.label_smoothing = model, label_smoothing

    def forward(self, **batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(**batch, label_smoothing=self.label_smoothing)


class Text2TextGenerationPipeline(Seq2SeqPipeline):
    task = "text2text-generate"


def seq2seq_config(config: dict[str, Any] | None, tokenizer: Any) -> dict[str, Any]:
    """A ``seq2seq-lm`` config for a fresh model: tiny sizes by default, vocabulary and special
    tokens from the tokenizer (see :meth:`Seq2SeqPipeline.from_scratch`)."""
    from collections.abc import Mapping

    from hub_text.pretrain.build import _BACKBONE_KEYS, _set_vocab

    if config is not None and not isinstance(config, Mapping):
        raise ConfigError(f"config must be a dict, got {type(config).__name__}.")
    config = dict(config or {})
    shared = {"hidden_size": 256, "num_layers": 2, "num_heads": 4, "activation": "gelu", "norm_eps": 1e-5,
              "norm_position": "pre", "dropout": 0.1, "attention_dropout": 0.0}
    sides: dict[str, dict[str, Any]] = {"encoder": {}, "decoder": {}}
    model = {"vocab_size": None, "max_positions": 512}
    for key, value in config.items():
        if key in sides:
            if not isinstance(value, Mapping):
                raise ConfigError(f"config[{key!r}] must be a dict of backbone keys, got {type(value).__name__}.")
            unknown = set(value) - set(_BACKBONE_KEYS)
            if unknown:
                raise ConfigError(f"Unknown {key} config key(s) {sorted(unknown)}; known: {', '.join(_BACKBONE_KEYS)}.")
            sides[key].update(value)
        elif key in _BACKBONE_KEYS:
            shared[key] = value
        elif key in model:
            model[key] = value
        else:
            raise ConfigError(f"Unknown seq2seq config key {key!r}; known: encoder, decoder, max_positions, "
                              f"vocab_size, {', '.join(k for k in _BACKBONE_KEYS if k != 'causal')}.")
    out = {**model, "position": "learned", "position_offset": 0, "embed_scale": 1.0, "embedding_norm": True,
           "logits_bias": False, "tie_word_embeddings": True, "output_scale": 1.0, "generation": {},
           "task_specific_params": {}}
    for side, extra in sides.items():
        out[side] = {**shared, **extra}
        out[side].setdefault("intermediate_size", 4 * out[side]["hidden_size"])
    _set_vocab(out, tokenizer)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    if eos is None:
        raise ConfigError("An encoder-decoder needs a tokenizer with an end-of-sequence token (e.g. </s>); train "
                          "one with train_tokenizer(texts, kind='bpe').")
    bos = tokenizer.bos_token_id
    out.update(pad_token_id=pad, eos_token_id=eos, bos_token_id=bos,
               decoder_start_token_id=bos if bos is not None else pad)
    return out
