"""DuckDB cursors with limits: what lets one request's query never starve the others.

The app is reachable by anything that can make the browser send a request, so queries run on
per-request cursors of one DuckDB database (no lock held across a query), DuckDB reads the Parquet
files itself so that its memory limit covers the scan, and a query that runs past its time limit
is interrupted.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb

from jobs.web.errors import Busy


@dataclass(frozen=True)
class Limits:
    """What requests may cost. A scan stops at `timeout_s`; counts stop at `max_count` (the page says
    "more than"); at most `slots` queries run at once, sharing `threads` and one `memory_limit`, beyond
    which DuckDB spills at most `spill_limit` to a temporary folder of the app's own."""

    slots: int = 4
    threads: int = 2
    memory_limit: str = "1GB"
    spill_limit: str = "4GB"
    timeout_s: float = 10.0
    max_count: int = 1_000_000


class QueryPool:
    """Per-request cursors on one DuckDB database: a slow query holds its own cursor and slot, not a lock
    that every other request waits on; the database's memory limit bounds all of them together."""

    def __init__(self, limits: Limits):
        self.limits = limits
        spill = tempfile.mkdtemp(prefix="refinery-web-")  # never the user's working folder (DuckDB's default)
        weakref.finalize(self, shutil.rmtree, spill, ignore_errors=True)
        self._db = duckdb.connect(
            config={
                "threads": limits.threads,
                "memory_limit": limits.memory_limit,
                "temp_directory": spill,
                "max_temp_directory_size": limits.spill_limit,
            }
        )
        self._cursor_lock = threading.Lock()  # held only to create a cursor or note one, never during a query
        self._slots = threading.BoundedSemaphore(limits.slots)
        self._running: dict[int, str] = {}

    def running(self) -> list[str]:
        """The SQL of every query in flight now (for /healthz and for tests of concurrency)."""
        with self._cursor_lock:
            return list(self._running.values())

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if not self._slots.acquire(timeout=self.limits.timeout_s):
            raise Busy(f"all {self.limits.slots} query slots stayed busy for {self.limits.timeout_s:g} s")
        try:
            with self._cursor_lock:
                cur = self._db.cursor()
            try:
                yield cur
            finally:
                cur.close()
        finally:
            self._slots.release()

    def run(self, cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        """Execute with the time limit: a timer interrupts the cursor, which ends the scan."""
        timer = threading.Timer(self.limits.timeout_s, cur.interrupt)
        with self._cursor_lock:
            self._running[id(cur)] = sql
        timer.start()
        try:
            result = cur.execute(sql, params)
            names = [d[0] for d in result.description]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        except duckdb.InterruptException as exc:
            raise Busy(
                f"the query ran past its {self.limits.timeout_s:g} s limit; narrow the filters"
            ) from exc
        except duckdb.OutOfMemoryException as exc:
            raise Busy(
                f"the query needs more than the app's {self.limits.memory_limit} of memory "
                f"and {self.limits.spill_limit} of spill space; narrow the filters"
            ) from exc
        finally:
            timer.cancel()
            with self._cursor_lock:
                del self._running[id(cur)]
