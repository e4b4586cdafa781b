"""`hub train CONFIG.yaml`: checked before anything loads, trains, resumes, runs under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hub.cli import main
from hub.errors import ConfigError
from hub.train.recipe import load_recipe

ROWS = [{"text": t, "label": lab} for t, lab in [("great tasty food", "good"), ("awful stale tea", "bad"),
                                                 ("really good value", "good"), ("bad price", "bad")] * 4]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    from tests.text.checkpoints import make_bert_classifier

    folder = tmp_path_factory.mktemp("recipe") / "tiny-bert"
    make_bert_classifier(folder, num_labels=2, max_positions=32)
    return folder


def write_config(folder: Path, model: Path | str, **changes) -> Path:
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (folder / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS[:4]))
    config = {"task": "text-classify", "model": str(model), "data": {"train": "train.jsonl", "eval": "val.jsonl"},
              "options": {"max_tokens": 16, "reset_head": True},  # the data's labels replace class_0/class_1
              "training": {"epochs": 2, "batch_size": 4, "learning_rate": 1e-3, "device": "cpu", "progress": False,
                           "seed": 3, "tensorboard": False},
              "output": "model-out"}
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("changes, message", [
    ({"trainig": {}}, "Unknown key in .*'trainig'.*Did you mean 'training'"),
    ({"training": {"epochs": "three"}}, "'epochs' must be a number"),
    ({"training": {"lr": 0.1}}, "Unknown training argument 'lr'"),
    ({"mode": "distill"}, "mode must be one of fine_tune, pretrain"),
    ({"data": {"train": "nope.jsonl"}}, "data.train '.*nope.jsonl' does not exist"),
])
def test_bad_config_fails_before_any_model_loads(tmp_path, changes, message):
    # the model does not exist: reaching it would give a different error
    path = write_config(tmp_path, "no-such-model-anywhere", **changes)
    with pytest.raises(ConfigError, match=message):
        load_recipe(path)


def test_misplaced_training_argument_is_named(capsys, tmp_path, tiny_bert):
    path = write_config(tmp_path, tiny_bert, options={"learning_rate": 0.1})
    code, _, err = cli(capsys, "train", str(path))
    assert code == 2 and "'learning_rate' is a training argument: put it under 'training:'" in err
    assert not (tmp_path / "model-out").exists()


def test_config_trains_saves_and_resumes(capsys, tmp_path, tiny_bert):
    path = write_config(tmp_path, tiny_bert, training={"max_steps": 3, "save_steps": 1})
    code, out, err = cli(capsys, "train", str(path))
    assert code == 0, err
    first = json.loads(out)
    assert first["steps"] == 3 and first["resumed_from"] is None
    assert Path(first["output"]) == (tmp_path / "model-out").resolve()
    assert (tmp_path / "model-out" / "model.safetensors").is_file()
    assert (tmp_path / "model-out-run" / "checkpoints" / "step-00000003").is_dir()
    # flags override the file; --resume continues from step 3 up to the new max_steps
    code, out, err = cli(capsys, "train", str(path), "--max-steps", "5", "--resume", "--quiet")
    assert code == 0, err
    second = json.loads(out)
    assert second["resumed_from"].endswith("step-00000003") and second["steps"] == 5
    predicted = json.loads(cli(capsys, "predict", "text-classify", "good food", "--model",
                               str(tmp_path / "model-out"), "--device", "cpu")[1])
    assert predicted["label"] in ("good", "bad")


def test_same_config_under_torchrun_two_processes(tmp_path, tiny_bert):
    path = write_config(tmp_path, tiny_bert, training={"max_steps": 4})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "hub", "train", str(path)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summaries = [line for line in proc.stdout.splitlines() if line.startswith('  "task"')]
    assert len(summaries) == 1  # rank 0 alone prints and saves
    assert (tmp_path / "model-out" / "model.safetensors").is_file()
    state = json.loads((tmp_path / "model-out-run" / "checkpoints" / "step-00000004" / "trainer_state.json")
                       .read_text())
    assert state["world_size"] == 2 and state["samples_seen"] == 4 * 4 * 2


def test_pretrain_from_scratch_recipe(capsys, tmp_path):
    from hub_text.pretrain import train_tokenizer as train_tok
    from tests.text.test_pretrain import CORPUS, TINY

    train_tok(CORPUS, "bpe", vocab_size=320).save_pretrained(str(tmp_path / "tok"))
    (tmp_path / "corpus.txt").write_text("\n\n".join(CORPUS) + "\n")
    config = {"task": "text-generate", "mode": "pretrain", "from_scratch": TINY, "tokenizer": "tok",
              "data": {"train": "corpus.txt"}, "options": {"block_size": 32, "val_fraction": 0.1},
              "training": {"epochs": 2, "batch_size": 16, "learning_rate": 3e-3, "device": "cpu",
                           "progress": False, "tensorboard": False},
              "output": "tiny-gpt"}
    (tmp_path / "pretrain.yaml").write_text(yaml.safe_dump(config))
    code, out, err = cli(capsys, "train", str(tmp_path / "pretrain.yaml"))
    assert code == 0, err
    summary = json.loads(out)
    losses = [r["eval_loss"] for r in summary["history"]]
    assert summary["mode"] == "pretrain" and len(losses) == 2 and losses[1] < losses[0]
    code, out, err = cli(capsys, "predict", "text-generate", "The quick", "--model", str(tmp_path / "tiny-gpt"),
                         "--device", "cpu")
    assert code == 0 and json.loads(out)["generated_text"].startswith("The quick")


@pytest.mark.parametrize("name", ["reviews-sentiment.yaml", "pretrain-tiny-gpt.yaml"])
def test_example_recipes_are_valid(tmp_path, name):
    (tmp_path / "data.txt").write_text("some text\n")
    path = Path(__file__).resolve().parents[2] / "examples" / "recipes" / name
    recipe = load_recipe(path, {"train": str(tmp_path / "data.txt"), "eval": str(tmp_path / "data.txt")})
    from hub.registry import get_registry
    from hub.specs import load_object
    from hub.train.recipe import check_options

    check_options(recipe, load_object(get_registry().task(recipe.task).spec.pipeline))
    assert recipe.training["batch_size"] == 16
    # shipped recipes write under the user's runs folder, never into the source tree
    source_tree = Path(__file__).resolve().parents[2]
    from hub.train.recipe import runs_root

    assert recipe.output_path == runs_root() / path.stem
    assert source_tree not in recipe.output_path.resolve().parents
    assert recipe.tokenizer is None or source_tree not in Path(recipe.tokenizer).resolve().parents


def test_runs_root_follows_the_environment(tmp_path, monkeypatch):
    from hub.train.recipe import runs_root

    monkeypatch.setenv("HUB_RUNS_DIR", str(tmp_path / "runs"))
    assert runs_root() == tmp_path / "runs"
    monkeypatch.delenv("HUB_RUNS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert runs_root() == tmp_path / "cache" / "hub" / "runs"
