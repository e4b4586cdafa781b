"""Saves never destroy what Hub did not write, and replace a model crash-safely (issue 12, 1-2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import hub
from hub import _fs
from hub.errors import SaveTargetError

REPO = Path(__file__).resolve().parents[1]


def _fake_save(target, payload: str = "weights") -> None:
    """A save as every pipeline does it, without a model: config.json + weights + card."""
    with _fs.atomic_directory(target) as tmp:
        (tmp / "config.json").write_text(json.dumps({"hub_format": 1, "payload": payload}))
        (tmp / "model.safetensors").write_text(payload)
        (tmp / "README.md").write_text("card")


@pytest.fixture(scope="module")
def recommender():
    return hub.load("recommend")


# -- 1. a save never deletes what Hub did not write ---------------------------------------------
def test_pipeline_save_into_a_folder_with_user_files_is_refused_and_keeps_them(tmp_path, recommender):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    with pytest.raises(SaveTargetError, match=r"notes\.txt.*new or empty folder"):
        recommender.save(folder)
    assert (folder / "notes.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temporary folder left either


def test_save_to_the_working_directory_is_refused(tmp_path, monkeypatch, recommender):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    monkeypatch.chdir(tmp_path)
    for target in (".", str(tmp_path), ".."):
        with pytest.raises(SaveTargetError, match="working directory"):
            recommender.save(target)
    assert (tmp_path / ".git" / "HEAD").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".git"]


def test_empty_working_directory_is_still_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SaveTargetError, match="working directory"):
        _fake_save(".")


def test_save_onto_an_existing_file_is_refused(tmp_path, recommender):
    path = tmp_path / "results.txt"
    path.write_text("my results")
    with pytest.raises(SaveTargetError, match="existing file"):
        recommender.save(path)
    assert path.read_text() == "my results"


def test_save_onto_a_symlink_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(SaveTargetError, match="symbolic link"):
        _fake_save(link)
    assert link.is_symlink() and real.is_dir()


def test_saving_twice_replaces_hubs_own_folder(tmp_path, recommender):
    folder = tmp_path / "model"
    recommender.save(folder)
    first = sorted(p.name for p in folder.iterdir())
    assert _fs.MANIFEST_NAME in first
    manifest = json.loads((folder / _fs.MANIFEST_NAME).read_text())
    assert set(manifest["files"]) == set(first) - {_fs.MANIFEST_NAME}
    recommender.save(folder)  # replacing a folder Hub wrote is allowed
    assert sorted(p.name for p in folder.iterdir()) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    again = hub.load("recommend", model=str(folder))
    assert again("1", k=3) == recommender("1", k=3)


def test_a_file_added_to_a_saved_model_protects_the_folder(tmp_path):
    _fake_save(tmp_path / "m")
    (tmp_path / "m" / "eval-notes.md").write_text("mine")
    with pytest.raises(SaveTargetError, match="eval-notes.md"):
        _fake_save(tmp_path / "m")
    assert (tmp_path / "m" / "eval-notes.md").read_text() == "mine"


def test_empty_folder_is_a_valid_target(tmp_path):
    (tmp_path / "empty").mkdir()
    _fake_save(tmp_path / "empty")
    assert (tmp_path / "empty" / "config.json").is_file()


def test_folders_saved_before_manifests_are_recognised_by_their_names(tmp_path):
    legacy = tmp_path / "old"
    legacy.mkdir()
    (legacy / "config.json").write_text(json.dumps({"hub_format": 1}))
    for name in ("model.safetensors", "README.md", "tokenizer.json", "vocab.txt"):
        (legacy / name).write_text("x")
    _fake_save(legacy, "new")
    assert (legacy / "model.safetensors").read_text() == "new"
    assert not (legacy / "vocab.txt").exists()  # the old model's files went with it
    # not Hub's (no hub_format): refused, even with Hub-like names
    foreign = tmp_path / "hf-model"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (foreign / "model.safetensors").write_text("theirs")
    with pytest.raises(SaveTargetError, match="config.json"):
        _fake_save(foreign)
    assert (foreign / "model.safetensors").read_text() == "theirs"


def test_a_failing_save_leaves_the_old_model_and_no_temporary_folder(tmp_path):
    _fake_save(tmp_path / "m", "old")
    with pytest.raises(RuntimeError), _fs.atomic_directory(tmp_path / "m") as tmp:
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("disk full")
    assert (tmp_path / "m" / "model.safetensors").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


# -- 2. crash safety, concurrency, stale leftovers ----------------------------------------------
_WRITER = textwrap.dedent("""
    import json, sys
    from hub import _fs
    target = sys.argv[1]
    i = 0
    while True:
        i += 1
        with _fs.atomic_directory(target) as tmp:
            for k in range(20):
                (tmp / f"shard-{k}.bin").write_bytes(bytes([i % 256]) * 20000)
            (tmp / "config.json").write_text(json.dumps({"hub_format": 1, "n": i}))
        print(i, flush=True)
