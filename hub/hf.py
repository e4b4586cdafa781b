"""Hugging Face Hub access: download model snapshots into the HF cache and push folders.

Everything goes through ``huggingface_hub`` (imported lazily so ``import hub.hf`` stays
cheap), and every failure a user can cause is turned into a :mod:`hub.errors` exception
that names the repository, the revision and the fix.

Why this module reads ``os.environ`` itself: ``huggingface_hub`` copies ``HF_HOME``,
``HF_HUB_CACHE``, ``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` into ``huggingface_hub.constants``
once, at import time. A process (or a test with ``monkeypatch.setenv``) that changes
them later would silently keep using the old values. So at every call we derive the
cache folder, the endpoint and the offline flag from the *current* environment and pass
them explicitly (see :func:`_hf_call_settings`).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.errors import HubError, ModelLoadError, OfflineModelNotCachedError

__all__ = [
    "MODEL_FILE_PATTERNS",
    "PYTORCH_FALLBACK_PATTERNS",
    "Snapshot",
    "default_cache_dir",
    "download_model_files",
    "is_offline",
    "looks_like_repo_id",
    "parse_hf_source",
    "push_folder",
    "snapshot",
]

DEFAULT_ENDPOINT = "https://huggingface.co"

#: What a model folder needs: configs, tokenizer files, safetensors weights and the card.
#: ``*.json`` already covers config.json, tokenizer.json, tokenizer_config.json,
#: special_tokens_map.json, vocab.json and model.safetensors.index.json; they are listed
#: anyway so the intent is readable. Note that fnmatch's ``*`` also matches ``/``.
MODEL_FILE_PATTERNS: list[str] = [
    "config.json",
    "*.json",
    "model.safetensors.index.json",
    "tokenizer*",
    "vocab.txt",
    "merges.txt",
    "*.model",  # sentencepiece (spiece.model, tokenizer.model, sentencepiece.bpe.model)
    "1_Pooling/*",  # sentence-transformers pooling config
    "*.safetensors",
    "README.md",
]

#: Fetched only when a repository has no ``*.safetensors`` at all (old checkpoints).
PYTORCH_FALLBACK_PATTERNS: list[str] = ["pytorch_model.bin", "pytorch_model*.bin"]

#: Weight formats that execute code when loaded (pickle); never uploaded by push_folder.
PICKLE_SUFFIXES: tuple[str, ...] = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
# One repo-id segment, following the Hub's rules (huggingface_hub.utils.validate_repo_id):
# letters, digits, '-', '_', '.'; not starting/ending with '-' or '.'; at most 96 chars.
_SEGMENT_RE = re.compile(r"^(?![.-])[A-Za-z0-9_.-]{1,96}(?<![.-])$")
_REVISION_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_./+-]*$")


@dataclass(frozen=True)
class Snapshot:
    """A downloaded (or cached) repository snapshot."""

    path: Path  # local folder with the files (the snapshot folder in the HF cache)
    repo_id: str
    revision: str | None  # what the user asked for (branch, tag, commit or None = "main")
    commit: str  # the resolved 40-hex commit sha (the snapshot folder's name)


# --------------------------------------------------------------------------- parsing


def _check_repo_id(repo_id: str, *, source: str | None = None, allow_single: bool = False) -> str:
    """Return ``repo_id`` if valid, else raise ValueError saying what shape is expected."""
    shown = source if source is not None else repo_id
    if not isinstance(repo_id, str):
        raise ValueError(f"Hugging Face repo id must be a string like 'org/name', got {type(repo_id).__name__}.")
    parts = repo_id.split("/")
    if not (len(parts) == 2 or (allow_single and len(parts) == 1)):
        raise ValueError(
            f"Malformed Hugging Face source {shown!r}: expected 'org/name', 'org/name@revision' "
            "or 'hf://org/name@revision'."
        )
    for part in parts:
        if not _SEGMENT_RE.match(part) or "--" in part or ".." in part:
            raise ValueError(
                f"Malformed Hugging Face repo id {repo_id!r} in {shown!r}: each part of 'org/name' must be "
                "1-96 letters, digits, '-', '_' or '.', must not start or end with '-' or '.', "
                "and must not contain '--' or '..'."
            )
    return repo_id


def _check_revision(revision: str, *, source: str) -> str:
    if not _REVISION_RE.match(revision) or ".." in revision or revision.endswith("/"):
        raise ValueError(
            f"Malformed revision {revision!r} in {source!r}: expected a branch, tag or commit sha "
            "(letters, digits, '-', '_', '.', '/'), e.g. 'org/name@main' or 'org/name@v1.0'."
        )
    return revision


def parse_hf_source(source: str) -> tuple[str, str | None]:
    """'hf://org/name@rev' or 'org/name@rev' or 'org/name' -> (repo_id, revision or None).

    A bare single name ('gpt2') is accepted only with the explicit ``hf://`` prefix,
    because without it it is indistinguishable from a catalogue or folder name.
    Raises ValueError with a clear message on malformed input.
    """
    if not isinstance(source, str):
        raise ValueError(f"Hugging Face source must be a string, got {type(source).__name__}.")
    text = source.strip()
    prefixed = text.startswith("hf://")
    if prefixed:
        text = text[len("hf://"):]
    elif "://" in text:
        raise ValueError(f"Malformed Hugging Face source {source!r}: only the 'hf://' scheme is supported.")
    if not text:
        raise ValueError(f"Malformed Hugging Face source {source!r}: the repo id is empty; expected 'org/name'.")
    repo_id, at, revision = text.partition("@")
    if at and not revision:
        raise ValueError(
            f"Malformed Hugging Face source {source!r}: nothing after '@'; expected 'org/name@revision' "
            "or drop the '@' to use the default branch."
        )
    if "@" in revision:
        raise ValueError(f"Malformed Hugging Face source {source!r}: more than one '@'.")
    _check_repo_id(repo_id, source=source, allow_single=prefixed)
    if revision:
        _check_revision(revision, source=source)
    return repo_id, (revision or None)


def looks_like_repo_id(text: str) -> bool:
    """True for 'org/name' style strings that are not existing local paths.

    Used to decide whether a user-given model argument should go to the Hub. Accepts an
    optional ``hf://`` prefix and ``@revision`` suffix; rejects anything that looks like a
    filesystem path (leading '/', './', '~', backslashes) or exists on disk.
    """
    if not isinstance(text, str) or not text.strip():
        return False
    text = text.strip()
    if text.startswith(("/", "./", "../", "~", ".")) or "\\" in text:
        return False
    try:
        if Path(text).exists():
            return False
    except OSError:  # e.g. name too long
        return False
    try:
        repo_id, _ = parse_hf_source(text)
    except ValueError:
        return False
    return "/" in repo_id


# --------------------------------------------------------------------------- environment


def _env_true(name: str) -> bool:
    return (os.environ.get(name) or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def is_offline() -> bool:
    """Offline mode as the *current* environment says (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE)."""
    return _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")


def _hf_home() -> Path:
    home = os.environ.get("HF_HOME")
    if not home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(xdg, "huggingface")
    return Path(os.path.expandvars(os.path.expanduser(home)))


def default_cache_dir() -> Path:
    """The HF hub cache folder per the current environment: HF_HUB_CACHE, else HF_HOME/hub.

    Same precedence as huggingface_hub.constants, but evaluated now rather than at import.
    """
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if cache:
        return Path(os.path.expandvars(os.path.expanduser(cache)))
    return _hf_home() / "hub"


def _endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _token(token: str | None) -> str | None:
    """The token to send: explicit, else the token file under the *current* HF_HOME.

    huggingface_hub reads HF_TOKEN from os.environ at call time by itself (so we return
    None then), but the token *file* path is fixed at import time from HF_HOME.
    """
    if token is not None:
        return token
    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return None
    if _env_true("HF_HUB_DISABLE_IMPLICIT_TOKEN"):
        return None
    path = Path(os.environ.get("HF_TOKEN_PATH") or _hf_home() / "token").expanduser()
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


@contextlib.contextmanager
def _hf_offline_flag(offline: bool) -> Iterator[None]:
    """Make huggingface_hub's import-time offline flag agree with the current environment.

    In huggingface_hub 2.x every HTTP request goes through an event hook that raises
    OfflineModeIsEnabled when ``constants.HF_HUB_OFFLINE`` (read once at import) is true,
    and file metadata look-ups consult ``constants.is_offline_mode()``. We always also pass
    ``local_files_only=offline`` (which alone guarantees no network when offline); syncing
    the constant for the duration of the call covers the reverse case (HF_HUB_OFFLINE set
    at import, unset since). Not meant for concurrent calls with differing settings.
    """
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = offline
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


# --------------------------------------------------------------------------- error mapping


def _describe(repo_id: str, revision: str | None) -> str:
    return f"{repo_id!r} (revision {revision or 'main'!r})"


def _is_network_error(exc: BaseException) -> bool:
    """Connection/timeout/proxy errors of whatever HTTP stack huggingface_hub uses."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    roots = {"httpx", "httpx2", "httpcore", "requests", "urllib3"}
    return any(cls.__module__.split(".")[0] in roots for cls in type(exc).__mro__)


