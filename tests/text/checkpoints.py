"""Small random transformers checkpoints made on the fly (no network)."""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = ("the a an good bad great awful film food product tasty fresh stale not very really "
         "love hate it was is and but delicious terrible price value box taste flavor coffee tea").split()


def make_wordpiece_tokenizer(folder: Path, lowercase: bool = True):
    """A real BertTokenizerFast over a small vocabulary, saved into ``folder``."""
    from transformers import BertTokenizer  # the tokenizers-backed class in transformers 5

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *list("abcdefghijklmnopqrstuvwxyz"),
             *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"], ".", ",", "!", "?", "'"]
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=lowercase)
    assert tokenizer.convert_tokens_to_ids("good") == vocab.index("good")  # not all [UNK]
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def make_bert_classifier(folder: Path, *, hidden: int = 32, layers: int = 2, heads: int = 4,
                         intermediate: int = 37, num_labels: int = 3, max_positions: int = 64,
                         hidden_act: str = "gelu", seed: int = 0, safe: bool = True,
                         problem_type: str | None = None):
    """Save a random BertForSequenceClassification + tokenizer; return the HF model.

    ``problem_type`` ("multi_label_classification", "regression", ...) and ``num_labels=1``
    make the checkpoints whose scores are not a softmax."""
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = make_wordpiece_tokenizer(folder)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=intermediate,
                        max_position_embeddings=max_positions, hidden_act=hidden_act,
                        num_labels=num_labels, id2label={i: f"class_{i}" for i in range(num_labels)},
                        label2id={f"class_{i}": i for i in range(num_labels)}, problem_type=problem_type)
    model = BertForSequenceClassification(config).eval()
    # perturb LayerNorms and biases so that parity tests cannot pass by symmetry
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(str(folder))
    if not safe:  # the legacy pickle format older checkpoints on the Hub still use
        (folder / "model.safetensors").unlink()
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return model
