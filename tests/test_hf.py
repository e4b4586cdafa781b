"""hub.hf: HF Hub snapshots, offline cache use, and pushing, all without the real Hub.

Downloads and uploads run against ``tests/hf_server.py`` (a fake Hub on 127.0.0.1) or
against a cache folder the test lays out itself, so nothing here needs the internet.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hub import hf
from hub.errors import HubError, ModelLoadError, OfflineModelNotCachedError

SHA_A = "a" * 40
SHA_B = "b" * 40


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")




def make_cached_repo(cache: Path, repo_id: str, commit: str, files: dict[str, bytes],
                     refs: tuple[str, ...] = ("main",)) -> Path:
    """Lay out a repo in the HF cache format and return its snapshot folder.

    models--{org}--{name}/refs/{ref} holds the commit sha (no newline) and
    snapshots/{sha}/ the files. Real caches symlink snapshot files into blobs/; plain
    files are accepted too (that is what Windows without symlinks gets), so we keep it simple.
    """
    storage = cache / ("models--" + repo_id.replace("/", "--"))
    snap = storage / "snapshots" / commit
    for name, data in files.items():
        (snap / name).parent.mkdir(parents=True, exist_ok=True)
        (snap / name).write_bytes(data)
    for ref in refs:
        (storage / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (storage / "refs" / ref).write_text(commit)
    return snap


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("org/name", ("org/name", None)),
        ("hf://org/name", ("org/name", None)),
        ("hf://org/name@main", ("org/name", "main")),
        ("org/name@v1.0", ("org/name", "v1.0")),
        (f"sentence-transformers/all-MiniLM-L6-v2@{SHA_A}", ("sentence-transformers/all-MiniLM-L6-v2", SHA_A)),
        ("hf://org/name@refs/pr/1", ("org/name", "refs/pr/1")),
        ("  hf://Org_1/na.me-2@dev  ", ("Org_1/na.me-2", "dev")),
        ("hf://gpt2", ("gpt2", None)),  # legacy single-name ids only with the explicit prefix
    ],
)
def test_parse_hf_source(source, expected):
    assert hf.parse_hf_source(source) == expected


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("", "empty"),
        ("hf://", "empty"),
        ("gpt2", "expected 'org/name'"),
        ("a/b/c", "expected 'org/name'"),
        ("org/name@", "nothing after '@'"),
        ("org/name@a@b", "more than one '@'"),
        ("org/na me", "Malformed Hugging Face repo id"),
        ("org/-name", "must not start or end"),
        ("org/na--me", "'--'"),
        ("org/name@bad rev", "Malformed revision"),
        ("org/name@../x", "Malformed revision"),
        ("https://huggingface.co/org/name", "only the 'hf://' scheme"),
        ("/org/name", "Malformed"),
    ],
)
def test_parse_hf_source_rejects_malformed(source, fragment):
    with pytest.raises(ValueError, match="Malformed|empty") as info:
        hf.parse_hf_source(source)
    assert fragment in str(info.value)
    assert repr(source) in str(info.value) or source.strip() in str(info.value)


def test_looks_like_repo_id(tmp_path, monkeypatch):
    assert hf.looks_like_repo_id("org/name")
    assert hf.looks_like_repo_id("hf://org/name@v1")
    assert hf.looks_like_repo_id("org/name@main")
    for text in ["gpt2", "", "   ", "a/b/c", "./org/name", "../org/name", "/org/name", "~/models/x",
                 "org\\name", "org/na me", "org/", "/", "org/name@"]:
        assert not hf.looks_like_repo_id(text), text
    # An existing local folder wins over the repo-id reading.
    monkeypatch.chdir(tmp_path)
    assert hf.looks_like_repo_id("org/name")
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert not hf.looks_like_repo_id("org/name")


def test_import_is_cheap():
    code = "import sys, hub.hf; print('torch' in sys.modules, 'huggingface_hub' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --------------------------------------------------------------------------- cache (offline)


def test_snapshot_from_prefilled_cache(hf_home, offline):
    cache = hf_home / "hub"
    snap_dir = make_cached_repo(cache, "org/name", SHA_A,
                                {"config.json": b'{"a": 1}', "model.safetensors": b"W", "sub/x.json": b"{}"})
    snap = hf.snapshot("org/name")
    assert snap == hf.Snapshot(path=snap.path, repo_id="org/name", revision=None, commit=SHA_A)
    assert snap.path.resolve() == snap_dir.resolve()
    assert (snap.path / "config.json").read_bytes() == b'{"a": 1}'

    pinned = hf.snapshot("org/name", revision=SHA_A, allow_patterns=["*.json"])
    assert pinned.commit == SHA_A and pinned.revision == SHA_A
    assert pinned.path.resolve() == snap_dir.resolve()

    # download_model_files finds safetensors in the cache, so no fallback is attempted.
    model = hf.download_model_files("org/name")
    assert model.commit == SHA_A and (model.path / "model.safetensors").exists()


def test_snapshot_honours_hf_hub_cache_and_explicit_cache_dir(tmp_path, hf_home, offline, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    make_cached_repo(elsewhere, "org/name", SHA_B, {"config.json": b"{}"})
    monkeypatch.setenv("HF_HUB_CACHE", str(elsewhere))
    assert hf.default_cache_dir() == elsewhere
    assert hf.snapshot("org/name").commit == SHA_B
    monkeypatch.delenv("HF_HUB_CACHE")
    assert hf.default_cache_dir() == hf_home / "hub"
    assert hf.snapshot("org/name", cache_dir=elsewhere).commit == SHA_B
    with pytest.raises(OfflineModelNotCachedError):
        hf.snapshot("org/name")  # not in HF_HOME/hub


def test_offline_not_cached_error_says_how_to_fix(hf_home, offline):
    with pytest.raises(OfflineModelNotCachedError) as info:
        hf.snapshot("org/missing")
    msg = str(info.value)
    assert "'org/missing'" in msg and "'main'" in msg
    assert "hub download org/missing" in msg
    assert "unset HF_HUB_OFFLINE" in msg
    assert "HF_HOME" in msg and str(hf_home) in msg
    assert info.value.__cause__ is not None  # chained to huggingface_hub's error
    assert isinstance(info.value, ModelLoadError)

    # A cached repo but an uncached revision names that revision.
    make_cached_repo(hf_home / "hub", "org/name", SHA_A, {"config.json": b"{}"})
    with pytest.raises(OfflineModelNotCachedError, match=r"revision 'v2'.*hub download org/name@v2"):
        hf.snapshot("org/name", revision="v2")
    with pytest.raises(OfflineModelNotCachedError, match=SHA_B):
        hf.download_model_files("org/name", revision=SHA_B)


def test_transformers_offline_counts_as_offline(hf_home, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    with pytest.raises(OfflineModelNotCachedError, match="unset TRANSFORMERS_OFFLINE"):
        hf.snapshot("org/missing")


def test_snapshot_rejects_malformed_repo_id(hf_home, offline):
    with pytest.raises(ValueError, match="expected 'org/name'"):
        hf.snapshot("a/b/c")


# --------------------------------------------------------------------------- fake endpoint


def test_snapshot_from_local_endpoint_pins_revisions_and_filters(fake_hub, hf_home, monkeypatch):
    old = fake_hub.add_commit("org/model", {"config.json": b'{"v": 1}', "model.safetensors": b"old-weights",
                                            "README.md": b"# v1"})
    new = fake_hub.add_commit("org/model", {"config.json": b'{"v": 2}', "model.safetensors": b"new-weights",
                                            "tokenizer.json": b'{"tok": true}', "vocab.txt": b"[PAD]\nhello\n",
                                            "1_Pooling/config.json": b'{"pool": "mean"}',
                                            "pytorch_model.bin": b"PICKLE", "big.onnx": b"ONNX" * 100,
                                            "README.md": b"# v2"})
    fake_hub.repos["org/model"].refs["v1"] = old

    snap = hf.snapshot("org/model", allow_patterns=hf.MODEL_FILE_PATTERNS)
    assert snap.commit == new and snap.revision is None
    assert snap.path == hf_home / "hub" / "models--org--model" / "snapshots" / new
    expected = {k: v for k, v in fake_hub.files_at("org/model", new).items()
                if k not in ("pytorch_model.bin", "big.onnx")}
    assert folder_files(snap.path) == expected
    assert (hf_home / "hub" / "models--org--model" / "refs" / "main").read_text() == new

    # Files outside allow_patterns are never requested, not even with HEAD.
    requested = fake_hub.paths_requested()
    assert not [p for p in requested if p.endswith(("pytorch_model.bin", "big.onnx"))], requested
    assert f"/org/model/resolve/{new}/model.safetensors" in fake_hub.paths_requested("GET")

    # Pinning an old commit (sha or tag) gets the old content.
    pinned = hf.snapshot("org/model", revision=old, allow_patterns=hf.MODEL_FILE_PATTERNS)
    assert pinned.commit == old and pinned.revision == old
    assert folder_files(pinned.path) == fake_hub.files_at("org/model", old)
    tagged = hf.snapshot("org/model", revision="v1", allow_patterns=["config.json"])
    assert tagged.commit == old and tagged.revision == "v1"
    assert (tagged.path / "config.json").read_bytes() == b'{"v": 1}'

    # A new commit on main is picked up while online.
    newest = fake_hub.add_commit("org/model", {"config.json": b'{"v": 3}'}, keep=True)
    assert hf.snapshot("org/model", allow_patterns=["config.json"]).commit == newest

    # Offline: the same files come from the cache without a single request.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(fake_hub.requests)
    again = hf.snapshot("org/model", revision=new, allow_patterns=hf.MODEL_FILE_PATTERNS)
    assert again == hf.Snapshot(snap.path, "org/model", new, new)
    assert folder_files(again.path) == expected
    assert hf.snapshot("org/model", allow_patterns=["config.json"]).commit == newest  # refs/main
    assert hf.snapshot("org/model", revision="v1", allow_patterns=["config.json"]).commit == old
    assert len(fake_hub.requests) == before


def test_offline_partial_cache_is_reported(fake_hub, hf_home, monkeypatch):
    fake_hub.add_commit("org/model", {"config.json": b"{}", "model.safetensors": b"S"})
    hf.snapshot("org/model", allow_patterns=["config.json"])  # caches the file listing too
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert (hf.snapshot("org/model", allow_patterns=["config.json"]).path / "config.json").exists()
    with pytest.raises(OfflineModelNotCachedError, match="only partly in the local Hugging Face cache"):
        hf.download_model_files("org/model")


def test_download_model_files_prefers_safetensors(fake_hub, hf_home):
    fake_hub.add_commit("org/both", {"config.json": b"{}", "model.safetensors": b"S",
                                     "pytorch_model.bin": b"P", "big.onnx": b"O"})
    snap = hf.download_model_files("org/both")
    assert sorted(folder_files(snap.path)) == ["config.json", "model.safetensors"]
    assert not [p for p in fake_hub.paths_requested() if p.endswith((".bin", ".onnx"))]


def test_download_model_files_falls_back_to_pytorch_bin(fake_hub, hf_home, monkeypatch):
    sha = fake_hub.add_commit("org/legacy", {"config.json": b'{"legacy": true}', "vocab.txt": b"a\nb\n",
                                             "pytorch_model.bin": b"PICKLE-WEIGHTS", "big.onnx": b"O",
                                             "tf_model.h5": b"H5"})
    snap = hf.download_model_files("org/legacy", revision="main")
    assert snap.commit == sha and snap.revision == "main"
    assert folder_files(snap.path) == {"config.json": b'{"legacy": true}', "vocab.txt": b"a\nb\n",
                                       "pytorch_model.bin": b"PICKLE-WEIGHTS"}
    assert not [p for p in fake_hub.paths_requested() if p.endswith((".onnx", ".h5"))]

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(fake_hub.requests)
    assert hf.download_model_files("org/legacy") == hf.Snapshot(snap.path, "org/legacy", None, sha)
    assert len(fake_hub.requests) == before


def test_online_errors_name_repo_and_revision(fake_hub, hf_home):
    fake_hub.add_commit("org/model", {"config.json": b"{}"})
    with pytest.raises(ModelLoadError, match=r"'org/nope' was not found on http://127\.0\.0\.1") as info:
        hf.snapshot("org/nope")
    assert not isinstance(info.value, OfflineModelNotCachedError)
    assert info.value.__cause__ is not None

    with pytest.raises(ModelLoadError, match=r"Revision 'no-such-branch' was not found in repository 'org/model'"):
        hf.snapshot("org/model", revision="no-such-branch")
    with pytest.raises(ModelLoadError, match=f"Revision '{SHA_B}'"):
        hf.snapshot("org/model", revision=SHA_B)

    fake_hub.add_commit("org/gated", {"config.json": b"{}"})
    fake_hub.repos["org/gated"].gated = True
    with pytest.raises(ModelLoadError, match=r"'org/gated'.*is gated.*HF_TOKEN"):
        hf.snapshot("org/gated")


def test_unreachable_endpoint_suggests_offline_mode(hf_home, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    url = closed_port_url()
    monkeypatch.setenv("HF_ENDPOINT", url)
    with pytest.raises(ModelLoadError) as info:
        hf.snapshot("org/name", allow_patterns=["config.json"])
    msg = str(info.value)
    assert not isinstance(info.value, OfflineModelNotCachedError)
    assert url in msg and "'org/name'" in msg and "HF_HUB_OFFLINE=1" in msg
    assert info.value.__cause__ is not None

    # ... while a cached model is still served when the endpoint is down.
    make_cached_repo(hf_home / "hub", "org/name", SHA_A, {"config.json": b"{}"})
    assert hf.snapshot("org/name", allow_patterns=["config.json"]).commit == SHA_A


# --------------------------------------------------------------------------- push


def make_model_folder(path: Path, **extra: bytes) -> Path:
    files = {"config.json": b'{"model_type": "bert"}', "model.safetensors": b"\x08\x00safetensors-bytes",
             "README.md": b"---\nlicense: apache-2.0\n---\n# My model\n", **extra}
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def test_push_folder_uploads_one_commit_to_local_endpoint(fake_hub, tmp_path):
    folder = make_model_folder(tmp_path / "model", **{"tokenizer/vocab.txt": b"a\nb\n",
                                                      ".git/HEAD": b"ref", ".cache/huggingface/x": b"x"})
    url = hf.push_folder(folder, "me/new-model", token="hf_fake", commit_message="first upload")
    repo = fake_hub.repos["me/new-model"]
    head = repo.refs["main"]
    assert url == f"{fake_hub.url}/me/new-model/commit/{head}"
    assert fake_hub.files_at("me/new-model") == {
        "config.json": b'{"model_type": "bert"}',
        "model.safetensors": b"\x08\x00safetensors-bytes",
        "README.md": b"---\nlicense: apache-2.0\n---\n# My model\n",
        "tokenizer/vocab.txt": b"a\nb\n",
    }
    assert len(fake_hub.commit_payloads) == 1
    assert fake_hub.commit_payloads[0][0] == {"key": "header", "value": {"summary": "first upload",
                                                                          "description": ""}}
    posts = fake_hub.paths_requested("POST")
    assert posts[0] == "/api/repos/create" and posts[-1] == "/api/models/me/new-model/commit/main"

    # Pushing again (repo exists -> exist_ok) adds a second commit on top.
    (folder / "config.json").write_bytes(b'{"model_type": "bert", "v": 2}')
    url2 = hf.push_folder(folder, "me/new-model", token="hf_fake")
    assert url2.endswith(repo.refs["main"]) and repo.refs["main"] != head
    assert fake_hub.files_at("me/new-model")["config.json"] == b'{"model_type": "bert", "v": 2}'
    assert fake_hub.commit_payloads[1][0]["value"]["summary"] == "Upload model with Hub"

    # The pushed model downloads back byte for byte.
    snap = hf.download_model_files("me/new-model")
    assert snap.commit == repo.refs["main"]
    assert folder_files(snap.path) == fake_hub.files_at("me/new-model")


def test_push_folder_token_explicit_or_from_current_hf_home(fake_hub, hf_home, tmp_path):
    folder = make_model_folder(tmp_path / "model")
    hf.push_folder(folder, "me/tok", token="hf_explicit")
    assert set(fake_hub.authorizations) == {"Bearer hf_explicit"}
    # HF_HOME changed after huggingface_hub was imported: its token file is still found.
    hf_home.mkdir(parents=True, exist_ok=True)
    (hf_home / "token").write_text("hf_from_file\n")
    fake_hub.authorizations.clear()
    hf.push_folder(folder, "me/tok", commit_message="again")
    assert set(fake_hub.authorizations) == {"Bearer hf_from_file"}


def test_push_folder_without_create_repo_to_missing_repo(fake_hub, tmp_path):
    folder = make_model_folder(tmp_path / "model")
    with pytest.raises(HubError, match=r"'me/absent'.*not found.*HF_TOKEN") as info:
        hf.push_folder(folder, "me/absent", token="hf_fake", create_repo=False)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize(
    ("extra", "remove", "fragment"),
    [
        ({"pytorch_model.bin": b"P"}, (), "pytorch_model.bin"),
        ({"sub/weights.pt": b"P"}, (), "sub/weights.pt"),
        ({"optimizer.pkl": b"P"}, (), "optimizer.pkl"),
        ({}, ("model.safetensors",), "no *.safetensors"),
        ({}, ("config.json",), "config.json is missing"),
    ],
)
def test_push_folder_refuses_unsafe_or_incomplete_folders(fake_hub, tmp_path, extra, remove, fragment):
    folder = make_model_folder(tmp_path / "model", **extra)
    for name in remove:
        (folder / name).unlink()
    with pytest.raises(ModelLoadError, match="Refusing to push") as info:
        hf.push_folder(folder, "me/model", token="hf_fake")
    assert fragment in str(info.value)
    assert fake_hub.requests == []  # refused before any network call


def test_push_folder_refuses_missing_folder_and_offline(tmp_path, monkeypatch):
    with pytest.raises(ModelLoadError, match="not a folder"):
        hf.push_folder(tmp_path / "nope", "me/model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="offline mode is on"):
        hf.push_folder(make_model_folder(tmp_path / "model"), "me/model")