def _offline_error(repo_id: str, revision: str | None, cache: Path, *, partial: bool = False) -> ModelLoadError:
    ref = repo_id + (f"@{revision}" if revision else "")
    state = "is only partly in" if partial else "is not in"
    flag = "HF_HUB_OFFLINE" if _env_true("HF_HUB_OFFLINE") or not _env_true("TRANSFORMERS_OFFLINE") else (
        "TRANSFORMERS_OFFLINE")
    return OfflineModelNotCachedError(
        f"Model {_describe(repo_id, revision)} {state} the local Hugging Face cache ({cache}) and offline "
        f"mode is on ({flag}=1). Fix: run `hub download {ref}` while online, or unset {flag}. "
        f"The cache lives in $HF_HOME/hub (HF_HOME={_hf_home()}) unless HF_HUB_CACHE is set; point "
        "them at the folder that holds your downloaded models."
    )


def _network_error(repo_id: str, revision: str | None, endpoint: str, exc: BaseException) -> ModelLoadError:
    return ModelLoadError(
        f"Could not download {_describe(repo_id, revision)} from {endpoint} and it is not (fully) in the "
        f"local cache: {type(exc).__name__}: {exc}. Check your network connection and HF_ENDPOINT; "
        "if the model is already cached, set HF_HUB_OFFLINE=1 to use the cached copy."
    )


