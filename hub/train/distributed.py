"""torch.distributed for the Trainer: process group from torchrun's environment, model
wrapping (DDP or FSDP2's ``fully_shard``), and the few collectives training needs.

One process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) is the degenerate case of every
function here, so the training loop has no separate single-process path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from hub.errors import ConfigError


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: its rank among ``world_size`` and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_from_torchrun() -> DistEnv:
    """Read torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK); one process without them."""
    return DistEnv(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                   int(os.environ.get("LOCAL_RANK", "0")))


def is_main_process() -> bool:
    """True on rank 0 (and when not distributed): the process that logs and saves."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return env_from_torchrun().is_main


def setup(env: DistEnv, device: torch.device) -> bool:
    """Join the process group when launched by torchrun; returns True if this call created it."""
    if not env.enabled or not dist.is_available() or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    return True


def device_for(env: DistEnv, requested: str | None) -> torch.device:
    """The process's device: ``requested``, else its own GPU under torchrun, else CPU."""
    if requested:
        device = torch.device(requested)
        if device.type == "cuda" and env.enabled and device.index is None:
            device = torch.device("cuda", env.local_rank)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", env.local_rank if env.enabled else torch.cuda.current_device())
    return torch.device("cpu")


def strategy(requested: str, env: DistEnv) -> str:
    """"none" for one process; "auto" means DDP under torchrun."""
    if not env.enabled:
        return "none"
    if requested == "none":
        raise ConfigError(f"distributed='none' but {env.world_size} processes were launched; launch one "
                          "process or choose 'ddp' / 'fsdp'.")
    return "ddp" if requested == "auto" else requested


def wrap(model: nn.Module, how: str, device: torch.device) -> nn.Module:
    """DDP, or FSDP2 with each Transformer block sharded as its own unit and then the root."""
    if how == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if how == "fsdp":
        from torch.distributed.fsdp import fully_shard

        from hub.backbone.transformer import TransformerBlock

        for module in model.modules():
            if isinstance(module, TransformerBlock):
                fully_shard(module)
        fully_shard(model)
        return model
    return model


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum floats over processes (identity without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj`` in rank order (``[obj]`` without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def teardown(created: bool) -> None:
    if created and dist.is_initialized():
        dist.destroy_process_group()
