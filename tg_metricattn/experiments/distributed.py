"""Data-parallel training with ``torch.distributed``: process group, model wrapping, sharding.

Launch with ``torchrun --nproc_per_node=K -m tg_metricattn.experiments.cli train ...`` (or
``tgma train --distributed`` under torchrun). The backend is gloo on CPU and NCCL on GPU.
Every rank builds the same model from the same seed (DDP also broadcasts rank 0's
parameters), draws the same shuffled order of training items from a shared generator and
takes its own shard of it (seed nodes, meshes or graphs), with its own dropout seed. DDP
averages the gradients, so parameters stay identical on every rank. Rank 0 writes the
run folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "DistContext",
    "all_reduce_mean",
    "cleanup",
    "init_distributed",
    "parameter_spread",
    "shard_indices",
    "unwrap",
    "wrap_model",
]


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job (``rank 0 of 1`` when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or dist.is_initialized()

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistContext:
    """Join the process group described by torchrun's environment (``RANK``, ``WORLD_SIZE``...)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise ValueError(
            "--distributed needs the environment set by torchrun (RANK, WORLD_SIZE, MASTER_ADDR); launch with "
            "`torchrun --nproc_per_node=K -m tg_metricattn.experiments.cli train ...`."
        )
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank)


def wrap_model(model: nn.Module, ctx: DistContext, device: str) -> nn.Module:
    """Wrap ``model`` in ``DistributedDataParallel`` when running distributed."""
    if not ctx.enabled:
        return model
    device_ids = [ctx.local_rank] if device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP wrapper."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def shard_indices(indices: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's equal-sized share of ``indices`` (the remainder is dropped so every rank takes as many steps)."""
    if ctx.world_size == 1:
        return indices
    per_rank = indices.numel() // ctx.world_size
    if per_rank == 0:
        raise ValueError(f"{indices.numel()} training items cannot be shared among {ctx.world_size} processes.")
    return indices[ctx.rank :: ctx.world_size][:per_rank]


def all_reduce_mean(value: float, ctx: DistContext) -> float:
    """The mean of a scalar over ranks (the value itself when not distributed)."""
    if not ctx.enabled:
        return value
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / ctx.world_size


def parameter_spread(model: nn.Module, ctx: DistContext) -> float:
    """Largest absolute difference between any rank's parameters and rank 0's (0.0 when in sync)."""
    flat = torch.cat([p.detach().reshape(-1) for p in unwrap(model).parameters()])
    if not ctx.enabled:
        return 0.0
    gathered = [torch.empty_like(flat) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, flat)
    return max(float((g - gathered[0]).abs().max()) for g in gathered)


def cleanup(ctx: DistContext) -> None:
    """Leave the process group."""
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
