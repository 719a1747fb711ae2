"""What `benchmarks.scaling` measures inside one Spark session besides wall time: memory and shuffle.

Memory is sampled, not asked of Spark, because in local mode the "executors" are the one JVM
plus its Python workers, and Spark's own metrics see neither the Python workers nor the
driver's Python process. A thread walks this process's tree (/proc via psutil) every 0.2 s and
keeps, per sample, the RSS of the driver's Python process, of the JVM (driver and executor in
one), and the summed RSS of the Python workers, plus the JVM's used heap (Runtime over py4j), and
the CPU seconds the whole tree has used so far: on a shared machine wall time follows the others'
load, CPU time much less, so a stage's CPU seconds per document is the load-robust growth measure.

Shuffle bytes come from Spark's event log (task-end events carry shuffle write/read metrics),
which needs neither the UI's port nor a listener in the JVM. Both are attributed to a stage by
time window: the runner records each stage's start and end.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

MIB = 2**20


@dataclass
class Sample:
    """One observation of the process tree; RSS and heap in MiB."""

    at: float
    driver_py: float
    jvm: float
    workers: float
    workers_pss: float
    heap: float
    cpu: float = 0.0

    @property
    def total(self) -> float:
        return self.driver_py + self.jvm + self.workers


@dataclass
class TreeSampler:
    """Samples this process's tree on a daemon thread until stopped (a context manager)."""

    heap_used: Callable[[], float] = lambda: 0.0
    period: float = 0.2
    samples: list[Sample] = field(default_factory=list)

    def __enter__(self) -> TreeSampler:
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scaling-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        me = psutil.Process()
        heap_every, tick = 5, 0  # the heap over py4j every second: a JVM call is not free
        heap = 0.0
        while not self._done.is_set():
            if tick % heap_every == 0:
                with contextlib.suppress(Exception):  # the JVM is starting or stopping: keep the last value
                    heap = self.heap_used()
            tick += 1
            self.samples.append(_observe(me, heap))
            time.sleep(self.period)


def _observe(me: psutil.Process, heap: float) -> Sample:
    """RSS of the driver, of java processes and of every other (Python worker) process in the tree.

    The workers are forked from one daemon and share its pages, so their summed RSS counts those
    pages once per worker; their PSS (shared pages split among the sharers) is kept beside it.
    Processes the JVM forks to run `chmod`, `ls` or `rm` show the JVM's whole RSS until they exec
    (found by benchmarks.dedup_million), so only Python processes count as workers and only a java
    process whose parent is not java counts as the JVM.
    """
    jvm = workers = workers_pss = 0.0
    cpu = _cpu_seconds(me)
    for child in me.children(recursive=True):
        try:
            cpu += _cpu_seconds(child)
            name = child.name()
            if name.startswith("java") and not _forked_by_java(child):
                jvm += child.memory_info().rss / MIB
            elif "python" in name:
                full = child.memory_full_info()
                workers += full.rss / MIB
                workers_pss += full.pss / MIB
        except psutil.Error:  # a worker exited between the listing and the read
            continue
    return Sample(time.time(), me.memory_info().rss / MIB, jvm, workers, workers_pss, heap, cpu)


def _forked_by_java(process: psutil.Process) -> bool:
    """True for a JVM's own short-lived child (a fork not yet replaced by its command)."""
    parent = process.parent()
    return parent is not None and parent.name().startswith("java")


def _cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU of the process and of its children it has reaped (Python workers that
    exited are counted in the daemon that forked them, so no worker's time is lost or counted twice)."""
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def cpu_between(samples: list[Sample], start: float, end: float) -> float:
    """CPU seconds the tree used in [start, end]: the last sample before each bound, differenced."""
    before = [s.cpu for s in samples if s.at <= start]
    upto = [s.cpu for s in samples if s.at <= end]
    return round(max(0.0, (upto[-1] if upto else 0.0) - (before[-1] if before else 0.0)), 2)


def jvm_heap_used(spark: object) -> Callable[[], float]:
    """A callable giving the driver JVM's used heap in MiB (local mode: executors share it)."""
    runtime = spark.sparkContext._jvm.java.lang.Runtime.getRuntime()  # type: ignore[attr-defined]

    def used() -> float:
        return (runtime.totalMemory() - runtime.freeMemory()) / MIB

    return used


def peaks(samples: Iterable[Sample], start: float, end: float) -> dict[str, float]:
    """Largest value of each measure over the samples taken in [start, end] (MiB)."""
    inside = [s for s in samples if start <= s.at <= end]
    names = ("driver_py", "jvm", "workers", "workers_pss", "heap", "total")
    if not inside:
        return {name: 0.0 for name in names}
    return {name: round(max(getattr(s, name) for s in inside), 1) for name in names}


def task_shuffle(event_dir: Path) -> list[tuple[float, int, int]]:
    """(task end time in s, shuffle bytes written, shuffle bytes read) of every finished task."""
    logs = [p for p in event_dir.rglob("*") if p.is_file() and not p.name.startswith("appstatus")]
    if not logs:
        raise RuntimeError(f"no Spark event log in {event_dir}")
    rows = []
    for log in logs:
        rows += _task_rows(log)
    return rows


def _task_rows(log: Path) -> list[tuple[float, int, int]]:
    rows = []
    with log.open() as handle:
        for line in handle:
            if '"SparkListenerTaskEnd"' not in line:
                continue
            event = json.loads(line)
            metrics = event.get("Task Metrics") or {}
            written = (metrics.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0)
            read = metrics.get("Shuffle Read Metrics") or {}
            got = read.get("Remote Bytes Read", 0) + read.get("Local Bytes Read", 0)
            rows.append((event["Task Info"]["Finish Time"] / 1000, int(written), int(got)))
    return rows


def shuffle_in(tasks: Iterable[tuple[float, int, int]], start: float, end: float) -> dict[str, int]:
    """Tasks, shuffle bytes written and read by the tasks that finished in [start, end]."""
    inside = [t for t in tasks if start <= t[0] <= end]
    return {
        "tasks": len(inside),
        "shuffle_write_bytes": sum(t[1] for t in inside),
        "shuffle_read_bytes": sum(t[2] for t in inside),
    }
