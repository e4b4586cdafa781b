"""README's "Hugging Face datasets as data" and "Experiment trackers" examples, as written, run
one after the other in a fresh folder (the shipped sentiment model; offline)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("datasets", "wandb", "mlflow")),
                                 reason="needs the datasets, wandb and mlflow extras")]
README = Path(__file__).resolve().parent.parent / "README.md"


def example(section: str) -> str:
    text = README.read_text(encoding="utf-8").split(f"### {section}\n", 1)[1]
    return text.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_datasets_and_trackers_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for key in ("WANDB_MODE", "WANDB_SILENT", "WANDB_DIR", "MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    namespace = {"__name__": "readme"}
    exec(compile(example("Hugging Face datasets as data"), "README.md (datasets)", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert printed[-2:] == ["2", "2"]
    card = (tmp_path / "reviews-model" / "README.md").read_text()
    assert "Fine-tuned from `sentiment-minilm` on the dataset" in card and "split `train` (2 rows)" in card
    try:
        exec(compile(example("Experiment trackers"), "README.md (trackers)", "exec"), namespace)
    finally:  # the example sets them for its process; leave none behind for later tests
        import os

        for key in ("WANDB_MODE", "WANDB_SILENT", "MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE"):
            os.environ.pop(key, None)
    metrics = eval(capsys.readouterr().out.strip().splitlines()[-1])
    logged = [json.loads(line) for line in (tmp_path / "reviews-run" / "metrics.jsonl").read_text().splitlines()]
    assert set(metrics) == {k for r in logged for k in r if k != "step"}
    assert list((tmp_path / "reviews-run" / "wandb").glob("offline-run-*/run-*.wandb"))
