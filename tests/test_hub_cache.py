"""What works offline (`hub list`'s OFFLINE column), the Hugging Face cache (`hub cache`: list with
sizes, delete by name) and pinning it (`hub freeze` -> a registry overlay). The cache is the test's
own (HF_HOME under tmp_path), filled by `hub download` from a fake Hub on 127.0.0.1 (tests/hf_server.py),
so what huggingface_hub writes is what is listed, pinned and deleted (issue 16)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hub.cli import main

ROOT = Path(__file__).resolve().parent.parent
GPT2 = "openai-community/gpt2"
OTHER = "someone/not-in-the-catalogue"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str):
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return json.loads(out)


def files(size: int, tag: bytes) -> dict[str, bytes]:
    return {"config.json": b'{"model_type": "gpt2", "tag": "' + tag + b'"}', "model.safetensors": tag * size,
            "README.md": b"# card " + tag}


@pytest.fixture
def cached(fake_hub, hf_home, capsys):
    """gpt2 (a catalogue model) and a repo no catalogue names, downloaded by `hub download`."""
    commit = fake_hub.add_commit(GPT2, files(1000, b"a"))
    other = fake_hub.add_commit(OTHER, files(10, b"b"))
    for repo in (GPT2, OTHER):
        code, out, err = run(capsys, "download", repo)
        assert code == 0, err
    return {"gpt2": commit, "other": other, "cache": hf_home / "hub"}


def models_by_name(capsys) -> dict[str, dict]:
    return {m["name"]: m for m in run_json(capsys, "list", "--json")["models"]}


def test_list_marks_shipped_cached_and_missing_models(cached, capsys):
    models = models_by_name(capsys)
    assert models["gpt2"]["offline"] == "cached"
    assert models["sentiment-minilm"]["offline"] == "shipped"
    assert models["distilgpt2"]["offline"] is None  # not downloaded
    assert models["icon-context-resnet"]["offline"] == "shipped"
    tasks = {t["name"]: t for t in run_json(capsys, "list", "--json")["tasks"]}
    assert tasks["text-classify"]["default_offline"] == "shipped"
    code, out, _ = run(capsys, "list", "gpt2")
    row = next(line for line in out.splitlines() if line.split()[:1] == ["gpt2"])
    assert row.split()[:3] == ["gpt2", "text-generate", "cached"]
    assert "OFFLINE: shipped" in out


def test_a_partial_snapshot_or_a_moved_branch_is_not_cached(cached, capsys):
    from hub.cache import cached_commit

    snapshot = cached["cache"] / "models--openai-community--gpt2" / "snapshots" / cached["gpt2"]
    assert cached_commit(GPT2) == cached["gpt2"]
    assert cached_commit(GPT2, cached["gpt2"]) == cached["gpt2"]
    assert cached_commit(GPT2, "v2") is None  # no such ref in the cache
    (snapshot / "model.safetensors").unlink()  # weights missing: a download was interrupted
    assert cached_commit(GPT2) is None
    assert models_by_name(capsys)["gpt2"]["offline"] is None


def test_cache_lists_models_with_sizes_commits_and_catalogue_names(cached, capsys):
    data = run_json(capsys, "cache", "--json")
    assert data["cache_dir"] == str(cached["cache"])
    by_repo = {m["repo_id"]: m for m in data["models"]}
    assert set(by_repo) == {GPT2, OTHER}
    gpt2 = by_repo[GPT2]
    assert gpt2["names"] == ["gpt2"] and by_repo[OTHER]["names"] == []
    assert gpt2["size_on_disk"] == sum(len(v) for v in files(1000, b"a").values())
    assert gpt2["commits"] == {cached["gpt2"]: ["main"]}
    assert data["size_on_disk"] == gpt2["size_on_disk"] + by_repo[OTHER]["size_on_disk"]
    code, out, _ = run(capsys, "cache")
    assert code == 0 and "2 model(s)" in out
    row = next(line for line in out.splitlines() if GPT2 in line)
    assert "gpt2" in row and "1.0 kB" in row and f"{cached['gpt2'][:8]} (main)" in row


def test_delete_needs_yes_and_removes_only_the_named_repo(cached, capsys):
    gpt2_folder = cached["cache"] / "models--openai-community--gpt2"
    code, _, err = run(capsys, "cache", "delete", "gpt2")
    assert code == 2 and "Would delete openai-community/gpt2" in err and "--yes" in err
    assert gpt2_folder.is_dir()  # nothing deleted without --yes
    code, out, err = run(capsys, "cache", "delete", "gpt2", "--yes")
    assert code == 0, err
    assert "Deleted openai-community/gpt2" in out and "1.0 kB freed" in out
    assert not (gpt2_folder / "snapshots").exists()
    assert [m["repo_id"] for m in run_json(capsys, "cache", "--json")["models"]] == [OTHER]
    assert models_by_name(capsys)["gpt2"]["offline"] is None
    code, out, err = run(capsys, "cache", "delete", OTHER, "--yes")  # by repo id
    assert code == 0 and run_json(capsys, "cache", "--json")["models"] == []


def test_delete_refuses_what_hub_did_not_download(cached, capsys, tmp_path):
    code, _, err = run(capsys, "cache", "delete", "sentiment-minilm", "--yes")
    assert code == 2 and "package:hub_text/weights/sentiment-minilm" in err and "never deletes" in err
    code, _, err = run(capsys, "cache", "delete", "distilgpt2", "--yes")  # in the catalogue, not cached
    assert code == 2 and "distilgpt2" in err and f"holds: {GPT2}, {OTHER}." in err
    code, _, err = run(capsys, "cache", "delete", "--yes")
    assert code == 2 and "needs the names" in err
    code, _, err = run(capsys, "cache", "delete", "gpt2", "--revision", "0" * 40, "--yes")
    assert code == 2 and cached["gpt2"] in err
    assert {m["repo_id"] for m in run_json(capsys, "cache", "--json")["models"]} == {GPT2, OTHER}


def test_freeze_pins_cached_models_and_the_overlay_loads_them(cached, fake_hub, capsys, tmp_path, monkeypatch):
    from hub.registry import get_registry, read_registry_file, reset
    from hub.sources import resolve_source

    frozen = tmp_path / "frozen.yaml"
    code, _, err = run(capsys, "freeze", "--output", str(frozen))
    assert code == 0, err
    assert "Pinned 1 model(s)" in err and "distilgpt2" in err  # the others are not cached
    overlay = read_registry_file(frozen)  # the registry's own reader accepts it
    assert list(overlay["models"]) == ["gpt2"]
    catalogue = get_registry().model("gpt2")
    pinned = overlay["models"]["gpt2"]
    assert pinned == {"task": catalogue.task, "source": f"hf://{GPT2}@{cached['gpt2']}",
                      "architecture": catalogue.architecture, "license": catalogue.license,
                      "description": catalogue.description}
    # main moves on upstream; a deployment on the frozen overlay still loads the pinned commit, offline
    fake_hub.add_commit(GPT2, files(1000, b"c"))
    code, _, err = run(capsys, "download", GPT2)
    assert code == 0 and len(run_json(capsys, "cache", "--json")["models"][0]["commits"]) == 2
    monkeypatch.setenv("HUB_REGISTRY", str(frozen))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reset()
    entry = get_registry().model("gpt2")
    assert entry.source == pinned["source"] and entry.origin == str(frozen)
    assert resolve_source(entry.source).metadata["commit"] == cached["gpt2"]
    # stdout and names: only the named model; a model that is not cached is an error
    code, out, err = run(capsys, "freeze", "gpt2")
    assert code == 0 and out.startswith("# Registry overlay written by `hub freeze`") and "gpt2:" in out
    code, _, err = run(capsys, "freeze", "distilgpt2")
    assert code == 2 and "not in the Hugging Face cache" in err and "hub download distilbert/distilgpt2" in err
    code, _, err = run(capsys, "freeze", "sentiment-minilm")
    assert code == 2 and "no commit to pin" in err


def test_catalogue_and_cache_commands_do_not_import_torch(cached):
    script = (
        "import sys\n"
        "from hub.cli import main\n"
        "assert main(['list']) == 0\n"
        "assert 'huggingface_hub' not in sys.modules, 'hub list imported huggingface_hub'\n"
        "assert [main(['cache']), main(['freeze']), main(['list', '--json'])] == [0, 0, 0]\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'safetensors') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert '"offline": "cached"' in proc.stdout and GPT2 in proc.stdout
