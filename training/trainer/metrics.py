"""What a training run reports: metrics.jsonl, model FLOPs utilisation, and the progress bar."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

# Dense bf16 tensor-core peaks (FLOP/s) for MFU; the first name fragment found in the device name wins.
PEAK_BF16_FLOPS: dict[str, float] = {
    "H200": 989.5e12,
    "H100": 989.5e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
}


def peak_flops(configured: float | None, device: torch.device) -> float | None:
    """The device's peak FLOP/s for MFU: the configured value, else the table's; None on CPU."""
    if configured:
        return configured
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


class Metrics:
    """metrics.jsonl on rank 0: one JSON object per logged step or evaluation."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    def rewind(self, step: int) -> None:
        """Keep only records up to `step`, the checkpoint a resumed run restarts from.

        A process killed between checkpoints has logged steps that the resumed run trains
        again; without this they would appear twice. A line cut short by the kill goes too.
        """
        if not self.enabled or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("step", 0) <= step:
                kept.append(line + "\n")
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, self.path)


class ProgressBar:
    """The rich progress bar of the step loop (disabled off rank 0), and the console lines above it."""

    def __init__(self, enabled: bool, total: int, start: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            disable=not enabled,
        )
        self.task = self.progress.add_task("train", total=total, completed=start, info="")

    def __enter__(self) -> ProgressBar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def update(self, **fields: Any) -> None:
        self.progress.update(self.task, **fields)

    def print(self, line: str) -> None:
        self.progress.console.print(line)
