"""Where a model's files come from: shipped in a package, a local folder, or the HF Hub.

A source string is checked twice. :func:`check_source` runs when the registry is read (and
on plugins' ``hub_models`` entries), so a malformed one is reported with the file and entry
before anything is loaded. :func:`resolve_source` checks again and, for ``package:`` sources,
verifies that the resolved folder lies inside the package (defence in depth: a source may
never leave its root, whatever symlinks or ``..`` it contains).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from hub.errors import InvalidInputError, ModelLoadError, UnknownNameError
from hub.specs import ModelEntry


@dataclass
class ResolvedSource:
    folder: Path
    metadata: dict[str, Any] = field(default_factory=dict)


_PACKAGE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
SOURCE_FORMS = "'hf://org/name@revision', 'package:pkg/path' or a local path"


def split_package_source(source: str) -> tuple[str, str]:
    """'package:pkg/sub/dir' -> ('pkg', 'sub/dir'); ValueError unless both parts are well formed.

    The package must be a dotted Python name and the path a relative one made of plain
    names: no empty parts, no '.' or '..', no backslashes, no leading '/'.
    """
    body = source[len("package:"):]
    package, _, rel = body.partition("/")
    if not package:
        raise ValueError(f"source {source!r} names no package; expected 'package:PKG/PATH', e.g. "
                         "'package:hub_text/weights/sentiment-minilm'.")
    if not _PACKAGE_RE.match(package):
        raise ValueError(f"source {source!r}: {package!r} is not a Python package name; expected "
                         "'package:PKG/PATH' with PKG an importable package such as 'hub_text'.")
    parts = rel.split("/")
    if not rel or any(part in ("", ".", "..") or "\\" in part or ":" in part for part in parts):
        raise ValueError(f"source {source!r}: the path inside package {package!r} must be a relative "
                         "path of plain folder names (no '..', '.', empty parts, '\\' or ':'), e.g. "
                         f"'package:{package}/weights/NAME'.")
    return package, str(PurePosixPath(*parts))


def check_source(source: Any) -> None:
    """Raise ValueError (a message without the file) if ``source`` is not a well-formed source.

    ``hf://`` repo ids follow the Hugging Face Hub's rules (those of
    ``huggingface_hub.utils.validate_repo_id``, checked here without importing it so that
    ``hub list`` stays fast); ``package:`` sources must stay inside their package; any other
    ``scheme://`` is refused; a local path must not be empty.
    """
    if not isinstance(source, str):
        raise ValueError(f"source must be a string, got {type(source).__name__} ({source!r}).")
    if not source.strip():
        raise ValueError(f"source is empty; use {SOURCE_FORMS}.")
    if source != source.strip():
        raise ValueError(f"source {source!r} has leading or trailing spaces; remove them.")
    if source.startswith("package:"):
        split_package_source(source)
        return
    if source.startswith("hf://"):
        from hub.hf import parse_hf_source

        repo_id, _ = parse_hf_source(source)  # the Hub's repo-id and revision rules
        if repo_id.endswith(".git"):
            raise ValueError(f"Malformed Hugging Face repo id {repo_id!r} in {source!r}: it must not end "
                             "in '.git'.")
        return
    if "://" in source:
        raise ValueError(f"unsupported source {source!r}; use {SOURCE_FORMS}.")


def _package_folder(source: str) -> Path:
    try:
        package, rel = split_package_source(source)
    except ValueError as exc:
        raise ModelLoadError(f"Malformed {exc}") from None
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        raise ModelLoadError(f"Source {source!r}: package {package!r} is not installed; install the "
                             f"distribution that provides it (e.g. pip install "
                             f"{package.replace('_', '-')}).") from None
    except (ImportError, TypeError) as exc:  # e.g. a module, not a package
        raise ModelLoadError(f"Source {source!r}: cannot open package {package!r} ({exc}).") from None
    base = Path(str(root)).resolve()
    folder = Path(str(root / rel)).resolve()
    if not folder.is_relative_to(base):  # a symlink inside the package pointing out of it
        raise ModelLoadError(f"Source {source!r} resolves to {folder}, outside package {package!r} "
                             f"({base}); a package source must stay inside its package.")
    return folder


def resolve_source(source: str, *, revision: str | None = None) -> ResolvedSource:
    """Turn a registry ``source`` string into a local folder (downloading if needed)."""
    if source.startswith("package:"):
        folder = _package_folder(source)
        if revision:
            raise ModelLoadError(f"revision={revision!r} applies to Hugging Face Hub models; "
                                 f"{source!r} is shipped inside a package.")
        return ResolvedSource(folder, {"source": source})
    if source.startswith("hf://"):
        from hub.hf import download_model_files, parse_hf_source

        try:
            repo_id, pinned = parse_hf_source(source)
        except ValueError as exc:
            raise InvalidInputError(f"{exc} Model sources look like {SOURCE_FORMS}.") from None
        snap = download_model_files(repo_id, revision=revision or pinned)
        return ResolvedSource(snap.path, {"source": f"hf://{repo_id}", "repo_id": repo_id,
                                          "revision": snap.revision, "commit": snap.commit})
    if revision:
        raise ModelLoadError(f"revision={revision!r} applies to Hugging Face Hub models; "
                             f"{source!r} is a local folder.")
    return ResolvedSource(Path(source).expanduser(), {"source": str(Path(source).expanduser())})


def resolve_model_argument(model: str, catalogue: dict[str, ModelEntry], *,
                           revision: str | None = None) -> tuple[ModelEntry | None, ResolvedSource]:
    """``model=`` of :func:`hub.load`: a catalogue name, a local folder or a repo id."""
    from hub.hf import looks_like_repo_id

    if model in catalogue:
        entry = catalogue[model]
        return entry, resolve_source(entry.source, revision=revision)
    path = Path(model).expanduser()
    if path.exists():
        return None, resolve_source(str(path), revision=revision)
    if model.startswith("hf://") or looks_like_repo_id(model):
        source = model if model.startswith("hf://") else f"hf://{model}"
        return None, resolve_source(source, revision=revision)
    raise UnknownNameError("model", model, catalogue,
                           hint="Pass a catalogue name (`hub list`), an existing folder, "
                                "or a Hugging Face repo id such as 'org/name'.")
