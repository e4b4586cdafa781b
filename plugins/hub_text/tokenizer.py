"""Tokenizers: always the checkpoint's own, through transformers' fast tokenizers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.errors import ModelLoadError

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")


def load_tokenizer(folder: str | Path) -> Any:
    folder = Path(folder)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelLoadError(f"{str(folder)!r} has no tokenizer (expected one of "
                             f"{', '.join(TOKENIZER_FILES)}); save the model with its tokenizer.")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    except Exception as exc:
        if "sentencepiece" in str(exc).lower():  # Marian's tokenizer reads .spm files: an optional dependency
            raise ModelLoadError(f"The tokenizer in {str(folder)!r} needs SentencePiece; install it with "
                                 f"pip install 'hub[sentencepiece]'.") from None
        raise ModelLoadError(f"Cannot load the tokenizer in {str(folder)!r}: {exc}") from None


def model_max_tokens(tokenizer: Any, model_positions: int) -> int:
    """The longest input the model takes: its positions, capped by the tokenizer's limit."""
    limit = getattr(tokenizer, "model_max_length", None) or model_positions
    return int(min(model_positions, limit if limit < 1_000_000 else model_positions))
