"""The ``hub`` command line, run in-process through ``hub.cli.main`` (plus two subprocesses
that check the catalogue commands stay free of torch)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub import __version__
from hub.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str):
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return json.loads(out)


# --------------------------------------------------------------------------- light commands
def test_catalogue_commands_do_not_import_torch():
    """`hub --help`, `hub list`, `hub info` and `hub plugins` only read data."""
    script = (
        "import sys\n"
        "from hub.cli import main\n"
        "codes = [main(['--help']), main(['list']), main(['list', '--json']),\n"
        "         main(['info', 'text-classify']), main(['info', 'sentiment-minilm', '--json']),\n"
        "         main(['plugins'])]\n"
        "assert codes == [0] * 6, codes\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'safetensors') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "text-classify" in proc.stdout


def test_python_dash_m_hub():
    proc = subprocess.run([sys.executable, "-m", "hub", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "100"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: hub")
    for command in ("list", "info", "plugins", "predict", "download", "train"):
        assert command in proc.stdout


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"hub {__version__}"


def test_no_command_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 0 and "usage: hub" in out


def test_usage_error_exits_2(capsys):
    code, _, err = run(capsys, "frobnicate")
    assert code == 2 and "invalid choice" in err


@pytest.fixture
def catalogue_only_task(tmp_path, monkeypatch) -> str:
    """A task the catalogue names but no installed plugin provides."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("tasks:\n  video-caption:\n    default: some-captioner\n    aliases: [video-captioning]\n"
                       "models:\n  some-captioner: {task: video-caption, source: 'hf://org/captioner'}\n")
    monkeypatch.setenv("HUB_REGISTRY", str(overlay))
    return "video-caption"


def test_list_text(capsys, catalogue_only_task):
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert "Tasks" in out and "Models" in out
    row = next(line for line in out.splitlines() if line.split()[:1] == ["text-classify"])
    assert "sentiment-analysis" in row and "sentiment-minilm" in row and row.rstrip().endswith("text")
    # catalogue-only tasks say that nothing provides them yet
    assert "no plugin installed" in next(line for line in out.splitlines() if catalogue_only_task in line.split()[:1])
    model_row = next(line for line in out.splitlines() if line.split()[:1] == ["distilbert-sst2"])
    assert "hf://distilbert/distilbert-base-uncased-finetuned-sst-2-english" in model_row
    assert "apache-2.0" in model_row


def test_list_json(capsys, catalogue_only_task):
    data = run_json(capsys, "list", "--json")
    tasks = {t["name"]: t for t in data["tasks"]}
    assert tasks["text-classify"]["plugin"] == "text"
    assert tasks["text-classify"]["default_model"] == "sentiment-minilm"
    assert set(tasks["text-classify"]["aliases"]) >= {"text-classification", "sentiment-analysis"}
    assert tasks[catalogue_only_task]["plugin"] is None
    models = {m["name"]: m for m in data["models"]}
    assert models["sentiment-minilm"]["license"] == "apache-2.0"
    assert models["gpt2"]["task"] == "text-generate"


@pytest.mark.parametrize("pattern", ["*sst2*", "sst2"])
def test_list_pattern(capsys, pattern):
    data = run_json(capsys, "list", pattern, "--json")
    assert [m["name"] for m in data["models"]] == ["distilbert-sst2", "textattack-bert-sst2"]
    assert data["tasks"] == []


def test_list_task_filter_accepts_aliases(capsys):
    data = run_json(capsys, "list", "--task", "sentiment-analysis", "--json")
    assert [t["name"] for t in data["tasks"]] == ["text-classify"]
    assert {m["task"] for m in data["models"]} == {"text-classify"}
    assert "sentiment-minilm" in {m["name"] for m in data["models"]}


def test_list_unknown_task_is_an_error(capsys):
    code, out, err = run(capsys, "list", "--task", "text-clasify")
    assert code == 2 and out == ""
    assert err.startswith("error: Unknown task 'text-clasify'") and "'text-classify'" in err


