"""CLIP's text input: transformers' ``CLIPTokenizer`` (byte-level BPE, words end in ``</w>``,
lower-cased, ``<|startoftext|>`` ... ``<|endoftext|>``), loaded from a model folder or
trained from scratch on a corpus (a small CLIP, such as the shipped icon model, needs a
vocabulary of its own words, not OpenAI's 49,408 tokens).

The trained vocabulary is laid out as OpenAI's: the 256 byte symbols, the same with
``</w>``, one token per merge in merge order, then ``<|startoftext|>`` and
``<|endoftext|>`` last, so the end-of-text token has the highest id (the rule by which old
CLIP configs pool, see :func:`hub_vision.models.clip.eos_positions`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hub.errors import InvalidInputError, ModelLoadError

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def train_clip_tokenizer(texts: Iterable[str], vocab_size: int = 1000, *, max_length: int = 77) -> Any:
    """A ``CLIPTokenizer`` whose merges are learned from ``texts`` (at most ``vocab_size``
    tokens in all, at least the 514 byte symbols and specials).

    Args:
        texts: the training corpus (e.g. every caption).
        vocab_size: the vocabulary size to aim for (the merges stop when no pair repeats).
        max_length: the tokenizer's ``model_max_length`` (the text tower's positions).

    Returns:
        A transformers ``CLIPTokenizer`` (``save_pretrained`` writes it beside a model).
    """
    from tokenizers import trainers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise InvalidInputError("train_clip_tokenizer needs a non-empty list of non-empty texts.")
    alphabet = sorted(ByteLevel.alphabet())
    base = len(alphabet) * 2 + 2
    if vocab_size < base:
        raise InvalidInputError(f"vocab_size must be at least {base} (256 byte symbols, each also ending a word, and "
                                f"two special tokens), got {vocab_size}.")
    backend = CLIPTokenizer().backend_tokenizer  # CLIP's normaliser and pre-tokeniser
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - 2, min_frequency=2, initial_alphabet=alphabet,
                                  end_of_word_suffix="</w>", show_progress=False, special_tokens=[])
    backend.train_from_iterator(texts, trainer)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
              for m in json.loads(backend.to_str())["model"]["merges"]]
    vocab: dict[str, int] = {}
    for token in [*alphabet, *(a + "</w>" for a in alphabet)]:
        vocab.setdefault(token, len(vocab))
    kept = []
    for left, right in merges:
        if len(vocab) >= vocab_size - 2:
            break
        if left in vocab and right in vocab:
            vocab.setdefault(left + right, len(vocab))
            kept.append((left, right))
    vocab[BOS], vocab[EOS] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(vocab=vocab, merges=kept, model_max_length=max_length)


def has_tokenizer(folder: str | Path) -> bool:
    """Whether a model folder holds tokenizer files (tokenizer.json or vocab.json)."""
    return any((Path(folder) / name).is_file() for name in ("tokenizer.json", "vocab.json"))


def load_clip_tokenizer(folder: str | Path) -> Any:
    """The tokenizer saved beside a CLIP model (transformers' files: tokenizer.json or
    vocab.json + merges.txt, with tokenizer_config.json)."""
    folder = Path(folder)
    if not has_tokenizer(folder):
        raise ModelLoadError(f"{str(folder)!r} has no tokenizer (tokenizer.json or vocab.json + merges.txt); a CLIP "
                             "model folder needs the tokenizer its text tower was trained with.")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # transformers raises many kinds for a damaged tokenizer
        raise ModelLoadError(f"Cannot load the tokenizer in {str(folder)!r}: {exc}") from None
