"""Generation for encoder-decoder models: greedy decoding, sampling and beam search (also
beam sampling) on a KV cache.

All follow transformers' ``generate`` step for step, so that on the same weights they give
the same tokens (sampling: under the same torch RNG state): the source is encoded once; the
decoder starts from
``decoder_start_token_id`` and runs one token per step on a :class:`~hub.backbone.KVCache`
(the memory's keys/values computed on the first step, reused afterwards). Scores pass the
same processors in the same order (``no_repeat_ngram_size``, ``min_new_tokens``, the
checkpoint's forced first / last tokens); greedy takes the argmax of the processed logits,
beam search adds the processed log-probabilities to each beam's score and keeps, per step,
the ``2 * num_beams`` best continuations (transformers' vectorised beam search, with its
``length_penalty`` and ``early_stopping`` rules and its stopping heuristic).

Sampling (``do_sample=True``) adds transformers' warpers after those processors
(temperature, top-k, top-p: :func:`hub_text.models.generation.warp_logits`) and draws with
``torch.multinomial`` once per step over all rows, as transformers' ``_sample`` does; beam
sampling draws the ``2 * num_beams`` candidates without replacement from the softmax of the
accumulated scores, as its ``_beam_search`` does. The draws use ``generator`` (or one seeded
from ``seed``), else torch's global RNG, so ``torch.manual_seed(s)`` before a call gives
transformers' tokens after the same ``torch.manual_seed(s)``.

``num_return_sequences`` sequences per source come back consecutively (source 0's first),
as transformers lays them out: the best beams in score order, or independent samples (each
source's rows repeated before decoding, as transformers expands its inputs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from hub.errors import InvalidInputError
from hub.validate import check_bool, check_int, check_number
from hub_text.models.generation import warp_logits

#: a model's own score processor: (sequences (N, length), scores (N, V), length) -> scores
LogitsProcessor = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
#: the call keywords of generation (the seq2seq pipelines take these)
GENERATION_PARAMETERS = ("max_new_tokens", "min_new_tokens", "num_beams", "length_penalty", "no_repeat_ngram_size",
                         "early_stopping", "num_return_sequences", "do_sample", "temperature", "top_k", "top_p",
                         "seed")


@dataclass
class Seq2SeqGenerationConfig:
    """How to decode (transformers' ``generate`` keywords of the same names).

    ``forced_bos_token_id`` / ``forced_eos_token_id`` are the checkpoint's (mBART's target
    language, BART's closing ``</s>``), not call keywords. ``top_k=0`` means no top-k cut
    (transformers' default is 50; Hub's text-generate also defaults to 0). ``seed`` seeds
    the draws of one call (None: torch's global RNG).
    """

    max_new_tokens: int = 50
    min_new_tokens: int = 0
    num_beams: int = 1
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    early_stopping: bool = False
    num_return_sequences: int = 1
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    forced_bos_token_id: int | None = None
    forced_eos_token_id: int | None = None

    def __post_init__(self) -> None:
        self.max_new_tokens = check_int("max_new_tokens", self.max_new_tokens, minimum=1)
        self.min_new_tokens = check_int("min_new_tokens", self.min_new_tokens, minimum=0)
        self.num_beams = check_int("num_beams", self.num_beams, minimum=1, maximum=256)
        self.length_penalty = check_number("length_penalty", self.length_penalty)
        self.no_repeat_ngram_size = check_int("no_repeat_ngram_size", self.no_repeat_ngram_size, minimum=0)
        self.early_stopping = check_bool("early_stopping", self.early_stopping)
        self.num_return_sequences = check_int("num_return_sequences", self.num_return_sequences, minimum=1,
                                              maximum=256)
        self.do_sample = check_bool("do_sample", self.do_sample)
        try:
            self.temperature = check_number("temperature", self.temperature, above=0)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{exc} Use do_sample=False for greedy decoding.") from None
        self.top_k = check_int("top_k", self.top_k, minimum=0)
        self.top_p = check_number("top_p", self.top_p, above=0, maximum=1)
        self.seed = check_int("seed", self.seed, minimum=0, maximum=2**63 - 1, none_ok=True)
        n = self.num_return_sequences
        if n > 1 and self.num_beams == 1 and not self.do_sample:
            raise InvalidInputError(f"num_return_sequences={n} needs beam search (num_beams >= {n}) or sampling "
                                    f"(do_sample=True); greedy decoding gives one sequence per input.")
        if n > self.num_beams > 1:
            raise InvalidInputError(f"num_return_sequences ({n}) is more than num_beams ({self.num_beams}): beam "
                                    f"search returns at most its beams; raise num_beams or lower "
                                    f"num_return_sequences.")
        if self.min_new_tokens > self.max_new_tokens:
            raise InvalidInputError(f"min_new_tokens ({self.min_new_tokens}) is more than max_new_tokens "
                                    f"({self.max_new_tokens}); lower it or raise max_new_tokens.")


def generation_config(model: Any, params: dict[str, Any]) -> Seq2SeqGenerationConfig:
    """The call's keywords over the checkpoint's defaults (``model.config["generation"]``)."""
    defaults = dict(model.config.get("generation") or {})
    if "max_new_tokens" in params and "min_new_tokens" not in params:  # a smaller budget keeps the minimum valid
        defaults["min_new_tokens"] = min(defaults.get("min_new_tokens", 0), params["max_new_tokens"]) \
            if isinstance(params["max_new_tokens"], int) else defaults.get("min_new_tokens", 0)
    return Seq2SeqGenerationConfig(**{**defaults, **params})


class _Processors:
    """transformers' logits processors, in its order, on (N, V) scores at ``length`` decoder
    tokens so far (the start token included)."""

    def __init__(self, config: Seq2SeqGenerationConfig, eos_token_id: int | None,
                 extra: LogitsProcessor | None = None, *, min_tokens_to_keep: int = 1) -> None:
        self.config, self.eos, self.extra = config, eos_token_id, extra
        self.max_length = 1 + config.max_new_tokens
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, sequences: torch.Tensor, scores: torch.Tensor, length: int) -> torch.Tensor:
        config = self.config
        if self.extra is not None:  # a model's own (Whisper's suppressed tokens), first, as transformers orders them
            scores = self.extra(sequences, scores, length)
        if config.no_repeat_ngram_size and length + 1 >= config.no_repeat_ngram_size:
            scores = _ban_repeated_ngrams(sequences[:, :length], scores, config.no_repeat_ngram_size)
        if self.eos is not None and length - 1 < config.min_new_tokens:
            scores = scores.clone()
            scores[:, self.eos] = float("-inf")
        for token, at in ((config.forced_bos_token_id, 1), (config.forced_eos_token_id, self.max_length - 1)):
            if token is not None and length == at:
                forced = torch.full_like(scores, float("-inf"))
                forced[:, token] = 0.0
                scores = forced
        if config.do_sample:  # transformers' warpers come after every other processor
            scores = warp_logits(scores, temperature=config.temperature, top_k=config.top_k, top_p=config.top_p,
                                 min_tokens_to_keep=self.min_tokens_to_keep)
        return scores


def _ban_repeated_ngrams(sequences: torch.Tensor, scores: torch.Tensor, n: int) -> torch.Tensor:
    """Set -inf on every token that would complete an n-gram already in the row."""
    rows = sequences.tolist()
    length = len(rows[0])
    scores = scores.clone()
    for index, row in enumerate(rows):
        tail = tuple(row[length - n + 1:]) if n > 1 else ()
        banned = [row[i + n - 1] for i in range(length - n + 1) if tuple(row[i:i + n - 1]) == tail]
        if banned:
            scores[index, banned] = float("-inf")
    return scores


@torch.inference_mode()
def generate_seq2seq(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                     config: Seq2SeqGenerationConfig, *, eos_token_id: int | None, pad_token_id: int,
                     logits_processor: LogitsProcessor | None = None, generator: torch.Generator | None = None,
                     return_scores: bool = False) -> Any:
    """Each source's generated target ids (after the start token, up to and including the
    end-of-sequence token when one was generated).

    Args:
        model: a :class:`~hub_text.models.seq2seq.Seq2SeqLM`.
        input_ids: (B, S) source ids, right-padded (or what the model's ``encode`` takes, e.g.
            Whisper's log-mel frames); attention_mask: (B, S), 1 at real tokens, or None.
        config: decoding settings; eos_token_id / pad_token_id: the tokenizer's.
        logits_processor: the model's own processor, applied to the scores before the others
            (Whisper's suppressed tokens), with ``length`` counted from the start token.
        generator: the RNG of sampling's draws (default: one seeded from ``config.seed``, else
            torch's global RNG, as transformers draws).
        return_scores: also return each sequence's score.

    Returns:
        ``B * config.num_return_sequences`` lists of token ids (each source's consecutively);
        with ``return_scores``, ``(sequences, scores)``: beam search's length-penalised
        log-probabilities (transformers' ``sequences_scores``), None per sequence otherwise.
    """
    if 1 + config.max_new_tokens > model.max_positions:
        raise InvalidInputError(f"max_new_tokens ({config.max_new_tokens}) exceeds the model's "
                                f"{model.max_positions - 1} target positions; lower it.")
    memory = model.encode(input_ids, attention_mask)  # (B, S, C)
    if generator is None and config.seed is not None and config.do_sample:
        generator = torch.Generator(device=memory.device).manual_seed(config.seed)
    if config.num_beams == 1:
        sequences = _sample(model, memory, attention_mask, config, eos_token_id, pad_token_id, logits_processor,
                            generator)
        scores: list[float | None] = [None] * len(sequences)
    else:
        sequences, scores = _beam_search(model, memory, attention_mask, config, eos_token_id, logits_processor,
                                         generator)
    return (sequences, scores) if return_scores else sequences


def _multinomial(probs: torch.Tensor, samples: int, generator: torch.Generator | None) -> torch.Tensor:
    """torch.multinomial, with its refusal of a row that has nothing left to draw (every
    token cut: the processors banned them all) as a HubError."""
    try:
        return torch.multinomial(probs, samples, generator=generator)
    except RuntimeError as exc:
        raise InvalidInputError(f"sampling: every token of a step was ruled out ({exc}); loosen the settings that "
                                f"ban tokens (no_repeat_ngram_size, min_new_tokens, top_k / top_p).") from None


def _sample(model: Any, memory: torch.Tensor, mask: torch.Tensor | None, config: Seq2SeqGenerationConfig,
            eos: int | None, pad: int, extra: LogitsProcessor | None = None,
            generator: torch.Generator | None = None) -> list[list[int]]:
    """Greedy decoding (the argmax of the processed logits) or sampling (one draw per row per
    step over the warped logits' softmax), as transformers' ``_sample``."""
    if config.do_sample and config.num_return_sequences > 1:  # transformers expands its inputs
        memory = memory.repeat_interleave(config.num_return_sequences, 0)
        mask = mask.repeat_interleave(config.num_return_sequences, 0) if mask is not None else None
    batch = memory.shape[0]
    process = _Processors(config, eos, extra)
    cache = model.new_cache(batch, 1 + config.max_new_tokens)
    sequences = torch.full((batch, 1), model.decoder_start_token_id, dtype=torch.long, device=memory.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=memory.device)
    for _ in range(config.max_new_tokens):
        logits = model.decode(sequences[:, -1:], memory, mask, cache=cache, last_only=True)[:, -1].float()
        scores = process(sequences, logits, sequences.shape[1])
        if config.do_sample:
            token = _multinomial(F.softmax(scores, dim=-1), 1, generator).squeeze(1)
        else:
            token = scores.argmax(-1)
        token = torch.where(finished, torch.full_like(token, pad), token)
        sequences = torch.cat([sequences, token[:, None]], 1)
        if eos is not None:
            finished |= token == eos
        if bool(finished.all()):
            break
    return [_until_eos(row[1:], eos) for row in sequences.tolist()]


def _until_eos(tokens: list[int], eos: int | None) -> list[int]:
    return tokens[:tokens.index(eos) + 1] if eos is not None and eos in tokens else tokens


def _gather(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """tensor (B, K, ...) -> (B, J, ...) at the beams ``index`` (B, J)."""
    while index.ndim < tensor.ndim:
        index = index.unsqueeze(-1)
    return torch.take_along_dim(tensor, index, dim=1)


def _beam_search(model: Any, memory: torch.Tensor, mask: torch.Tensor | None, config: Seq2SeqGenerationConfig,
                 eos: int | None, extra: LogitsProcessor | None = None, generator: torch.Generator | None = None
                 ) -> tuple[list[list[int]], list[float | None]]:
    """transformers' ``_beam_search`` (vectorised, static shapes; with ``do_sample``, beam
    sampling), for a decoder prompt of one start token. Every beam of a source attends to
    that source's memory, so the cache's memory keys/values never need reordering. Returns
    the best ``num_return_sequences`` finished hypotheses of each source, best first, and
    their scores."""
    batch, beams = memory.shape[0], config.num_beams
    device = memory.device
    memory = memory.repeat_interleave(beams, 0)  # (B * K, S, C): each beam attends to its source
    mask = mask.repeat_interleave(beams, 0) if mask is not None else None
    max_length = 1 + config.max_new_tokens
    keep = max(2, 1 + (eos is not None)) * beams  # candidates kept per step: enough to survive K ends
    top_beams = torch.cat([torch.ones(beams, dtype=torch.bool), torch.zeros(keep - beams, dtype=torch.bool)]).to(device)
    # beam sampling keeps one token besides the end token in every cut, as transformers does
    process = _Processors(config, eos, extra, min_tokens_to_keep=2 if config.do_sample else 1)
    cache = model.new_cache(batch * beams, max_length)

    running = torch.full((batch, beams, max_length), model.decoder_start_token_id, dtype=torch.long, device=device)
    finished_sequences = running.clone()
    running_scores = torch.zeros(batch, beams, device=device)
    running_scores[:, 1:] = -1e9  # the beams start identical: only the first may expand at step one
    finished_scores = torch.full((batch, beams), -1e9, device=device)
    is_finished = torch.zeros(batch, beams, dtype=torch.bool, device=device)
    can_improve = torch.ones(batch, 1, dtype=torch.bool, device=device)
    running_origin = torch.full((batch, beams, max_length - 1), -1, dtype=torch.long, device=device)
    finished_origin = running_origin.clone()
    offsets = torch.arange(batch, device=device)[:, None] * beams
    length = 1
    while True:
        flat = running[:, :, :length].reshape(batch * beams, length)
        logits = model.decode(flat[:, -1:], memory, mask, cache=cache, last_only=True)[:, -1].float()
        log_probs = process(flat, F.log_softmax(logits, dim=-1), length)
        vocab = log_probs.shape[-1]
        scores = (log_probs.view(batch, beams, vocab) + running_scores[:, :, None]).view(batch, beams * vocab)
        # the best `keep` continuations over all beams (beam sampling: `keep` drawn without
        # replacement from the accumulated scores' softmax, then sorted by score)
        if config.do_sample:
            top_index = _multinomial(F.softmax(scores, dim=-1), keep, generator)
            top_scores, order = torch.gather(scores, 1, top_index).sort(dim=-1, descending=True)
            top_index = top_index.gather(-1, order)
        else:
            top_scores, top_index = torch.topk(scores, keep)
        source_beam = top_index // vocab
        top_sequences = _gather(running, source_beam)
        top_sequences[:, :, length] = top_index % vocab
        top_origin = _gather(running_origin, source_beam)
        top_origin[:, :, length - 1] = source_beam + offsets
        ends = (top_index % vocab == eos) if eos is not None else torch.zeros_like(top_scores, dtype=torch.bool)
        ends = ends | (length + 1 >= max_length)
        # the best `beams` that did not end keep running
        alive = top_scores + ends.float() * -1e9
        chosen = torch.topk(alive, beams)[1]
        running, running_scores, running_origin = (_gather(top_sequences, chosen), _gather(alive, chosen),
                                                   _gather(top_origin, chosen))
        # the ones that ended join the finished hypotheses if they beat them
        ended_scores = top_scores / ((length + 1 - 1) ** config.length_penalty)
        full = is_finished.all(-1, keepdim=True) & config.early_stopping
        ended_scores = ended_scores + full.float() * -1e9 + (~can_improve).float() * -1e9
        just_ended = ends & top_beams[None, :]
        ended_scores = ended_scores + (~just_ended).float() * -1e9
        merged = torch.topk(torch.cat([finished_scores, ended_scores], 1), beams)[1]
        finished_sequences = _gather(torch.cat([finished_sequences, top_sequences], 1), merged)
        finished_scores = _gather(torch.cat([finished_scores, ended_scores], 1), merged)
        finished_origin = _gather(torch.cat([finished_origin, top_origin], 1), merged)
        is_finished = _gather(torch.cat([is_finished, just_ended], 1), merged)
        # each running beam continues from the cache row it came from
        cache.reorder(running_origin[:, :, length - 1].reshape(-1), cross=False)
        length += 1
        best_length = length - 1  # transformers' heuristic: the best score comes from the current length
        best_possible = running_scores[:, :1] / (best_length ** config.length_penalty)
        worst = torch.where(is_finished, finished_scores.min(1, keepdim=True)[0],
                            torch.full_like(finished_scores, -1e9))
        can_improve = can_improve & (best_possible > worst).any(-1, keepdim=True)
        open_beams = not (bool(is_finished.all()) and config.early_stopping)
        if not (bool(can_improve.any()) and open_beams and not bool(ends.all())):
            break
    results, result_scores = [], []
    for b in range(batch):
        for j in range(config.num_return_sequences):
            generated = int((finished_origin[b, j] >= 0).sum())
            results.append(finished_sequences[b, j, 1:1 + generated].tolist())
            result_scores.append(float(finished_scores[b, j]))
    return results, result_scores