def _translate_download_error(
    exc: BaseException, *, repo_id: str, revision: str | None, offline: bool, endpoint: str, cache: Path
) -> HubError | None:
    """Map a huggingface_hub exception to a Hub error; None means 'not ours, re-raise'."""
    from huggingface_hub import errors as hf_errors

    gated = getattr(hf_errors, "GatedRepoError", ())
    repo_missing = getattr(hf_errors, "RepositoryNotFoundError", ())
    rev_missing = getattr(hf_errors, "RevisionNotFoundError", ())
    entry_missing = getattr(hf_errors, "EntryNotFoundError", ())
    local_missing = getattr(hf_errors, "LocalEntryNotFoundError", ())
    incomplete = getattr(hf_errors, "IncompleteSnapshotError", ())
    offline_enabled = getattr(hf_errors, "OfflineModeIsEnabled", ())
    http_error = getattr(hf_errors, "HfHubHTTPError", ())

    if isinstance(exc, incomplete) and offline:
        return _offline_error(repo_id, revision, cache, partial=True)
    if isinstance(exc, local_missing) or isinstance(exc, offline_enabled):
        if offline or isinstance(exc, offline_enabled):
            return _offline_error(repo_id, revision, cache)
        return _network_error(repo_id, revision, endpoint, exc.__cause__ or exc)
    if isinstance(exc, gated):
        return ModelLoadError(
            f"Model {repo_id!r} on {endpoint} is gated: accept its conditions at {endpoint}/{repo_id} and "
            "authenticate (set HF_TOKEN, or `hf auth login`)."
        )
    if isinstance(exc, repo_missing):
        return ModelLoadError(
            f"Repository {repo_id!r} was not found on {endpoint}. Check the spelling ('org/name'); if it is "
            "private, set HF_TOKEN to a token with read access."
        )
    if isinstance(exc, rev_missing):
        return ModelLoadError(
            f"Revision {revision!r} was not found in repository {repo_id!r} on {endpoint}. Use an existing "
            "branch, tag or full 40-character commit sha."
        )
    if isinstance(exc, entry_missing):
        return ModelLoadError(f"A file of {_describe(repo_id, revision)} is missing on {endpoint}: {exc}")
    if isinstance(exc, http_error):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        return ModelLoadError(
            f"The Hugging Face Hub at {endpoint} answered HTTP {status} for {_describe(repo_id, revision)}: "
            f"{exc}. If the model is already cached, set HF_HUB_OFFLINE=1 to use the cached copy."
        )
    if _is_network_error(exc):
        return _network_error(repo_id, revision, endpoint, exc)
    return None


