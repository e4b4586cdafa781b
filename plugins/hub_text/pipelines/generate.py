"""``text-generate``: continue prompts with a causal LM, like transformers' pipeline.

``pipe(prompt, max_new_tokens=50, do_sample=False, temperature=1.0, top_k=0, top_p=1.0,
repetition_penalty=1.0, stop=None, seed=None, return_full_text=True,
num_return_sequences=1)`` returns ``{"generated_text": ...}``; a list of prompts is generated in
length-sorted batches with left padding. With ``do_sample=True`` and ``num_return_sequences=n >
1`` each prompt gets a :class:`~hub.results.ResultList` of n samples (the shape the seq2seq tasks
give), drawn as transformers' ``generate`` draws them: the prompt repeated n times in the batch,
one ``torch.multinomial`` per step, so under the same seed a single prompt's n samples are
``generate(do_sample=True, num_return_sequences=n)``'s token for token.
``pipe.stream(prompt, ...)`` yields the new text piece by piece.
Generation stops at the end-of-sequence token, at ``max_new_tokens``, or at the first
of the ``stop`` strings (which is cut from the text).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from hub.data.padding import pad_sequences
from hub.errors import InvalidInputError
from hub.pipeline import Pipeline, check_batch_of
from hub.results import Result, ResultList
from hub.validate import check_bool, check_int, check_keywords
from hub_text.models.generation import GenerationConfig, generate_ids
from hub_text.models.gpt import CausalLM
from hub_text.pipelines.base import TextModelLoading

_GENERATION_KEYS = ("max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "repetition_penalty", "seed")


class TextGenerationPipeline(TextModelLoading, Pipeline):
    task = "text-generate"
    architecture = "causal-lm"
    model_types = CausalLM
    model_needs = "a causal language model (e.g. transformers' GPT2LMHeadModel)"
    default_batch_size = 8
    call_parameters = frozenset({*_GENERATION_KEYS, "stop", "return_full_text", "num_return_sequences"})

    def __init__(self, model: CausalLM, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.tokenizer = tokenizer
        self.model.to(self.device)
        eos = model.config.get("eos_token_id")
        self.eos_token_id = eos if eos is not None else tokenizer.eos_token_id
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else (self.eos_token_id or 0)

    # -- pretraining ----------------------------------------------------------------
    @classmethod
    def from_scratch(cls, config: dict[str, Any] | None = None, *, tokenizer: Any = None,
                     device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                     seed: int | None = None) -> "TextGenerationPipeline":
        """A randomly initialised GPT (``causal-lm``) for :meth:`pretrain`.

        ``config`` holds the sizes: backbone keys (``hidden_size``, ``num_layers``,
        ``num_heads``, ``intermediate_size``, ``dropout``, ...) at the top level or under
        ``"backbone"``, plus ``max_positions`` (512), ``position``, ``tie_word_embeddings``.
        Defaults make a tiny model (4 layers, hidden 256, 4 heads). The vocabulary size and
        end-of-sequence token come from ``tokenizer`` (an object or a folder).
        """
        from hub_text.pretrain import causal_lm_config, new_pipeline

        return new_pipeline(cls, causal_lm_config, config, tokenizer, device=device, dtype=dtype, seed=seed)

    def pretrain(self, data: Any, eval: Any = None, *, block_size: int | None = None, val_fraction: float = 0.05,
                 eval_every: int | None = None, **training_args: Any) -> Any:
        """Causal-LM pretraining (next-token prediction) on plain text with the common Trainer.

        ``data``: a .txt/.jsonl/.json file, a folder of them, or a list of strings (see
        :mod:`hub_text.pretrain`; ``text_field=`` and ``documents="line"`` adjust reading).
        Documents are tokenised, joined with the end-of-sequence token and packed into
        ``block_size`` blocks (default: the model's positions, at most 512). A
        ``val_fraction`` of the documents is held out (seeded) unless ``eval=`` is given;
        evaluation reports ``eval_loss`` (per token) and ``eval_perplexity``, after every
        epoch or every ``eval_every`` optimizer steps. Other keywords are
        :class:`hub.train.TrainingArguments` (pretraining defaults: learning_rate 5e-4,
        cosine schedule, 5 % warm-up, batch 32, eval_batch_size = batch_size; device: the
        pipeline's). The pipeline keeps the weights of the best evaluation. Returns the
        TrainResult.
        """
        from hub_text.pretrain import pretrain_language_model

        return pretrain_language_model(self, data, objective="clm", block_size=block_size,
                                       val_fraction=val_fraction, eval=eval, eval_every=eval_every,
                                       **training_args)

    # -- generation -----------------------------------------------------------------
    def _config(self, params: dict[str, Any]) -> tuple[GenerationConfig, list[str], bool]:
        check_keywords(self.task, params, self.accepted_call_parameters() - {"batch_size", "progress"})
        params.pop("num_return_sequences", None)  # checked by _samples
        given = params.pop("stop", None)
        stop = [given] if isinstance(given, str) else (given or [])
        if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) for s in stop):
            raise InvalidInputError(f"stop must be a string or a list of strings, got {given!r:.60}.")
        full = check_bool("return_full_text", params.pop("return_full_text", True))
        return GenerationConfig(**params), list(stop), full

    def check_parameters(self, params: dict[str, Any]) -> None:
        self._config(dict(params))
        self._samples(params)

    @staticmethod
    def _samples(params: dict[str, Any]) -> int:
        """``num_return_sequences``: how many samples per prompt (more than one needs sampling:
        n greedy decodings of one prompt are one text n times)."""
        n = check_int("num_return_sequences", params.get("num_return_sequences", 1), minimum=1, maximum=256)
        if n > 1 and not params.get("do_sample", False):
            raise InvalidInputError(f"num_return_sequences={n} needs do_sample=True: greedy decoding gives one "
                                    "text per prompt (pass do_sample=True, with seed= to repeat the draws).")
        return n

    def _encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.tokenizer(prompts, add_special_tokens=True)["input_ids"]
        for index, row in enumerate(rows):
            if not row:
                raise InvalidInputError(f"text-generate: input {index} encodes to no tokens.")
        # left padding: every prompt ends at the last column
        ids, mask = pad_sequences(rows, value=self.pad_token_id, side="left")
        return ids.to(self.device), mask.to(self.device)

    def _check(self, prompts: list[Any]) -> None:
        check_batch_of(prompts, str, "a string", self.task)
        for index, prompt in enumerate(prompts):
            if not prompt:
                raise InvalidInputError(f"text-generate: input {index} is an empty prompt.")

    def stream(self, prompt: str, **params: Any) -> Iterator[str]:
        """Yield the generated text piece by piece as tokens arrive."""
        self.check_call_parameters(params)
        self._check([prompt])
        if self._samples(params) > 1:
            raise InvalidInputError("text-generate: stream() yields one sequence; pass num_return_sequences=1 "
                                    "(or call the pipeline for several samples).")
        config, stop, _ = self._config(dict(params))
        ids, mask = self._encode([prompt])
        generated: list[int] = []
        emitted, text = "", ""
        with self.autocast():
            for token in generate_ids(self.model, ids, mask, config, eos_token_id=self.eos_token_id,
                                      pad_token_id=self.pad_token_id):
                if self.eos_token_id is not None and token.item() == self.eos_token_id:
                    break
                generated.append(token.item())
                text = self.tokenizer.decode(generated, skip_special_tokens=True)
                cut = _stop_at(text, stop)
                if cut is not None:
                    if cut > len(emitted):
                        yield text[len(emitted):cut]
                    return
                if text.endswith("\ufffd"):
                    continue  # a multi-byte character is not complete yet
                ready = len(text) - _held_back(text, stop)  # may still become a stop string
                if ready > len(emitted):
                    yield text[len(emitted):ready]
                    emitted = text[:ready]
        if len(text) > len(emitted):
            yield text[len(emitted):]

    def _predict(self, prompts: list[Any], *, batch_size: int, progress: bool | None,
                 params: dict[str, Any]) -> list[Any]:
        """Prompts of similar length decoded together, token by token on the KV cache (the
        base's ``__call__`` did the shared work: defaults, streams, keyword checks, adapters)."""
        self._check(prompts)
        n = self._samples(params)
        config, stop, full = self._config(dict(params))
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[Any] = [None] * len(prompts)
        bar = self.progress_bar(len(prompts), progress, unit="prompt")
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            ids, mask = self._encode([prompts[i] for i in chunk])
            if n > 1:  # each prompt n times in a row, as generate(num_return_sequences=n) expands it
                ids, mask = ids.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)
            steps = []
            with self.autocast():
                for token in generate_ids(self.model, ids, mask, config, eos_token_id=self.eos_token_id,
                                          pad_token_id=self.pad_token_id):
                    steps.append(token.cpu())
            new = torch.stack(steps, 1) if steps else torch.empty(len(ids), 0, dtype=torch.long)
            for position, index in enumerate(chunk):
                samples = [self._result(prompts[index], new[row].tolist(), stop, full)
                           for row in range(position * n, (position + 1) * n)]
                results[index] = samples[0] if n == 1 else ResultList(samples)
            bar.update(len(chunk))
        bar.close()
        return results

    def _result(self, prompt: str, tokens: list[int], stop: list[str], full: bool) -> Result:
        """One generated sequence: cut at the end-of-sequence token and the first stop string."""
        if self.eos_token_id is not None and self.eos_token_id in tokens:
            tokens = tokens[:tokens.index(self.eos_token_id)]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        cut = _stop_at(text, stop)
        text = text if cut is None else text[:cut]
        return Result({"generated_text": prompt + text if full else text},
                      metadata={"new_tokens": len(tokens)})  # every result has .metadata

    def _save_extra_files(self, folder: Path) -> None:
        """The tokenizer's files beside the weights (``Pipeline.save`` writes the rest)."""
        self.tokenizer.save_pretrained(str(folder))

    # -- export: the logits of a whole sequence, without a KV cache
    #: generation calls the model step by step with a KV cache, which the graph has not, so
    #: backend="onnxruntime" does not run this task (its export is for other runtimes)
    runner_attribute = None  # type: ignore[assignment]

    def _export_spec(self) -> Any:
        """The causal LM's next-token logits (B, T, vocabulary) for whole (left-padded)
        sequences, without a KV cache: each step of generation runs the whole prefix."""
        from hub.export import ExportSpec, ModuleCall, token_examples

        sequence = {0: "batch", 1: "sequence"}
        return ExportSpec(
            module=ModuleCall(self.model, "logits"), inputs=("input_ids", "attention_mask"), outputs=("logits",),
            dynamic_axes={"input_ids": sequence, "attention_mask": sequence, "logits": sequence},
            examples=token_examples(int(self.model.config["vocab_size"]),
                                    min(64, int(self.model.config.get("max_positions", 64))), left_padding=True),
            description="causal-LM logits (batch, sequence, vocabulary) of whole sequences, left padding allowed; "
                        "no KV cache (generation reruns the prefix each step)",
            preprocessing={"tokenizer": "the tokenizer files in this folder", "padding": "left",
                           "eos_token_id": self.eos_token_id, "pad_token_id": self.pad_token_id})


def _stop_at(text: str, stops: list[str]) -> int | None:
    """Index of the earliest stop string in ``text``, or None."""
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None


def _held_back(text: str, stops: list[str]) -> int:
    """Length of the longest end of ``text`` that begins some stop string."""
    return max((k for stop in stops for k in range(len(stop) - 1, 0, -1) if text.endswith(stop[:k])), default=0)