""")


def _complete(folder: Path) -> bool:
    config = json.loads((folder / "config.json").read_text())
    shards = [(folder / f"shard-{k}.bin").read_bytes() for k in range(20)]
    return all(s == bytes([config["n"] % 256]) * 20000 for s in shards)


def test_a_reader_always_sees_a_complete_model_while_saves_run_and_get_killed(tmp_path):
    target = tmp_path / "m"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for round_ in range(4):
        proc = subprocess.Popen([sys.executable, str(script), str(target)], stdout=subprocess.PIPE,
                                env=env, text=True)
        try:
            assert proc.stdout.readline().strip()  # at least one save done: the target exists now
            seen, deadline = 0, time.monotonic() + 0.5 + 0.2 * round_
            while time.monotonic() < deadline:  # read while the writer keeps replacing the folder
                assert (target / "config.json").is_file(), "the model was missing during a save"
                seen += 1
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        assert seen > 0
        assert _complete(target), f"round {round_}: the model is incomplete after a SIGKILL"
    _fake_save(target)  # the next save cleans up what the killed writers left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "writer.py"]


def test_stale_temporary_folders_are_removed_but_a_live_ones_kept(tmp_path):
    stale = tmp_path / ".m.tmp-dead1234"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"x" * 1000)
    live = tmp_path / ".m.tmp-live5678"
    live.mkdir()
    other = tmp_path / ".other.tmp-abcd"  # another model's: not ours to touch now
    other.mkdir()
    fd = _fs.hold(live)  # as a save in progress holds it
    try:
        _fake_save(tmp_path / "m")
    finally:
        _fs.release(fd)
    assert not stale.exists()
    assert live.is_dir() and other.is_dir()


def test_concurrent_saves_to_one_folder_all_succeed(tmp_path):
    target = tmp_path / "m"
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(4):
                _fake_save(target, f"{n}-{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert (target / "model.safetensors").read_text() in {f"{n}-3" for n in range(4)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_without_atomic_exchange_an_interrupted_swap_is_repaired(tmp_path, monkeypatch):
    _fake_save(tmp_path / "m", "old")
    monkeypatch.setattr(_fs, "_exchange", lambda a, b: False)
    real_rename = os.rename
    calls = []

    def crash_after_first(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # killed between "old aside" and "new in"
            raise KeyboardInterrupt
        return real_rename(src, dst)

    monkeypatch.setattr(_fs.os, "rename", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        _fake_save(tmp_path / "m", "new")
    monkeypatch.setattr(_fs.os, "rename", real_rename)
    assert not (tmp_path / "m").exists()
    _fs.restore_interrupted_save(tmp_path / "m")  # what a load does first
    assert (tmp_path / "m" / "model.safetensors").read_text() == "old"
    _fake_save(tmp_path / "m", "newer")  # and the fallback itself works end to end
    assert (tmp_path / "m" / "model.safetensors").read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_old_style_aside_copies_are_restored(tmp_path):
    """Releases before this one moved the old model to ``.NAME.old-XXXX/x``; a kill there left
    no model at the path. The next save or load puts it back."""
    aside = tmp_path / ".m.old-abc123"
    (aside / "x").mkdir(parents=True)
    (aside / "x" / "config.json").write_text(json.dumps({"hub_format": 1}))
    _fs.restore_interrupted_save(tmp_path / "m")
    assert (tmp_path / "m" / "config.json").is_file()
    assert not aside.exists()


def test_checkpoint_rotation_removes_what_killed_runs_left(tmp_path):
    import torch

    from hub.train import checkpoint

    root = tmp_path / "checkpoints"
    root.mkdir()
    for name in (".tmp-step-00000004-deadbeef", ".trash-step-00000002-cafe0000"):
        (root / name).mkdir()
        (root / name / "model.safetensors").write_bytes(b"x" * 100)
    for step in (1, 2, 3):
        checkpoint.write(tmp_path, step, {"model.safetensors": {"w": torch.zeros(2)}}, {"step": step})
    checkpoint.write(tmp_path, 3, {"model.safetensors": {"w": torch.ones(2)}}, {"step": 3})  # rewritten
    checkpoint.rotate(tmp_path, keep_last=2)
    assert sorted(p.name for p in root.iterdir()) == ["step-00000002", "step-00000003"]
    assert torch.equal(checkpoint.load_weights(root / "step-00000003" / "model.safetensors")["w"],
                       torch.ones(2))


def test_recipe_output_that_would_wipe_user_files_fails_before_training(tmp_path, capsys, monkeypatch):
    from hub.cli import main
    from tests.train.test_recipe import write_config

    (tmp_path / ".git").mkdir()
    config = write_config(tmp_path, "sentiment-minilm", output=".")  # '.': the config's own folder
    monkeypatch.setattr(hub, "load", lambda *a, **k: pytest.fail("the model was loaded before the check"))
    code = main(["train", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "Cannot save a model to" in err and "holds files Hub did not write" in err
    assert (tmp_path / ".git").is_dir() and (tmp_path / "train.jsonl").is_file()