# --------------------------------------------------------------------------- download


def snapshot(
    repo_id: str,
    *,
    revision: str | None = None,
    allow_patterns: list[str] | None = None,
    cache_dir: str | Path | None = None,
) -> Snapshot:
    """Download (or find in the cache) just the files matching ``allow_patterns``.

    Uses ``huggingface_hub.snapshot_download`` with the HF cache layout, so files are
    shared with transformers & co. Honours HF_HOME / HF_HUB_CACHE, HF_HUB_OFFLINE and
    HF_ENDPOINT as they are *now* (see module docstring). Returns the resolved commit.
    """
    from huggingface_hub import snapshot_download

    _check_repo_id(repo_id, allow_single=True)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    offline = is_offline()
    endpoint = _endpoint()
    try:
        with _hf_offline_flag(offline):
            folder = snapshot_download(
                repo_id,
                repo_type="model",
                revision=revision,
                allow_patterns=allow_patterns,
                cache_dir=str(cache),
                endpoint=endpoint,
                token=_token(None),
                local_files_only=offline,
            )
    except Exception as exc:
        err = _translate_download_error(
            exc, repo_id=repo_id, revision=revision, offline=offline, endpoint=endpoint, cache=cache
        )
        if err is None:
            raise
        raise err from exc
    path = Path(folder)
    commit = path.name
    if not _COMMIT_RE.match(commit):  # never expected with cache_dir layout; be explicit if it happens
        raise ModelLoadError(f"Unexpected snapshot folder {path} for {_describe(repo_id, revision)}.")
    return Snapshot(path=path, repo_id=repo_id, revision=revision, commit=commit)


def _has_safetensors(folder: Path) -> bool:
    return any(p.is_file() for p in folder.rglob("*.safetensors"))


def download_model_files(
    repo_id: str, *, revision: str | None = None, cache_dir: str | Path | None = None
) -> Snapshot:
    """Snapshot of what a model needs (configs, tokenizer, safetensors, card).

    Only if the snapshot then holds no ``*.safetensors`` is ``pytorch_model.bin`` fetched
    too, so repos shipping both formats never cost a download of the pickle copy. The
    fallback is pinned to the commit the first call resolved, so both halves come from
    the same commit even if the branch moves in between.
    """
    first = snapshot(repo_id, revision=revision, allow_patterns=MODEL_FILE_PATTERNS, cache_dir=cache_dir)
    if _has_safetensors(first.path):
        return first
    second = snapshot(repo_id, revision=first.commit, allow_patterns=PYTORCH_FALLBACK_PATTERNS, cache_dir=cache_dir)
    return Snapshot(path=second.path, repo_id=repo_id, revision=revision, commit=second.commit)


