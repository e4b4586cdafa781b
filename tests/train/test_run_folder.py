"""Run folders sized like the model (optimizer states only when resuming is asked for), uniform
file modes that follow the umask, and the model card of a fine-tuned model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import hub
from hub.errors import ConfigError
from tests.text.checkpoints import make_bert_classifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROWS = [{"text": t, "label": l} for t, l in [("the best tea", "great"), ("stale and dull", "other"),
                                             ("my dog loves them", "great"), ("arrived broken", "other"),
                                             ("perfect, will buy again", "great"), ("too sweet", "other"),
                                             ("excellent value", "great"), ("the worst coffee", "other")]]
TRAIN = {"progress": False, "device": "cpu", "batch_size": 4, "epochs": 3, "labels": ["great", "other"]}


@pytest.fixture
def classifier(tmp_path):
    make_bert_classifier(tmp_path / "base", num_labels=2, max_positions=16)
    return lambda: hub.load("text-classify", model=str(tmp_path / "base"), device="cpu")


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_a_default_fine_tune_writes_no_optimizer_state(classifier, tmp_path):
    run = tmp_path / "run"
    classifier().fine_tune(ROWS, eval=ROWS[:4], output_dir=str(run), **TRAIN)
    written = files(run)
    assert not [f for f in written if f.endswith(("optimizer.pt", "scheduler.pt"))], written
    checkpoints = sorted((run / "checkpoints").iterdir())
    assert checkpoints and {p.name for p in checkpoints[-1].iterdir()} == {"model.safetensors", "rng.pt",
                                                                          "trainer_state.json"}
    assert json.loads((checkpoints[-1] / "trainer_state.json").read_text())["has_optimizer"] is False
    # the folder holds the kept checkpoints' weights and the best model, and little else
    weights = (run / "best" / "model.safetensors").stat().st_size
    copies = len(checkpoints) + 1
    assert size(run) < copies * weights + 2_000_000

    again = tmp_path / "again"
    classifier().fine_tune(ROWS, eval=ROWS[:4], output_dir=str(again), save_optimizer=True, **TRAIN)
    kept = sorted((again / "checkpoints").iterdir())  # the last two and the best, as without optimizer states
    for checkpoint in kept:  # AdamW's two moments per weight: twice the weights, per checkpoint
        assert (checkpoint / "optimizer.pt").stat().st_size > 1.9 * weights
    assert size(again) > size(run) + 1.9 * len(kept) * weights


def test_resuming_a_checkpoint_without_optimizer_state_says_how_to_get_one(classifier, tmp_path):
    run = tmp_path / "run"
    classifier().fine_tune(ROWS, output_dir=str(run), **{**TRAIN, "epochs": 1})
    with pytest.raises(ConfigError, match=r"not the optimizer and scheduler states.*save_steps=N or save_optimizer"):
        classifier().fine_tune(ROWS, output_dir=str(run), resume_from_checkpoint=True, **{**TRAIN, "epochs": 2})


def test_save_steps_asks_for_resumable_checkpoints(classifier, tmp_path):
    run = tmp_path / "run"
    classifier().fine_tune(ROWS, output_dir=str(run), save_steps=2, **{**TRAIN, "epochs": 1})
    latest = sorted((run / "checkpoints").iterdir())[-1]
    assert {"optimizer.pt", "scheduler.pt"} <= {p.name for p in latest.iterdir()}
    result = classifier().fine_tune(ROWS, output_dir=str(run), resume_from_checkpoint=True, save_steps=2,
                                    **{**TRAIN, "epochs": 2})
    assert result.resumed_from == str(latest) and result.steps == 4


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_saved_and_run_files_have_uniform_modes_that_follow_the_umask(classifier, tmp_path, umask):
    previous = os.umask(umask)
    try:
        pipe = classifier()
        pipe.fine_tune(ROWS, eval=ROWS[:4], output_dir=str(tmp_path / "run"), save_optimizer=True,
                       **{**TRAIN, "epochs": 1})
        pipe.save(tmp_path / "model")
    finally:
        os.umask(previous)
    for folder in (tmp_path / "run", tmp_path / "model"):
        modes = {p.relative_to(folder).as_posix(): p.stat().st_mode & 0o777 for p in [folder, *folder.rglob("*")]}
        want = {name: (0o777 if (folder / name).is_dir() else 0o666) & ~umask for name in modes}
        assert modes == want


def test_a_fine_tuned_model_card_names_base_data_arguments_and_figures(classifier, tmp_path):
    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    pipe = classifier()
    torch.manual_seed(0)
    result = pipe.fine_tune(str(data), eval=ROWS[:4], learning_rate=3e-4, **TRAIN)
    card = (pipe.save(tmp_path / "model") / "README.md").read_text()
    best = next(r for r in result.history if r["step"] == result.best_step)
    assert f"Fine-tuned from `{tmp_path / 'base'}` on `reviews.jsonl`." in card
    assert "- Evaluation data: a list of 4 examples" in card and "- training examples: 8" in card
    assert "- learning_rate: 0.0003" in card and "- epochs: 3" in card and "- batch_size: 4" in card
    accuracy = float(f"{best['eval_accuracy']:.4g}")
    assert f"| eval_accuracy | {accuracy} |" in card
    assert card.count("\n| 1 | 2 |") == 1 and "| 3 | 6 |" in card  # one row per evaluation (epoch, step)
    assert "output_dir" not in card  # local paths of the run stay out of the card
    figures = pipe.evaluate(ROWS)
    card = (pipe.save(tmp_path / "model") / "README.md").read_text()
    assert "## Evaluation with `evaluate()` on a list of 8 examples" in card
    accuracy = float(f"{figures['accuracy']:.4g}")
    assert f"| accuracy | {accuracy} |" in card
