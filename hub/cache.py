"""What works offline, what the Hugging Face cache holds, and pinning it: behind ``hub list``'s
OFFLINE column, ``hub cache`` and ``hub freeze``.

Hub downloads every Hugging Face model into the standard Hugging Face cache (``hub.hf``:
``$HF_HUB_CACHE``, else ``$HF_HOME/hub``), shared with transformers & co., so "cached" means
a snapshot in that cache. Three levels of cost, on purpose:

* :func:`offline_status` (``hub list``) reads the cache's folder layout directly
  (``models--ORG--NAME/refs/REVISION`` -> ``snapshots/COMMIT/``) and locates shipped packages
  with :func:`importlib.util.find_spec`, so ``hub list`` imports neither torch nor
  huggingface_hub and runs nothing a package defines;
* :func:`scan` (``hub cache``) is huggingface_hub's own ``scan_cache_dir``: sizes, commits and
  refs as ``hf cache scan`` reports them;
* :func:`delete` (``hub cache delete``) is huggingface_hub's ``delete_revisions`` strategy,
  for model repositories of that cache named one by one, never anything else (shipped
  packages, local folders, data sets and other caches are refused by name).

:func:`freeze` writes the commits the cache resolved for the catalogue's ``hf://`` models into
a registry overlay (the format :func:`hub.registry.read_registry_file` reads), so a deployment
loads exactly those commits (``HUB_REGISTRY=frozen.yaml``).
"""

from __future__ import annotations

import importlib.util
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.errors import InvalidInputError, UnknownNameError

if TYPE_CHECKING:
    from hub.registry import Registry
    from hub.specs import ModelEntry

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_WEIGHT_GLOBS = ("*.safetensors", "pytorch_model*.bin")
SHIPPED, CACHED, LOCAL = "shipped", "cached", "local"


# -- offline status, cheaply (hub list) ----------------------------------------------------
def repo_folder(repo_id: str, cache: Path) -> Path:
    """The cache folder of model repository ``repo_id`` (huggingface_hub's layout)."""
    return cache / ("models--" + repo_id.replace("/", "--"))


def cached_commit(repo_id: str, revision: str | None = None, cache: Path | None = None) -> str | None:
    """The commit the cache holds for ``repo_id`` at ``revision`` (default ``main``), or None.

    A commit is cached when its snapshot folder holds ``config.json`` and a weights file, as
    :func:`hub.hf.download_model_files` leaves it; a branch or tag through the cache's
    ``refs/`` file, as huggingface_hub resolves it offline.
    """
    from hub.hf import default_cache_dir

    folder = repo_folder(repo_id, cache or default_cache_dir())
    revision = revision or "main"
    if _COMMIT_RE.match(revision):
        commit = revision
    else:
        try:
            commit = (folder / "refs" / revision).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        if not _COMMIT_RE.match(commit):
            return None
    snapshot = folder / "snapshots" / commit
    if not (snapshot / "config.json").is_file():
        return None
    if not any(next(snapshot.glob(pattern), None) is not None for pattern in _WEIGHT_GLOBS):
        return None
    return commit


def _package_folder_exists(source: str) -> bool:
    """Whether a ``package:PKG/PATH`` source's folder holds a model, without importing PKG
    (a top-level package is located by :func:`importlib.util.find_spec` alone)."""
    from hub.sources import split_package_source

    try:
        package, rel = split_package_source(source)
        spec = importlib.util.find_spec(package)
    except (ValueError, ImportError):
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    for root in spec.submodule_search_locations:
        base = Path(root).resolve()
        folder = (base / rel).resolve()
        if folder.is_relative_to(base) and (folder / "config.json").is_file():
            return True
    return False


