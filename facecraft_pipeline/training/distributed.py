"""Data-parallel training across processes (torchrun / accelerate launch), with the one-process path unchanged.

The batch size a trainer is given is the *global* batch: every rank draws the same random numbers
(same seed, same state) for the whole global batch and trains on its own slice (`World.shard`), and
gradients are averaged with one all-reduce per optimizer step (`World.average_gradients`). So N
processes compute what one process computes with the same global batch (up to float summation
order), the learning rate needs no scaling, and a run can resume on another number of devices.
Only rank 0 writes the run folder, checkpoints, samples and stats.

Why not `DistributedDataParallel`: the WGAN-GP gradient penalty backpropagates through a gradient
(double backward), which DDP's reducer does not support, and G/D alternate `requires_grad`.
BatchNorm statistics are per rank on CPU (gloo): SyncBatchNorm needs a GPU, so `sync_batchnorm`
converts models only on CUDA.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from facecraft_pipeline.env import env_int, env_optional


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch (its first dimension must divide evenly)."""
        if self.size == 1:
            return batch
        if batch.shape[0] % self.size:
            raise ValueError(f"a global batch of {batch.shape[0]} does not split over {self.size} processes: "
                             f"choose a batch_size divisible by {self.size}")
        per = batch.shape[0] // self.size
        return batch[self.rank * per:(self.rank + 1) * per]

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Mean of every rank's gradients, in one flat all-reduce."""
        if self.size == 1:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Metric values averaged over ranks (for logging)."""
        if self.size == 1:
            return values
        values = values.clone()
        dist.all_reduce(values)
        return values / self.size

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


def sync_batchnorm(module: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """BatchNorm statistics over the global batch where torch supports it (CUDA); unchanged otherwise."""
    if world.size > 1 and device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return module


def current_world(device: torch.device | str = "cpu") -> World:
    """The world torchrun describes in the environment (RANK, WORLD_SIZE); one process otherwise.

    Initialises the process group once (gloo on CPU, nccl on CUDA) and pins this rank to its GPU.
    """
    size = env_int("WORLD_SIZE", 1)
    if size == 1:
        return World()
    device = torch.device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(env_int("LOCAL_RANK", 0))
    return World(dist.get_rank(), dist.get_world_size())


def local_device(device: torch.device | str) -> torch.device:
    """`cuda` becomes this rank's GPU under torchrun; other devices are unchanged."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and env_optional("LOCAL_RANK") is not None:
        return torch.device("cuda", env_int("LOCAL_RANK", 0))
    return device
