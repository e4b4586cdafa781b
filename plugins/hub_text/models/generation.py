"""Token-by-token decoding for causal LMs: greedy, sampling (temperature, top-k, top-p),
repetition penalty, end-of-sequence handling, on a KV cache.

The logits processors follow transformers' order and definitions (repetition penalty,
then temperature, top-k, top-p), so greedy decoding and seeded sampling match its
``generate`` on the same weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from hub.errors import InvalidInputError
from hub.validate import check_bool, check_int, check_number


@dataclass
class GenerationConfig:
    max_new_tokens: int = 50
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        # every value checked for type, finiteness and range: a string seed, a NaN temperature
        # or a float top_k would otherwise fail deep in torch or sample garbage
        self.max_new_tokens = check_int("max_new_tokens", self.max_new_tokens, minimum=1)
        self.do_sample = check_bool("do_sample", self.do_sample)
        try:
            self.temperature = check_number("temperature", self.temperature, above=0)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{exc} Use do_sample=False for greedy decoding.") from None
        self.top_k = check_int("top_k", self.top_k, minimum=0)
        self.top_p = check_number("top_p", self.top_p, above=0, maximum=1)
        self.repetition_penalty = check_number("repetition_penalty", self.repetition_penalty, above=0)
        self.seed = check_int("seed", self.seed, minimum=0, maximum=2**63 - 1, none_ok=True)


def process_logits(logits: torch.Tensor, previous: torch.Tensor, config: GenerationConfig) -> torch.Tensor:
    """(B, V) next-token logits -> the scores sampling or argmax picks from."""
    if config.repetition_penalty != 1.0:
        seen = torch.gather(logits, 1, previous)
        seen = torch.where(seen < 0, seen * config.repetition_penalty, seen / config.repetition_penalty)
        logits = logits.scatter(1, previous, seen)
    if not config.do_sample:
        return logits
    return warp_logits(logits, temperature=config.temperature, top_k=config.top_k, top_p=config.top_p)


def warp_logits(logits: torch.Tensor, *, temperature: float, top_k: int, top_p: float,
                min_tokens_to_keep: int = 1) -> torch.Tensor:
    """transformers' sampling warpers, in its order: temperature, top-k, top-p (nucleus).

    Shared by causal and encoder-decoder sampling so both do transformers' arithmetic.

    Args:
        logits: (N, V) scores (logits, or log-probabilities in beam sampling).
        temperature: the divisor (> 0); top_k: keep the k best (0: no cut); top_p: keep the
            smallest set of best tokens whose probability reaches top_p (1.0: no cut).
        min_tokens_to_keep: at least this many survive each cut (transformers keeps 2 in beam
            sampling, so a beam can always continue past the end token).

    Returns:
        The (N, V) scores with the cut tokens at -inf.
    """
    logits = logits / temperature
    if top_k:
        kth = torch.topk(logits, min(max(top_k, min_tokens_to_keep), logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=False)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        remove = cumulative <= (1 - top_p)
        remove[:, -min_tokens_to_keep:] = False  # always keep the most likely token(s)
        logits = logits.masked_fill(remove.scatter(1, order, remove), float("-inf"))
    return logits


@torch.inference_mode()
def generate_ids(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, config: GenerationConfig, *,
                 eos_token_id: int | None, pad_token_id: int) -> Iterator[torch.Tensor]:
    """Yield the next token of every sequence, (B,), until all ended or the budget is spent.

    Prompts are left-padded: ``attention_mask`` is 0 on the padding.
    """
    batch, length = input_ids.shape
    if length + config.max_new_tokens > model.max_positions:
        raise InvalidInputError(f"prompt ({length} tokens) + max_new_tokens ({config.max_new_tokens}) exceeds "
                                f"the model's {model.max_positions} positions.")
    generator = None
    if config.seed is not None:
        generator = torch.Generator(device=input_ids.device).manual_seed(config.seed)
    cache = model.new_cache(batch, length + config.max_new_tokens)
    mask = attention_mask
    logits = model(input_ids, mask, cache=cache, last_only=True)["logits"][:, -1].float()
    previous = input_ids
    finished = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
    for _ in range(config.max_new_tokens):
        scores = process_logits(logits, previous, config)
        if config.do_sample:
            token = torch.multinomial(scores.softmax(-1), 1, generator=generator).squeeze(1)
        else:
            token = scores.argmax(-1)
        token = torch.where(finished, torch.full_like(token, pad_token_id), token)
        yield token
        if eos_token_id is not None:
            finished |= token == eos_token_id
        if bool(finished.all()):
            return
        previous = torch.cat([previous, token[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        logits = model(token[:, None], mask, cache=cache, last_only=True)["logits"][:, -1].float()