def offline_status(entry: ModelEntry, cache: Path | None = None) -> str | None:
    """``"shipped"`` (inside an installed package), ``"local"`` (a folder on this machine),
    ``"cached"`` (its revision is in the Hugging Face cache) or None (needs a download)."""
    source = entry.source
    if source.startswith("package:"):
        return SHIPPED if _package_folder_exists(source) else None
    if source.startswith("hf://"):
        from hub.hf import parse_hf_source

        try:
            repo_id, revision = parse_hf_source(source)
        except ValueError:
            return None
        return CACHED if cached_commit(repo_id, revision, cache) else None
    return LOCAL if (Path(source).expanduser() / "config.json").is_file() else None


# -- the cache, through huggingface_hub (hub cache) ----------------------------------------
@dataclass
class CachedModel:
    """One model repository in the Hugging Face cache, as ``scan_cache_dir`` reports it."""

    repo_id: str
    size_on_disk: int
    commits: dict[str, list[str]]  # commit -> the refs pointing at it (branches, tags)
    path: str
    last_accessed: float
    names: list[str] = field(default_factory=list)  # catalogue models whose source it is

    def record(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "names": self.names, "size_on_disk": self.size_on_disk,
                "size": human_size(self.size_on_disk), "commits": self.commits, "path": self.path,
                "last_accessed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.last_accessed))}


def human_size(size: float) -> str:
    """``1.2 GB``-style sizes (powers of 1000, as huggingface_hub prints them)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(size) < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def _scan(cache: Path) -> Any:
    from huggingface_hub import scan_cache_dir

    if not cache.is_dir():
        return None
    return scan_cache_dir(cache_dir=str(cache))


def _hf_names(registry: Registry | None) -> dict[str, list[str]]:
    """repo id -> the catalogue names whose source is that Hugging Face repository."""
    from hub.hf import parse_hf_source

    names: dict[str, list[str]] = {}
    for name, entry in sorted(registry.models.items()) if registry is not None else ():
        if entry.source.startswith("hf://"):
            try:
                names.setdefault(parse_hf_source(entry.source)[0], []).append(name)
            except ValueError:
                continue
    return names


def scan(registry: Registry | None = None, cache: Path | None = None) -> list[CachedModel]:
    """The model repositories in the Hugging Face cache (``huggingface_hub.scan_cache_dir``),
    largest first, each with the catalogue names that point at it."""
    from hub.hf import default_cache_dir

    info = _scan(cache or default_cache_dir())
    if info is None:
        return []
    names = _hf_names(registry)
    models = [CachedModel(repo.repo_id, repo.size_on_disk,
                          {rev.commit_hash: sorted(rev.refs) for rev in sorted(repo.revisions,
                                                                               key=lambda r: r.last_modified)},
                          str(repo.repo_path), repo.last_accessed, names.get(repo.repo_id, []))
              for repo in info.repos if repo.repo_type == "model"]
    return sorted(models, key=lambda m: (-m.size_on_disk, m.repo_id))


@dataclass
class DeletePlan:
    """What :func:`delete` removes (or would): repositories, commits and the bytes freed."""

    repos: list[CachedModel]
    commits: list[str]
    freed: int
    strategy: Any  # huggingface_hub's DeleteCacheStrategy

    def execute(self) -> None:
        self.strategy.execute()


def delete(names: list[str], registry: Registry | None = None, *, revision: str | None = None,
           cache: Path | None = None) -> DeletePlan:
    """The plan to delete the cached models ``names`` (catalogue names or ``org/name`` repo ids);
    call ``.execute()`` on it to delete. Only model repositories in the Hugging Face cache
    can be named: a shipped or local catalogue model, or a name the cache does not hold, is an
    error naming what the cache holds. ``revision`` (a commit) deletes that commit only."""
    from hub.hf import default_cache_dir, parse_hf_source

    if not names:
        raise InvalidInputError("hub cache delete needs the names of cached models (`hub cache` lists them).")
    cache = cache or default_cache_dir()
    cached = {m.repo_id: m for m in scan(registry, cache)}
    repos: list[CachedModel] = []
    for name in names:
        entry = registry.models.get(name) if registry is not None else None
        if entry is not None and not entry.source.startswith("hf://"):
            raise InvalidInputError(f"{name!r} is not in the Hugging Face cache: its source is {entry.source!r} "
                                    "(shipped in a package or a local folder), which Hub never deletes.")
        try:
            repo_id = parse_hf_source(entry.source if entry is not None else
                                      (name if name.startswith("hf://") or "/" in name else f"hf://{name}"))[0]
        except ValueError as exc:
            raise InvalidInputError(f"{name!r} is neither a catalogue model nor a repo id: {exc}") from None
        if repo_id not in cached:
            raise UnknownNameError("cached model", name, [*cached, *(n for m in cached.values() for n in m.names)],
                                   hint=f"The Hugging Face cache ({cache}) holds: "
                                        + (", ".join(sorted(cached)) or "nothing") + ".")
        if cached[repo_id] not in repos:
            repos.append(cached[repo_id])
    if revision is not None:
        holding = [m for m in repos if revision in m.commits]
        if len(repos) != 1 or not holding:
            raise InvalidInputError(f"--revision {revision!r} must be one of the cached commits of one model; "
                                    + "; ".join(f"{m.repo_id}: {', '.join(m.commits)}" for m in repos) + ".")
        commits = [revision]
    else:
        commits = [commit for m in repos for commit in m.commits]
    strategy = _scan(cache).delete_revisions(*commits)
    return DeletePlan(repos, commits, strategy.expected_freed_size, strategy)


# -- pinning (hub freeze) ------------------------------------------------------------------
def freeze(registry: Registry, names: list[str] | None = None, cache: Path | None = None
           ) -> tuple[dict[str, Any], list[str]]:
    """(overlay, skipped): a registry overlay pinning each cached catalogue ``hf://`` model to
    the commit the cache resolved for its revision, and the names left out (not cached).

    Every entry is written whole (task, source, architecture, license, description, labels,
    metrics), because an overlay's entry replaces the catalogue's. ``names`` limits it to
    those models; a named model that is not a cached Hugging Face model is an error.
    """
    from hub.hf import parse_hf_source

    wanted = names or [n for n, e in sorted(registry.models.items()) if e.source.startswith("hf://")]
    models: dict[str, Any] = {}
    skipped: list[str] = []
    for name in wanted:
        entry = registry.model(name)  # UnknownNameError with the closest matches
        if not entry.source.startswith("hf://"):
            raise InvalidInputError(f"{name!r} comes from {entry.source!r}, not the Hugging Face Hub: there is "
                                    "no commit to pin.")
        repo_id, revision = parse_hf_source(entry.source)
        commit = cached_commit(repo_id, revision, cache)
        if commit is None:
            if names:
                raise InvalidInputError(f"{name!r} ({repo_id}@{revision or 'main'}) is not in the Hugging Face "
                                        f"cache, so there is no commit to pin; run `hub download {repo_id}` first.")
            skipped.append(name)
            continue
        models[name] = _entry_fields(entry, f"hf://{repo_id}@{commit}", registry)
    return {"schema": 1, "models": models}, skipped


def _entry_fields(entry: ModelEntry, source: str, registry: Registry) -> dict[str, Any]:
    fields: dict[str, Any] = {"task": entry.task, "source": source}
    task = registry.tasks.get(registry.aliases.get(entry.task, entry.task))
    if entry.plugin and (task is None or entry.plugin != task.plugin):
        fields["plugin"] = entry.plugin
    for key in ("architecture", "license", "description"):
        if getattr(entry, key):
            fields[key] = getattr(entry, key)
    if entry.labels:
        fields["labels"] = list(entry.labels)
    if entry.metrics:
        fields["metrics"] = dict(entry.metrics)
    return fields


def overlay_text(overlay: dict[str, Any], header: str) -> str:
    """The overlay as YAML Hub's strict reader accepts (no anchors or aliases), after ``header``."""
    import yaml

    class _NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    body = yaml.dump(overlay, Dumper=_NoAliases, sort_keys=False, allow_unicode=True, width=100)
    return "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + body
