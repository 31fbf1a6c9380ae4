"""Multi-process training through ``torchrun``: gloo on CPU, NCCL on GPU."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only rank 0 logs, samples and writes checkpoints."""
        return self.rank == 0


def init_distributed() -> Dist:
    """Join the process group torchrun describes in the environment; a plain run is a world of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank % torch.cuda.device_count())
        dist.init_process_group(backend=backend)
    return Dist(rank, world, local_rank)


def shutdown_distributed(info: Dist) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: Dist) -> None:
    if info.enabled:
        dist.barrier()


def mean_over_ranks(values: dict[str, torch.Tensor], info: Dist) -> dict[str, torch.Tensor]:
    """Each value averaged over the ranks, so logged losses describe the global batch, not rank 0's share."""
    if not info.enabled or not values:
        return values
    keys = sorted(values)  # every rank holds the same keys; one collective for all of them
    stacked = torch.stack([values[k].float() for k in keys])
    dist.all_reduce(stacked)
    return dict(zip(keys, stacked / info.world_size, strict=True))


def max_over_ranks(value: torch.Tensor, info: Dist) -> torch.Tensor:
    """The largest value on any rank (every rank must call it at the same step)."""
    if not info.enabled:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return value
