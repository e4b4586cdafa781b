"""text-classify through the Hugging Face Hub code paths, against a local endpoint."""

from __future__ import annotations

import pytest

import hub
from tests.text.checkpoints import make_bert_classifier

TEXTS = ["the food was great", "awful stale coffee", "tea"]


def test_push_to_hub_then_load_by_repo_id(tmp_path, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    make_bert_classifier(tmp_path / "ckpt", num_labels=2)
    pipe = hub.load("text-classify", model=str(tmp_path / "ckpt"), device="cpu")
    url = pipe.push_to_hub("me/tiny-sentiment")
    files = fake_hub.files_at("me/tiny-sentiment")
    assert {"config.json", "model.safetensors", "README.md", "tokenizer.json"} <= set(files)
    assert not [name for name in files if name.endswith((".bin", ".pt", ".pkl"))]
    assert b"library_name: hub-sdk" in files["README.md"]
    commit = fake_hub.repos["me/tiny-sentiment"].resolve("main")
    assert url.endswith(commit)

    again = hub.load("text-classify", model="me/tiny-sentiment", device="cpu")
    assert again.metadata["repo_id"] == "me/tiny-sentiment"
    assert again.metadata["commit"] == commit
    assert again(TEXTS, top_k=None) == pipe(TEXTS, top_k=None)


def test_transformers_checkpoint_pinned_by_revision(tmp_path, fake_hub, monkeypatch):
    first = make_bert_classifier(tmp_path / "v1", num_labels=2, seed=1)
    make_bert_classifier(tmp_path / "v2", num_labels=2, seed=2)
    read = lambda folder: {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    old = fake_hub.add_commit("org/bert", read(tmp_path / "v1"))
    fake_hub.add_commit("org/bert", read(tmp_path / "v2"))

    pinned = hub.load("text-classify", model="org/bert", revision=old, device="cpu")
    assert pinned.metadata["commit"] == old
    assert pinned.metadata["converted_from"] == "transformers:bert"
    import torch

    batch = pinned.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        diff = (pinned.model(batch["input_ids"], batch["attention_mask"])["logits"]
                - first(**batch).logits).abs().max().item()
    assert diff <= 1e-4
    latest = hub.load("text-classify", model="org/bert", device="cpu")
    assert latest.metadata["commit"] != old

    # offline afterwards: the same revision comes from the cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.load("text-classify", model="org/bert", revision=old).metadata["commit"] == old


def test_catalogue_overlay_names_an_hf_model(tmp_path, fake_hub, monkeypatch):
    make_bert_classifier(tmp_path / "ckpt", num_labels=2)
    fake_hub.add_commit("org/reviews", {p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()})
    overlay = tmp_path / "mine.yaml"
    overlay.write_text("models:\n  my-reviews:\n    task: text-classify\n    source: hf://org/reviews@main\n")
    monkeypatch.setenv("HUB_REGISTRY", str(overlay))
    hub.plugins.reset()
    pipe = hub.load("my-reviews", device="cpu")
    assert pipe.metadata["model_name"] == "my-reviews" and pipe.metadata["repo_id"] == "org/reviews"


def test_offline_and_not_cached_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.errors.OfflineModelNotCachedError, match="hub download"):
        hub.load("text-classify", model="org/never-downloaded")
