"""Terminal progress for long runs: one bar for the job's stages, one for Spark's tasks.

Spark's own console bar is turned off (it fights with rich); a daemon thread polls
the status tracker instead, so users see task progress for whatever Spark job the
current stage triggered.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RunProgress:
    """Context manager showing stage and Spark-task progress; silent when disabled."""

    def __init__(self, spark: Any, total_stages: int, enabled: bool = True, console: Console | None = None):
        self.spark = spark
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            disable=not enabled,
        )
        self.stage_task = self.progress.add_task("stages", total=total_stages)
        self.spark_task = self.progress.add_task("spark tasks", total=None, visible=False)
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="refinery-progress", daemon=True)

    def __enter__(self) -> RunProgress:
        self.progress.__enter__()
        if self.enabled:
            self._poller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._poller.is_alive():
            self._poller.join(timeout=2)
        self.progress.update(self.spark_task, visible=False)
        self.progress.__exit__(*exc)

    def begin_stage(self, label: str) -> None:
        self.progress.update(self.stage_task, description=f"stage {label}")

    def end_stage(self) -> None:
        self.progress.advance(self.stage_task)

    def log(self, message: str) -> None:
        if self.enabled:
            self.progress.console.print(message)

    def _poll(self) -> None:
        tracker = self.spark.sparkContext.statusTracker()
        while not self._stop.wait(0.5):
            try:
                infos = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
            except Exception:  # noqa: BLE001 - the JVM may be shutting down; progress is best effort
                return
            infos = [i for i in infos if i is not None]
            if not infos:
                self.progress.update(self.spark_task, visible=False)
                continue
            total = sum(i.numTasks for i in infos)
            done = sum(i.numCompletedTasks for i in infos)
            names = ", ".join(f"{i.stageId}" for i in infos)
            self.progress.update(
                self.spark_task, visible=True, total=total, completed=done, description=f"spark stage {names}"
            )
