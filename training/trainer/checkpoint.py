"""Atomic training checkpoints: write into a temporary folder, rename, then point `latest` at it.

Layout under `<out_dir>/checkpoints/`::

    step_00000100/model.pt         full (unsharded) model state, CPU tensors, keys without wrapper prefixes
    step_00000100/optimizer.pt     full optimizer state keyed by parameter name (so any world size can load it)
    step_00000100/trainer.pt       step, scheduler, loader state, config, format version
    step_00000100/rng_rank{r}.pt   each rank's RNG states (python, numpy, torch CPU, CUDA)
    latest                         text: the name of the newest complete checkpoint

A killed run leaves at most a `.tmp-*` folder, which is never read and is removed by the next
save; `latest` only ever names a folder that was complete before its rename. Model and
optimizer states go through `torch.distributed.checkpoint.state_dict` with full state dicts,
so the same files load into a plain model, DDP or FSDP on any number of ranks. Multi-node
runs need the output folder on storage every node sees.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict

FORMAT_VERSION = 1
LATEST = "latest"


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(
    directory: str | os.PathLike[str],
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    trainer_state: dict[str, Any],
    keep: int = 2,
) -> Path | None:
    """Collective: every rank calls it. Returns the checkpoint folder on rank 0, None elsewhere."""
    root = Path(directory)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp-step_{step:08d}"
    model_state, optim_state = get_state_dict(
        model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )
    if _rank() == 0:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    _barrier()
    torch.save(rng_state(), tmp / f"rng_rank{_rank()}.pt")
    if _rank() == 0:
        torch.save(model_state, tmp / "model.pt")
        torch.save(optim_state, tmp / "optimizer.pt")
        torch.save({"version": FORMAT_VERSION, "step": step, **trainer_state}, tmp / "trainer.pt")
    _barrier()
    if _rank() != 0:
        _barrier()
        return None
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _write_latest(root, final.name)
    _prune(root, keep)
    _barrier()
    return final


def _write_latest(root: Path, name: str) -> None:
    tmp = root / f".{LATEST}.tmp"
    tmp.write_text(name + "\n")
    os.replace(tmp, root / LATEST)


def _prune(root: Path, keep: int) -> None:
    """Drop all but the newest `keep` checkpoints, and leftovers of killed saves."""
    for stale in root.glob(".tmp-step_*"):
        shutil.rmtree(stale, ignore_errors=True)
    complete = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in complete[: max(0, len(complete) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


def latest(directory: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint folder, or None when there is none."""
    root = Path(directory)
    pointer = root / LATEST
    if pointer.is_file():
        candidate = root / pointer.read_text().strip()
        if (candidate / "trainer.pt").is_file():
            return candidate
    complete = sorted(p for p in root.glob("step_*") if (p / "trainer.pt").is_file())
    return complete[-1] if complete else None


def load(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Collective: load model and optimizer into any wrapping, restore this rank's RNG, return trainer state."""
    trainer_state = torch.load(path / "trainer.pt", map_location="cpu", weights_only=False)
    if trainer_state.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format {trainer_state.get('version')} is not {FORMAT_VERSION}")
    set_state_dict(
        model,
        optimizer,
        model_state_dict=torch.load(path / "model.pt", map_location="cpu", weights_only=True),
        optim_state_dict=torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False),
        options=StateDictOptions(full_state_dict=True),
    )
    rng_file = path / f"rng_rank{_rank()}.pt"
    if rng_file.is_file():  # a rank added by an elastic resume keeps its fresh seed
        set_rng_state(torch.load(rng_file, map_location="cpu", weights_only=False))
    return trainer_state
