"""Safe, atomic file-system writes: a crash never leaves a half-written model, and a save never
deletes a file Hub did not write.

The rules a model save follows (:func:`atomic_directory`):

* The target may be a path that does not exist yet, an empty folder, or a folder that holds a
  model Hub wrote and nothing else. Hub knows what it wrote from the folder's manifest
  (``.hub-manifest.json``: every file of the save, written last), or, for folders saved before
  manifests existed, from a Hub ``config.json`` plus only the file names Hub writes.
  Anything else (a file, a folder with other files in it, the working directory or a folder
  that contains it, a symbolic link) is refused with :class:`~hub.errors.SaveTargetError`
  before any work is done, naming the path and what to do.
* The new model is written into a fresh temporary folder beside the target (same file system),
  every file and the folder are fsync'ed, and only then does it take the target's place. On
  Linux (``renameat2(RENAME_EXCHANGE)``) and macOS (``renamex_np(RENAME_SWAP)``) the old and new
  folders are swapped in one atomic step, so a reader at any instant sees the old model or the
  new one, never neither. Elsewhere the old folder is renamed aside first; a crash between the
  two renames is repaired by the next save or load (the aside copy is renamed back).
* Saves to one parent folder are serialised with an advisory lock (``flock``) on that folder,
  so concurrent saves to one target both succeed, one after the other.
* Temporary folders of saves that were killed (``.NAME.tmp-*``; recognisable because no live
  process holds their lock) are removed by the next save beside them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from hub.errors import SaveTargetError

MANIFEST_NAME = ".hub-manifest.json"
MANIFEST_FORMAT = 1

#: File names a Hub save wrote before manifests existed (``config.json`` with ``hub_format``
#: is required as well); a folder holding only these may be replaced.
LEGACY_NAMES = frozenset({
    "config.json", "model.safetensors", "README.md", "ids.json", "history.safetensors",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.txt", "vocab.json", "merges.txt", "chat_template.jinja", "spiece.model",
    "sentencepiece.bpe.model", "preprocessor_config.json",
})


# -- the public entry points -----------------------------------------------------------------
@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``target``; on success it takes ``target``'s place.

    Args:
        target: the model folder to write. It must not exist, be empty, or hold a model Hub
            wrote and nothing else (see the module docstring); anything else is refused
            before the body runs.

    Yields:
        The temporary folder to write the model's files into.

    Raises:
        SaveTargetError: ``target`` holds something Hub did not write.

    If the body raises, ``target`` is untouched and the temporary folder is removed.
    """
    target = _absolute(target)
    check_save_target(target)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    with locked(parent):  # cleaners hold this lock too, so none sees ``tmp`` before it is held
        _clean_stale(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
        owner = hold(tmp)  # "a live save owns this", for _clean_stale in other processes
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a saved model is an ordinary folder
        yield tmp
        _finish(tmp)
        with locked(parent):
            check_save_target(target)  # again, under the lock: another save may have run meanwhile
            _swap_into_place(tmp, target)
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        release(owner)
        shutil.rmtree(tmp, ignore_errors=True)  # after a swap, tmp holds the old model


def check_save_target(target: str | os.PathLike) -> None:
    """Refuse a save target that holds anything Hub did not write (see the module docstring).

    Call it before long work (training) whose result will be saved there, so a bad ``output``
    fails at once rather than after hours.

    Args:
        target: the folder a model is to be saved into.

    Raises:
        SaveTargetError: naming the path, what is in the way and what to do.
    """
    target = _absolute(target)
    fix = "Save into a new or empty folder, or move those files away yourself."
    if target.is_symlink():
        raise SaveTargetError(f"Cannot save a model to {str(target)!r}: it is a symbolic link. Hub "
                              "replaces a model folder whole and will not replace a link; pass the "
                              "folder it points to, or a new folder.")
    if target == Path(target.anchor):
        raise SaveTargetError(f"Cannot save a model to {str(target)!r}: it is the file-system root.")
    try:
        cwd, real = Path.cwd().resolve(), target.resolve()
    except OSError:  # the working directory was deleted: nothing of it to protect
        cwd = real = None
    if cwd is not None and (real == cwd or real in cwd.parents):
        raise SaveTargetError(f"Cannot save a model to {str(target)!r}: it is the current working "
                              "directory or a folder that contains it, and a save replaces its "
                              "target whole. Name a new subfolder instead, e.g. 'my-model'.")
    if not target.exists():
        _restore_aside_copy(target)  # a crash between the fallback's two renames
        return
    if not target.is_dir():
        raise SaveTargetError(f"Cannot save a model to {str(target)!r}: it is an existing file, and a "
                              "model is saved as a folder. Choose another path; Hub never deletes a "
                              "file it did not write.")
    foreign = foreign_entries(target)
    if foreign:
        shown = ", ".join(repr(name) for name in foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise SaveTargetError(f"Cannot save a model to {str(target)!r}: the folder holds files Hub did not "
                              f"write ({shown}; {len(foreign)} in all), and saving replaces the folder "
                              f"whole. {fix}")


def foreign_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` (relative paths, sorted) that no Hub save there wrote.

    Args:
        folder: an existing folder.

    Returns:
        ``[]`` for an empty folder or a Hub model folder with nothing else in it.
    """
    entries = sorted(_relative_entries(folder))
    if not entries:
        return []
    written = _manifest_files(folder)
    if written is None:  # no manifest: a folder saved before manifests, or not Hub's at all
        if not _is_legacy_hub_folder(folder):
            return entries
        return [e for e in entries if e not in LEGACY_NAMES]
    allowed = set(written) | {MANIFEST_NAME}
    for name in written:  # the folders that hold the written files
        allowed.update(str(p) for p in Path(name).parents if str(p) != ".")
    return [e for e in entries if e not in allowed]


def replace_directory(new: Path, target: Path) -> Path | None:
    """Put the folder ``new`` at ``target`` (same parent), atomically where the OS allows.

    Used for folders Hub owns outright (training checkpoints), where no manifest check is
    needed. Returns where the previous ``target`` now is (for the caller to delete), or None
    if there was none.
    """
    return _swap_into_place(new, target)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, an fsync and a rename.

    Args:
        path: the file to write; an existing file there is replaced.
        text: its new contents (UTF-8).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def clean_stale_folders(parent: Path, patterns: Iterable[str]) -> None:
    """Remove folders in ``parent`` matching ``patterns`` that no live process holds.

    For the temporary and trash folders of Hub's own writers (checkpoints), after a kill.
    Call it with :func:`locked` ``(parent)`` held; writers create and :func:`hold` their
    temporary folders under the same lock, so a live writer's folder is never taken for stale.
    """
    for pattern in patterns:
        for path in parent.glob(pattern):
            _remove_if_abandoned(path)


# -- steps -----------------------------------------------------------------------------------
def _finish(tmp: Path) -> None:
    """Fix permissions, write the manifest, and fsync every file and folder of ``tmp``."""
    files: dict[str, int] = {}
    for path in sorted(tmp.rglob("*")):
        if path.is_symlink():
            continue
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_umask())  # safetensors writes 0600
        if path.is_file():
            files[path.relative_to(tmp).as_posix()] = path.stat().st_size
    files.pop(MANIFEST_NAME, None)
    manifest = {"hub_manifest": MANIFEST_FORMAT, "files": files}
    (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.chmod(tmp / MANIFEST_NAME, 0o666 & ~_umask())
    for path in sorted(tmp.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file() and not path.is_symlink():
            fsync_file(path)
        elif path.is_dir():
            fsync_dir(path)
    fsync_dir(tmp)


def _swap_into_place(new: Path, target: Path) -> Path | None:
    """Move ``new`` to ``target``; returns the old target's new path (``new``'s name) or None."""
    if not target.exists() and not target.is_symlink():
        os.rename(new, target)
        return None
    if _exchange(new, target):
        return new
    # No atomic exchange here: rename the old folder aside, then the new one in. A crash between
    # the two is repaired by _restore_aside_copy on the next save or load.
    aside = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
    os.rename(target, aside)
    os.rename(new, target)
    os.rename(aside, new)  # let the caller's cleanup of ``new`` delete the old model
    return new


def _restore_aside_copy(target: Path) -> None:
    """If ``target`` is missing but a fallback swap left it aside, rename it back."""
    if not target.parent.is_dir():
        return
    candidates = sorted(target.parent.glob(f".{_glob_escape(target.name)}.old-*"),
                        key=lambda p: p.stat().st_mtime, reverse=True)
    for aside in candidates:
        inner = aside / "x"  # the layout of Hub releases before the atomic exchange
        source = inner if inner.is_dir() and not (aside / "config.json").exists() else aside
        if source.is_dir():
            with contextlib.suppress(OSError):
                os.rename(source, target)
                if source is inner:
                    shutil.rmtree(aside, ignore_errors=True)
                return


def restore_interrupted_save(folder: str | os.PathLike) -> None:
    """Called by loaders: repair a model folder whose fallback swap was interrupted by a crash."""
    target = _absolute(folder)
    if not target.exists():
        with contextlib.suppress(OSError):
            with locked(target.parent):
                _restore_aside_copy(target)


def _clean_stale(target: Path) -> None:
    """Remove what killed saves to ``target`` left: temporary folders, and aside copies of an
    old model once the new one is in place (while it is missing they are restored instead)."""
    name = _glob_escape(target.name)
    patterns = [f".{name}.tmp-*"]
    if target.is_dir():
        patterns.append(f".{name}.old-*")
    clean_stale_folders(target.parent, patterns)


def _remove_if_abandoned(path: Path) -> None:
    if not path.is_dir() or path.is_symlink():
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        if _try_lock(fd):
            shutil.rmtree(path, ignore_errors=True)
    finally:
        os.close(fd)


# -- OS primitives ---------------------------------------------------------------------------
def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; False where the OS or file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        at_fdcwd, rename_exchange = -100, 2
        result = libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        rename_swap = 2
        result = libc.renamex_np(os.fsencode(a), os.fsencode(b), rename_swap)
    else:
        return False
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(b))


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``folder`` for the ``with`` block (none where flock is
    unavailable, e.g. on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except (ImportError, OSError):
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock


def hold(folder: Path) -> int | None:
    """Lock ``folder`` while a writer fills it; :func:`release` the returned descriptor."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    if not _try_lock(fd):
        os.close(fd)
        return None
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # no flock (Windows): treat as held, so nothing is ever deleted wrongly
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def fsync_file(path: Path) -> None:
    """Flush a file's (or, on POSIX, a folder's entries') bytes to the disk; best effort."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make renames and new entries in a folder durable (no-op on Windows, which cannot)."""
    if os.name != "nt":
        fsync_file(path)


# -- helpers ---------------------------------------------------------------------------------
def _absolute(path: str | os.PathLike) -> Path:
    """An absolute path whose last part is kept as given (a link is not followed)."""
    path = Path(os.path.abspath(os.fspath(path)))
    return path.parent.resolve() / path.name if path.name else path


def _relative_entries(folder: Path) -> Iterator[str]:
    for path in folder.rglob("*"):
        yield path.relative_to(folder).as_posix()


def _manifest_files(folder: Path) -> list[str] | None:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
        if not isinstance(files, dict) or not all(isinstance(name, str) for name in files):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [name for name in files if ".." not in Path(name).parts and not Path(name).is_absolute()]


def _is_legacy_hub_folder(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "hub_format" in config


def _glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
