"""Many processes, one run: `torchrun` (or Ray Train) starts them, each calls `train()`.

A process started by a launcher (``WORLD_SIZE`` > 1 in its environment) joins the process
group (gloo on CPU, nccl on GPU), wraps the model in DistributedDataParallel and reads its
rank's part of every global batch (``mixer.stream``). Only rank 0 logs and writes files.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def join_if_launched(device: torch.device) -> bool:
    """Join the launcher's process group; True when this call did (the caller leaves it)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def rank_and_size() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP around ``model`` when there are several ranks (gradients averaged over them)."""
    if rank_and_size()[1] == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def all_sum(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over the ranks (unchanged with one)."""
    if rank_and_size()[1] > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def leave() -> None:
    dist.destroy_process_group()
