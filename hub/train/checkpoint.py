"""Resumable training checkpoints, written atomically and rotated.

A checkpoint is a folder ``output_dir/checkpoints/step-00001234/`` holding

* ``model.safetensors`` - the full (unsharded) weights, tied tensors stored once;
* ``optimizer.pt`` / ``scheduler.pt`` / ``scaler.pt`` - state dicts of tensors and
  numbers, read back with ``torch.load(weights_only=True)`` (never arbitrary pickles);
  written only when the run keeps them (``TrainingArguments.save_optimizer``: by default
  when ``save_steps`` or ``resume_from_checkpoint`` asks for resumable checkpoints), as
  ``trainer_state.json``'s ``has_optimizer`` says;
* ``rng.pt`` - Python, NumPy, torch CPU and CUDA generator states;
* ``trainer_state.json`` - step, epoch, position in the epoch, best metric, history.

The folder is written under a temporary name and renamed into place, so a crash at any
moment leaves either the previous complete checkpoint or the new one, never half of
one; ``latest()`` only ever sees complete folders. Old checkpoints are moved aside
before deletion for the same reason.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hub import _fs
from hub.errors import ConfigError

_NAME = re.compile(r"^step-(\d{8})$")


def checkpoint_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoint_dir(output_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name)
             and (p / "trainer_state.json").is_file()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def latest(output_dir: str | Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def resolve_resume(resume: str | bool | None, output_dir: str | None) -> Path | None:
    """The checkpoint folder ``resume_from_checkpoint`` points to (None: start fresh)."""
    if resume is None or resume is False:
        return None
    if resume is True or resume == "latest":
        if output_dir is None:
            raise ConfigError("resume_from_checkpoint=True needs output_dir (the run's folder).")
        found = latest(output_dir)
        if found is None:
            raise ConfigError(f"No complete checkpoint under {checkpoint_dir(output_dir)} to resume from; "
                              "start without --resume, or pass the checkpoint folder.")
        return found
    path = Path(resume)
    if path.is_dir() and not (path / "trainer_state.json").is_file() and latest(path) is not None:
        return latest(path)  # a run folder: its newest checkpoint
    if not (path / "trainer_state.json").is_file():
        raise ConfigError(f"{path} is not a training checkpoint (no trainer_state.json); pass a folder "
                          "under OUTPUT/checkpoints/ or the run's OUTPUT folder.")
    return path


# -- state of the random generators -------------------------------------------------------
def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": _plain(random.getstate()), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np

        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state["numpy"] = [kind, torch.from_numpy(keys.copy()), pos, has_gauss, cached]
    except ImportError:
        pass
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        import numpy as np

        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy(), pos, has_gauss, cached))


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


# -- tensors ------------------------------------------------------------------------------
def save_weights(state: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors with tensors that share storage (tied weights) stored once."""
    from safetensors.torch import save_file

    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
    for name, tensor in state.items():
        tensor = tensor.detach()
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in seen and tensor.numel():
            aliases[name] = seen[key]
            continue
        seen[key] = name
        unique[name] = tensor.to("cpu").contiguous()
    save_file(unique, str(path), metadata={"aliases": json.dumps(aliases)})


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    state = load_file(str(path))
    with safe_open(str(path), framework="pt") as handle:
        aliases = json.loads((handle.metadata() or {}).get("aliases", "{}"))
    for name, target in aliases.items():
        state[name] = state[target]
    return state


def load_pt(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


def write(output_dir: str | Path, step: int, files: dict[str, Any], trainer_state: dict[str, Any]) -> Path:
    """Write one checkpoint atomically. ``files`` maps file names to what goes in them:
    a tensor dict for ``*.safetensors``, anything torch can save for ``*.pt``.

    The folder is written under a temporary name, every file fsync'ed, and swapped into place
    (:func:`hub._fs.replace_directory`), so a reader sees the previous checkpoint of that step
    or the new one, never neither. The temporary folder holds a lock while it is written, so a
    later run can tell a killed writer's leftovers from a live one's.
    """
    root = checkpoint_dir(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    with _fs.locked(root):  # rotate() cleans under this lock: it never sees tmp unheld
        tmp.mkdir()
        owner = _fs.hold(tmp)
    try:
        for name, content in files.items():
            if name.endswith(".safetensors"):
                save_weights(content, tmp / name)
            else:
                torch.save(content, tmp / name)
        (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=1), encoding="utf-8")
        mode = 0o666 & ~_fs._umask()  # one mode for every file, as a saved model's (safetensors writes 0600)
        for path in tmp.iterdir():
            os.chmod(path, mode)
            _fs.fsync_file(path)
        _fs.fsync_dir(tmp)
        old = _fs.replace_directory(tmp, final)  # the same step written again (a resumed run)
        _fs.fsync_dir(root)
        if old is not None:  # the replaced folder, unlocked: a killed run's is cleaned by rotate()
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _fs.release(owner)
    return final


def rotate(output_dir: str | Path, keep_last: int, keep: Path | None = None) -> None:
    """Delete all but the newest ``keep_last`` checkpoints, never ``keep`` (the best one),
    and what killed runs left behind (temporary and trash folders no live writer holds)."""
    found = list_checkpoints(output_dir)
    for path in found[:-keep_last]:
        if keep is None or path.resolve() != keep.resolve():
            _discard(path)
    with _fs.locked(checkpoint_dir(output_dir)):
        _fs.clean_stale_folders(checkpoint_dir(output_dir), [".tmp-step-*", ".trash-step-*"])


def _discard(path: Path) -> None:
    trash = path.with_name(f".trash-{path.name.lstrip('.')}-{uuid.uuid4().hex[:8]}")
    path.rename(trash)  # atomic: the name disappears at once, the bytes go after
    shutil.rmtree(trash, ignore_errors=True)


def model_state(model: nn.Module, how: str) -> dict[str, torch.Tensor]:
    """The full state dict of a possibly wrapped model (collective under FSDP)."""
    if how == "fsdp":
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
        )

        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return unwrap(model).state_dict()


def optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, how: str) -> dict[str, Any]:
    if how == "fsdp":
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_optimizer_state_dict,
        )

        return get_optimizer_state_dict(model, optimizer,
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return optimizer.state_dict()


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor], how: str) -> None:
    if how == "fsdp":
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
        )

        set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
    else:
        unwrap(model).load_state_dict(state)


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any],
                         how: str) -> None:
    if how == "fsdp":
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_optimizer_state_dict,
        )

        set_optimizer_state_dict(model, optimizer, state,
                                 options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
    else:
        optimizer.load_state_dict(state)


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside DDP / torch.compile wrappers."""
    from torch.nn.parallel import DistributedDataParallel

    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile's wrapper
            model = model._orig_mod
        else:
            return model
