"""Shared fixtures: isolation from the user's environment and the network."""

from __future__ import annotations

import os

import pytest

# Tests never reach the Hugging Face Hub: only a local endpoint a test starts itself.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