# --------------------------------------------------------------------------- upload


def _upload_files(folder: Path) -> list[str]:
    """Relative POSIX paths to upload; hidden entries (.git, .cache, ...) are skipped."""
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) and rel.as_posix() != ".gitattributes":
            continue
        if path.is_file():
            files.append(rel.as_posix())
    return files


def _check_push_folder(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise ModelLoadError(f"Cannot push {folder}: it is not a folder.")
    files = _upload_files(folder)
    pickles = [f for f in files if f.lower().endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise ModelLoadError(
            f"Refusing to push {folder}: it contains pickle-based weight files ({', '.join(pickles)}). "
            "Hub only publishes safetensors weights; convert them (e.g. save the model with Hub) "
            "and remove the pickle files."
        )
    if "config.json" not in files:
        raise ModelLoadError(f"Refusing to push {folder}: config.json is missing, so nobody could load the model.")
    if not any(f.endswith(".safetensors") for f in files):
        raise ModelLoadError(f"Refusing to push {folder}: it holds no *.safetensors weights file.")
    return files


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload model with Hub",
    revision: str | None = None,
    create_repo: bool = True,
) -> str:
    """Create the repo (exist_ok) and upload the folder's files as one commit; return the commit URL.

    Uses ``HfApi.create_commit`` with one ``CommitOperationAdd`` per file rather than
    ``upload_folder``: with hf_xet installed, huggingface_hub 2.x turns ``upload_folder``
    into a multi-commit pipeline, and we want a single atomic commit. Large files still
    go through LFS/Xet when the Hub asks for it (preupload step of create_commit).
    Refuses folders without config.json or safetensors weights, or with pickle weights.
    """
    folder = Path(folder).expanduser()
    _check_repo_id(repo_id)
    files = _check_push_folder(folder)
    endpoint = _endpoint()
    if is_offline():
        raise HubError(f"Cannot push to {repo_id!r}: offline mode is on (HF_HUB_OFFLINE=1). Unset it to upload.")

    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=endpoint, token=_token(token))
    operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(folder / rel)) for rel in files]
    try:
        with _hf_offline_flag(False):
            if create_repo:
                api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            info: Any = api.create_commit(
                repo_id,
                operations=operations,
                commit_message=commit_message,
                repo_type="model",
                revision=revision,
            )
    except Exception as exc:
        err = _translate_push_error(exc, repo_id=repo_id, revision=revision, endpoint=endpoint)
        if err is None:
            raise
        raise err from exc
    return str(getattr(info, "commit_url", info))


def _translate_push_error(exc: BaseException, *, repo_id: str, revision: str | None, endpoint: str) -> HubError | None:
    from huggingface_hub import errors as hf_errors

    if isinstance(exc, getattr(hf_errors, "RevisionNotFoundError", ())):
        return HubError(
            f"Cannot push to {repo_id!r} on {endpoint}: branch {revision!r} does not exist. Create it first "
            "or push to the default branch."
        )
    if isinstance(exc, getattr(hf_errors, "RepositoryNotFoundError", ())):
        return HubError(
            f"Cannot push to {repo_id!r} on {endpoint}: the repository was not found or your token cannot "
            "write to it. Set HF_TOKEN (or pass token=) to a token with write access."
        )
    if isinstance(exc, getattr(hf_errors, "HfHubHTTPError", ())):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        hint = " Check that your token (HF_TOKEN or token=) has write access." if status in (401, 403) else ""
        return HubError(f"Pushing to {repo_id!r} on {endpoint} failed with HTTP {status}: {exc}.{hint}")
    if _is_network_error(exc):
        return HubError(
            f"Cannot push to {repo_id!r}: could not reach {endpoint} ({type(exc).__name__}: {exc}). "
            "Check your network connection and HF_ENDPOINT."
        )
    return None
