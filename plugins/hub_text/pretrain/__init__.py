"""Self-supervised text pretraining: corpora, packing, masking, tokenizers, and the
loop behind ``TextGenerationPipeline.pretrain`` (causal LM) and
``FillMaskPipeline.pretrain`` (masked LM).

Corpora (:func:`read_texts`) are lists of *documents*:

* a ``.txt`` file: by default one document per **block of lines separated by one or
  more blank lines** (lines inside a block keep their line breaks);
  ``documents="line"`` makes every non-blank line a document instead;
* a ``.jsonl`` file: one JSON object per line, the document in its ``"text"`` field
  (``text_field=``); blank lines are skipped;
* a ``.json`` file: a list of strings or of such objects;
* a folder: every ``.txt``, ``.jsonl`` and ``.json`` file under it (recursively, in
  sorted order; hidden files are skipped);
* any iterable of strings (each string one document) or of ``{"text": ...}`` dicts.

Empty documents are skipped. A row that cannot be read raises
:class:`~hub.errors.DataError` naming the file and line (or the item).

Causal LM (GPT): every document is tokenised without special tokens, followed by the
end-of-sequence token, the documents are concatenated and the stream is cut into
``block_size`` blocks (the tail shorter than a block is dropped), so no position is
padding; ``labels = input_ids`` (the model shifts them). Masked LM (BERT): the stream
is documents separated by ``[SEP]`` and every block is ``[CLS] + block_size - 2 tokens
+ [SEP]``; masking is dynamic (a new draw every time a block is seen) with BERT's
recipe (15 % of the non-special tokens; of those 80 % become ``[MASK]``, 10 % a random
token, 10 % stay; ``labels`` are -100 elsewhere), drawn from a ``torch.Generator``
seeded from ``TrainingArguments.seed``. Validation blocks are masked once, so every
evaluation scores the same positions.

The validation split is made by document (``val_fraction``, seeded), and the evaluation
reports the per-token loss (``eval_loss``, averaged over all predicted tokens) and
``eval_perplexity = exp(eval_loss)``.

The package is split by concern: :mod:`.corpus` (reading corpora, the hold-out
split), :mod:`.objectives` (packing, masking, collators, per-token loss),
:mod:`.tokenizer_training` (BPE / WordPiece), :mod:`.build` (fresh models and the
``from_scratch`` body) and :mod:`.loop` (the pretraining loop). Every public name is
importable from ``hub_text.pretrain``.
"""

from hub_text.data import DOCUMENT_RULES, TEXT_SUFFIXES, read_texts, split_documents

from .build import TINY_BACKBONE, build_fresh, causal_lm_config, masked_lm_config, new_pipeline, resolve_tokenizer
from .loop import PRETRAIN_DEFAULTS, pretrain_language_model
from .objectives import (
    BlockDataset,
    CausalLMCollator,
    LanguageModelForTraining,
    MaskedLMCollator,
    lm_metrics,
    pack_causal,
    pack_masked,
    tokenize_documents,
)
from .tokenizer_training import BPE_SPECIAL, WORDPIECE_SPECIALS, train_tokenizer

__all__ = [
    "TEXT_SUFFIXES", "DOCUMENT_RULES", "read_texts", "split_documents", "tokenize_documents", "pack_causal",
    "pack_masked", "BlockDataset", "CausalLMCollator", "MaskedLMCollator", "LanguageModelForTraining", "lm_metrics",
    "BPE_SPECIAL", "WORDPIECE_SPECIALS", "train_tokenizer", "TINY_BACKBONE", "resolve_tokenizer",
    "causal_lm_config", "masked_lm_config", "build_fresh", "new_pipeline", "PRETRAIN_DEFAULTS",
    "pretrain_language_model",
]
