"""Several processes through PyTorch's own DistributedDataParallel, started by ``torchrun``.

``torchrun --nproc_per_node N -m train ...`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
we join the process group (NCCL on CUDA, gloo on CPU) and each rank takes its own slice of
every global batch (see :class:`train.data.StepSampler`). Only rank 0 writes files or prints.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from pconv.inpaint import pick_device


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device_spec: str) -> tuple[DistInfo, torch.device]:
    """Join the process group if started by torchrun; the device this process uses."""
    if not launched_by_torchrun():
        return DistInfo(), pick_device(device_spec)
    info = DistInfo(
        rank=int(os.environ["RANK"]),
        world=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    device = pick_device(device_spec)
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        # Validation and checkpoints run on rank 0 while the others wait in the next
        # all-reduce: allow them well beyond the default timeout.
        dist.init_process_group(backend, timeout=timedelta(minutes=60))
    return info, device


def all_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean over ranks of a 1-D tensor (identity for one process)."""
    if not info.enabled:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / info.world


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def replicas_agree(model: torch.nn.Module, info: DistInfo) -> bool:
    """Whether every rank holds the same weights (a cheap checksum compared across ranks)."""
    if not info.enabled:
        return True
    with torch.no_grad():
        total = torch.zeros(2, dtype=torch.float64, device=next(model.parameters()).device)
        for p in model.parameters():
            total[0] += p.double().sum()
            total[1] += (p.double() ** 2).sum()
    gathered = [torch.zeros_like(total) for _ in range(info.world)]
    dist.all_gather(gathered, total)
    return all(torch.equal(gathered[0], g) for g in gathered[1:])


def teardown(info: DistInfo, clean: bool = True) -> None:
    """Leave the process group. ``clean``: every rank got here, so wait for the others first
    (a rank that destroys its group while a peer still talks to it can abort the peer); after
    an error only on this rank, a barrier could wait forever, so leave at once."""
    if not (info.enabled and dist.is_initialized()):
        return
    gc.collect()  # release DDP reducers (and their pending work) before the group goes
    if clean:
        dist.barrier()
    dist.destroy_process_group()
