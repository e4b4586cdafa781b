"""Training GPT-2 byte-level BPE and BERT WordPiece tokenizers with the ``tokenizers``
library."""

from __future__ import annotations

from typing import Any

from hub.errors import ConfigError, DataError
from hub_text.data import read_texts

BPE_SPECIAL = "<|endoftext|>"
WORDPIECE_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


# -- tokenizers ----------------------------------------------------------------------------
def train_tokenizer(texts: Any, kind: str = "bpe", vocab_size: int = 8000, *, min_frequency: int = 2,
                    lowercase: bool | None = None, model_max_length: int | None = None) -> Any:
    """Train a tokenizer with the ``tokenizers`` library; returns a transformers
    ``PreTrainedTokenizerFast`` (save it with ``save_pretrained``; ``pipe.save`` does).

    * ``kind="bpe"``: GPT-2's byte-level BPE (every byte in the base alphabet, so no
      unknown tokens), ``<|endoftext|>`` as bos, eos, pad and unk; no special tokens
      are added when encoding.
    * ``kind="wordpiece"``: BERT's WordPiece with ``[PAD] [UNK] [CLS] [SEP] [MASK]``
      (ids 0-4), BERT normalisation (lower-cased unless ``lowercase=False``) and a
      post-processor that makes ``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]``.

    ``texts`` is anything :func:`read_texts` reads (a list of strings, a file, a folder).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if kind not in ("bpe", "wordpiece"):
        raise ConfigError(f"kind must be 'bpe' or 'wordpiece', got {kind!r}.")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        texts = read_texts(texts)
    if not texts:
        raise DataError("train_tokenizer got no text.")
    if kind == "bpe":
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        if vocab_size < len(alphabet) + 1:
            raise ConfigError(f"vocab_size must be at least {len(alphabet) + 1} for byte-level BPE "
                              f"(256 bytes + {BPE_SPECIAL}), got {vocab_size}.")
        if lowercase:
            raise ConfigError("lowercase=True is not supported for byte-level BPE (GPT-2 keeps case).")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=[BPE_SPECIAL], initial_alphabet=alphabet,
                                      show_progress=False)
        tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
        specials = {"bos_token": BPE_SPECIAL, "eos_token": BPE_SPECIAL, "pad_token": BPE_SPECIAL,
                    "unk_token": BPE_SPECIAL}
    else:
        if vocab_size < len(WORDPIECE_SPECIALS) + 1:
            raise ConfigError(f"vocab_size must exceed {len(WORDPIECE_SPECIALS)} for WordPiece, got {vocab_size}.")
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase is not False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece(prefix="##")
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=list(WORDPIECE_SPECIALS), show_progress=False,
                                            continuing_subword_prefix="##")
        tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
        cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
        specials = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                    "mask_token": "[MASK]", "model_input_names": ["input_ids", "token_type_ids", "attention_mask"]}
    extra = {} if model_max_length is None else {"model_max_length": model_max_length}
    return PreTrainedTokenizerFast(tokenizer_object=tok, **specials, **extra)