def test_info_model_shows_every_field(capsys):
    data = run_json(capsys, "info", "distilbert-sst2", "--json")
    assert data["kind"] == "model"
    assert data["task"] == "text-classify" and data["architecture"] == "bert-classifier"
    assert data["labels"] == ["NEGATIVE", "POSITIVE"]
    assert data["metrics"]["accuracy"] == pytest.approx(0.913)
    assert data["origin"].endswith("registry.yaml")
    code, out, _ = run(capsys, "info", "distilbert-sst2")
    assert code == 0 and "accuracy=0.913" in out and "NEGATIVE, POSITIVE" in out


def test_info_task_by_alias(capsys, catalogue_only_task):
    data = run_json(capsys, "info", "sentiment-analysis", "--json")
    assert data["kind"] == "task" and data["name"] == "text-classify"
    assert data["pipeline"] == "hub_text.pipelines.classify:TextClassificationPipeline"
    assert data["default_model"] == "sentiment-minilm"
    assert {"sentiment-minilm", "distilbert-sst2"} <= set(data["models"])
    code, out, _ = run(capsys, "info", catalogue_only_task)
    assert code == 0 and "no plugin installed" in out


def test_info_unknown_name_suggests_close_matches(capsys):
    code, out, err = run(capsys, "info", "text-clasify")
    assert code == 2 and out == ""
    assert err.startswith("error: Unknown")
    assert "Did you mean" in err and "'text-classify'" in err
    assert "Traceback" not in err


def test_plugins_lists_builtin_text(capsys):
    data = run_json(capsys, "plugins", "--json")
    text = next(p for p in data["plugins"] if p["name"] == "text")
    assert text == {**text, "module": "hub_text.plugin", "distribution": "hub-sdk", "builtin": True,
                    "status": "loaded", "error": None}
    assert "text-classify" in text["tasks"]
    assert data["problems"] == [] and data["hook_errors"] == [] and data["registry_error"] is None
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    assert next(line for line in out.splitlines() if line.split()[:1] == ["text"]).split()[1:3] == ["loaded", "yes"]


def test_broken_registry_overlay_is_reported_not_raised(capsys, tmp_path, monkeypatch):
    overlay = tmp_path / "broken.yaml"
    overlay.write_text("models:\n  x: {task: text-classify}\n")
    monkeypatch.setenv("HUB_REGISTRY", str(overlay))
    code, _, err = run(capsys, "list")
    assert code == 2 and str(overlay) in err and "'source'" in err
    code, out, err = run(capsys, "plugins")  # plugin health is still shown
    assert code == 2 and "hub_text.plugin" in out and str(overlay) in err


# --------------------------------------------------------------------------- predict / train
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from tests.text.checkpoints import make_bert_classifier

    folder = tmp_path_factory.mktemp("cli") / "tiny-bert"
    make_bert_classifier(folder, num_labels=2, max_positions=32)
    return folder


def test_predict_one_input_gives_one_object(capsys, checkpoint):
    data = run_json(capsys, "predict", "text-classify", "the food was great", "--model", str(checkpoint),
                    "--device", "cpu")
    assert set(data) == {"label", "score"} and data["label"] in ("class_0", "class_1")
    assert 0.0 <= data["score"] <= 1.0


def test_predict_several_inputs_and_top_k(capsys, checkpoint):
    data = run_json(capsys, "predict", "sentiment-analysis", "good tea", "stale coffee", "--model",
                    str(checkpoint), "--device", "cpu", "--batch-size", "1")
    assert isinstance(data, list) and len(data) == 2 and all("label" in r for r in data)
    ranked = run_json(capsys, "predict", "text-classify", "good tea", "--model", str(checkpoint),
                      "--top-k", "all", "--device", "cpu")
    assert sorted(r["label"] for r in ranked) == ["class_0", "class_1"]
    assert sum(r["score"] for r in ranked) == pytest.approx(1.0, abs=1e-5)


def test_predict_reads_stdin(capsys, checkpoint, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("good tea\n\nawful stale coffee\n"))
    data = run_json(capsys, "predict", "text-classify", "-", "--model", str(checkpoint), "--device", "cpu")
    assert isinstance(data, list) and len(data) == 2


