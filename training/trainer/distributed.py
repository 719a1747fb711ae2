"""This process's place in a torchrun job, and the model wrapped for it (DDP or FSDP2)."""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta

import torch
import torch.distributed as dist

from training.trainer.config import TrainConfig
from training.trainer.model import GPT


class Dist:
    """This process's place in the job: rank, world size, device; torchrun's environment when present."""

    def __init__(self, device_pref: str) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", 1))
        self.rank = int(os.environ.get("RANK", 0))
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        use_cuda = device_pref == "cuda" or (device_pref == "auto" and torch.cuda.is_available())
        if use_cuda and not torch.cuda.is_available():
            raise RuntimeError("device: cuda was asked for but CUDA is not available")
        self.device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
        if use_cuda:
            torch.cuda.set_device(self.device)
        # Under torchrun the job is distributed even with one process, so `--nproc-per-node 1` runs the
        # same DDP/FSDP2 code (and checkpoint format) as eight; a plain `python -m` run is not.
        self.distributed = self.world_size > 1 or "TORCHELASTIC_RUN_ID" in os.environ
        if self.distributed and not dist.is_initialized():
            dist.init_process_group(
                backend="nccl" if use_cuda else "gloo",
                timeout=timedelta(minutes=10),
                # NCCL otherwise guesses the GPU from the global rank, which hangs where ranks map to GPUs unevenly.
                device_id=self.device if use_cuda else None,
            )

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def mean(self, value: float) -> float:
        if self.world_size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.item() / self.world_size

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def wrap_model(model: GPT, cfg: TrainConfig, env: Dist, use_compile: bool) -> torch.nn.Module:
    """FSDP2 (shard each block, then the root) or DDP across ranks; compile in place so state keys stay clean."""
    if use_compile:
        model.compile()
    if not env.distributed:
        return model
    if cfg.parallel == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mp = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if env.cuda else None
        )
        kwargs = {"mp_policy": mp} if mp else {}
        for block in model.blocks:
            fully_shard(block, **kwargs)
        return fully_shard(model, **kwargs)
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[env.device.index] if env.cuda else None)


def grad_sync(model: torch.nn.Module, enabled: bool):
    """Skip the gradient all-reduce on accumulation micro-steps (DDP no_sync, FSDP2 requires_gradient_sync)."""
    if hasattr(model, "set_requires_gradient_sync"):
        model.set_requires_gradient_sync(enabled)
        return contextlib.nullcontext()
    if not enabled and hasattr(model, "no_sync"):
        return model.no_sync()
    return contextlib.nullcontext()
