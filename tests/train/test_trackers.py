"""Experiment trackers (report_to): names and errors, and offline runs of wandb and MLflow
whose stored records are read back and compared with the run's metrics.jsonl."""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
import time
from pathlib import Path

import pytest
import torch

from hub.errors import ConfigError, MissingExtraError
from hub.train import Trainer, TrainingArguments

sys.path.insert(0, str(Path(__file__).parent))
from toy_run import ToyEncoderClassifier, collate, toy_data

needs_wandb = pytest.mark.skipif(importlib.util.find_spec("wandb") is None,
                                 reason="wandb is not installed (pip install 'hub-sdk[wandb]')")
needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                  reason="mlflow is not installed (pip install 'hub-sdk[mlflow]')")


def run(tmp_path: Path, **kwargs) -> Trainer:
    torch.manual_seed(0)
    args = TrainingArguments(**{"epochs": 2, "batch_size": 16, "learning_rate": 3e-3, "device": "cpu",
                                "progress": False, "log_every": 2, "output_dir": str(tmp_path / "run"), **kwargs})
    trainer = Trainer(ToyEncoderClassifier(0.0), args, train_data=toy_data(64, 1), eval_data=toy_data(20, 2),
                      collate=collate)
    trainer.train()
    return trainer


def jsonl(trainer: Trainer) -> list[dict]:
    return [json.loads(line) for line in (Path(trainer.args.output_dir) / "metrics.jsonl").read_text().splitlines()]


# -- names ------------------------------------------------------------------------------
def test_report_to_names_resolve():
    assert TrainingArguments(report_to="jsonl").trackers() == ["jsonl"]
    assert TrainingArguments(report_to=["jsonl", "tensorboard"]).trackers() == ["jsonl", "tensorboard"]
    assert TrainingArguments(report_to="none").trackers() == []
    assert TrainingArguments(tensorboard=False).trackers() == ["jsonl"]  # the default: JSONL (+ TensorBoard)
    every = TrainingArguments(report_to="all").trackers()
    assert "jsonl" in every and all(name in ("jsonl", "tensorboard", "wandb", "mlflow") for name in every)


@pytest.mark.parametrize("value, message", [
    ("wandbb", "Did you mean 'wandb'"), (["all", "jsonl"], "stand alone"), (3, "report_to"),
    (["jsonl", 1], "report_to")])
def test_bad_report_to_is_refused(value, message):
    with pytest.raises(ConfigError, match=message):
        TrainingArguments(report_to=value)


def test_tensorboard_false_conflicts_with_report_to():
    with pytest.raises(ConfigError, match="tensorboard=False"):
        TrainingArguments(report_to=["tensorboard"], tensorboard=False)


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_missing_library_names_the_extra(name, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda module, *a: None if module == name else real(module, *a))
    with pytest.raises(MissingExtraError, match=rf"hub-sdk\[{name}\]"):
        TrainingArguments(report_to=[name])


def test_report_to_none_writes_no_log(tmp_path):
    trainer = run(tmp_path, report_to="none")
    assert not (Path(trainer.args.output_dir) / "metrics.jsonl").exists()
    assert not (Path(trainer.args.output_dir) / "tensorboard").exists()


# -- wandb, offline ---------------------------------------------------------------------
def wandb_records(path: Path):
    """The protobuf records of a wandb ``run-*.wandb`` file (LevelDB log format: 32 KiB blocks
    of records with a 7-byte header; the file starts with ``:W&B``, magic and version)."""
    raw = path.read_bytes()
    assert raw[:4] == b":W&B"
    pos, pending = 7, b""
    while pos + 7 <= len(raw):
        room = 32768 - pos % 32768
        if room < 7:
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        if length == 0 and kind == 0:
            pos += room
            continue
        chunk, pos = raw[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            yield pending + chunk
            pending = b""


@needs_wandb
def test_wandb_offline_run_holds_the_logged_metrics(tmp_path, monkeypatch):
    for key, value in {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wb"), "WANDB_SILENT": "true",
                       "WANDB_CONFIG_DIR": str(tmp_path / "wbc"), "WANDB_CACHE_DIR": str(tmp_path / "wbc"),
                       "WANDB_DATA_DIR": str(tmp_path / "wbc"), "WANDB_DISABLE_GIT": "true",
                       "WANDB_DISABLE_CODE": "true", "WANDB_PROJECT": "hub-test"}.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "wb").mkdir()
    trainer = run(tmp_path, report_to=["wandb", "jsonl"], run_name="toy")
    from wandb.proto import wandb_internal_pb2

    files = list((tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    records: list = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wandb's service writes the file asynchronously, up to the exit record
        records = []
        for data in wandb_records(files[0]):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(data)
            records.append(record)
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            break
        time.sleep(0.2)
    rows, config = [], {}
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
        elif kind == "run":
            config.update({item.key: item.value_json for item in record.run.config.update})
    logged = jsonl(trainer)
    assert len(rows) == len(logged) == 6, (files[0].stat().st_size, rows)  # 4 training records + 2 evaluations
    for row, expected in zip(rows, logged):
        for key, value in expected.items():
            assert row[key] == pytest.approx(value), key
    assert json.loads(config["learning_rate"]) == 3e-3  # the training arguments are the run's config


# -- MLflow, the local file store -------------------------------------------------------
@needs_mlflow
def test_mlflow_file_store_holds_the_logged_metrics(tmp_path, monkeypatch):
    store = f"file://{tmp_path / 'mlruns'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind this opt-in
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "hub-test")
    trainer = run(tmp_path, report_to=["mlflow", "jsonl"], run_name="toy")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("hub-test")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].info.run_name == "toy" and runs[0].info.status == "FINISHED"
    run_id = runs[0].info.run_id
    logged = jsonl(trainer)
    for key in ("loss", "lr", "eval_loss", "train_loss"):
        expected = [(r["step"], r[key]) for r in logged if key in r]
        history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        assert [s for s, _ in history] == [s for s, _ in expected], key
        assert [v for _, v in history] == pytest.approx([v for _, v in expected]), key
    assert float(runs[0].data.params["learning_rate"]) == 3e-3


def test_hub_train_takes_report_to(tmp_path):
    from hub.cli import build_parser
    from hub.train.recipe import recipe_from_dict

    args = build_parser().parse_args(["train", "recipe.yaml", "--report-to", "jsonl", "mlflow"])
    assert args.report_to == ["jsonl", "mlflow"]
    (tmp_path / "train.jsonl").write_text('{"text": "a", "label": "x"}\n')
    recipe = recipe_from_dict({"task": "text-classify", "data": {"train": str(tmp_path / "train.jsonl")}},
                              overrides={"training": {"report_to": ["none"]}})
    assert TrainingArguments.from_kwargs(**recipe.training).trackers() == []
    with pytest.raises(ConfigError, match="unknown tracker 'tensorbaord'"):
        recipe_from_dict({"task": "text-classify", "data": {"train": str(tmp_path / "train.jsonl")}},
                         overrides={"training": {"report_to": ["tensorbaord"]}})