def test_predict_errors(capsys, checkpoint, monkeypatch, catalogue_only_task):
    code, _, err = run(capsys, "predict", "text-clasify", "x", "--model", str(checkpoint))
    assert code == 2 and "'text-classify'" in err
    code, _, err = run(capsys, "predict", "text-classify", "x", "--top-k", "0")
    assert code == 2 and "--top-k" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    code, _, err = run(capsys, "predict", "text-classify", "-", "--model", str(checkpoint))
    assert code == 2 and "error: no inputs" in err
    code, _, err = run(capsys, "predict", catalogue_only_task, "clip.mp4")
    assert code == 2 and "no installed plugin provides it" in err
    code, _, err = run(capsys, "predict", "text-classify", "x", "--model", "no-such-model")
    assert code == 2 and err.startswith("error: Unknown model 'no-such-model'")


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_train_saves_and_summarises(capsys, checkpoint, tmp_path):
    rows = [{"text": t, "label": lab} for t, lab in [("great tasty food", "class_1"), ("awful stale tea", "class_0"),
                                                     ("really good value", "class_1"), ("bad price", "class_0")] * 2]
    train = _write_jsonl(tmp_path / "train.jsonl", rows)
    evaluation = _write_jsonl(tmp_path / "eval.jsonl", rows[:4])
    out = tmp_path / "finetuned"
    summary = run_json(capsys, "train", "text-classify", "--train", str(train), "--eval", str(evaluation),
                       "--model", str(checkpoint), "--output", str(out), "--epochs", "1",
                       "--batch-size", "4", "--learning-rate", "1e-3", "--seed", "1", "--max-steps", "2",
                       "--device", "cpu", "--quiet")
    assert summary["output"] == str(out.resolve())
    assert summary["steps"] == 2 and summary["epochs"] == 1 and summary["task"] == "text-classify"
    assert summary["monitored"] == "eval_loss" and isinstance(summary["best_metric"], float)
    assert summary["history"][0]["eval_accuracy"] is not None
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    # the saved folder is a model like any other
    result = run_json(capsys, "predict", "text-classify", "good food", "--model", str(out), "--device", "cpu")
    assert result["label"] in ("class_0", "class_1")


def test_train_reports_data_errors(capsys, checkpoint, tmp_path):
    code, _, err = run(capsys, "train", "text-classify", "--train", str(tmp_path / "missing.jsonl"),
                       "--model", str(checkpoint), "--output", str(tmp_path / "out"), "--device", "cpu")
    assert code == 2 and "missing.jsonl" in err and "does not exist" in err
    assert not (tmp_path / "out").exists()


def test_train_requires_train_file(capsys):
    code, _, err = run(capsys, "train", "text-classify")
    assert code == 2 and "--train" in err


# --------------------------------------------------------------------------- download
def test_download_prints_path_and_commit(capsys, fake_hub):
    commit = fake_hub.add_commit("org/tiny", {"config.json": b"{}", "model.safetensors": b"S",
                                              "big.onnx": b"O"})
    code, out, err = run(capsys, "download", "org/tiny")
    assert code == 0, err
    assert f"commit:   {commit}" in out
    path = Path(next(line for line in out.splitlines() if line.startswith("path:")).split(None, 1)[1])
    assert path.name == commit and sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    data = run_json(capsys, "download", "hf://org/tiny", "--revision", commit, "--json")
    assert data == {"repo_id": "org/tiny", "revision": commit, "commit": commit, "path": str(path)}


def test_download_errors(capsys, fake_hub):
    code, _, err = run(capsys, "download", "org/nothing-here")
    assert code == 2 and err.startswith("error: ") and "org/nothing-here" in err
    code, _, err = run(capsys, "download", "org/name@")
    assert code == 2 and "Malformed" in err


def test_info_of_a_hugging_face_task_no_plugin_provides_says_so(capsys):
    from hub.cli import main

    assert main(["info", "table-question-answering"]) == 2  # (summarization: the text plugin provides it now)
    err = capsys.readouterr().err
    assert "No installed plugin provides 'table-question-answering'" in err and "Did you mean" not in err


def test_info_json_shows_the_pipeline_tag(capsys):
    import json

    from hub.cli import main

    assert main(["info", "text-classify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pipeline_tag"] == "text-classification"
