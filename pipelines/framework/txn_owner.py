"""Who owns an uncommitted write, whether it is still alive, and what a dead one left behind.

Every write transaction of a table has an owner file, `<table>/_staging/<txn>.owner.json`,
written before any of its data files and removed only after its commit (or discard). It names
the writer's host and pid, when it started, its latest heartbeat (rewritten every
HEARTBEAT_SECONDS while the transaction is open), and the data files already placed under the
table root. Data files of a transaction always carry its id: `part-...-<txn>.parquet`.

Orphan cleanup (`DeltaCommits.clean_orphans`, run before every stage writes) removes a
transaction's staging folder and its data files only when the transaction is dead:
- committed (its id is in the table's history): only the files its commit does not reference;
- same host: its pid no longer runs (exact, so a SIGKILL'd writer is cleaned at once);
- another host, or a host we cannot check (object storage shared by a cluster): its heartbeat
  is older than the grace period (REFINERY_ORPHAN_GRACE_S, default GRACE_SECONDS). A live
  writer rewrites its heartbeat far more often than that, so a concurrent writer's files,
  including ones it is about to commit, are never deleted. The price: a crashed remote
  writer's files stay until the grace period has passed.
Files are matched to a transaction by its id in their names, never by age or by listing
order, so a cleaner never touches a file of a transaction it did not judge dead.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from pipelines.framework.storage import Location

STAGING = "_staging"
OWNER_SUFFIX = ".owner.json"
HEARTBEAT_SECONDS = 30.0
GRACE_SECONDS = 600.0
GRACE_ENV = "REFINERY_ORPHAN_GRACE_S"


@dataclass
class Owner:
    """The content of an owner file."""

    host: str
    pid: int
    started: float
    heartbeat: float
    moved: list[str] = field(default_factory=list)

    def is_dead(self, now: float, grace: float) -> bool:
        if self.host == socket.gethostname():
            return not _pid_alive(self.pid)
        return now - self.heartbeat > grace


def grace_seconds() -> float:
    """How long a silent writer on another host counts as alive (see the module docstring)."""
    raw = os.environ.get(GRACE_ENV)
    if raw is None:
        return GRACE_SECONDS
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{GRACE_ENV} must be a number of seconds, not {raw!r}") from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_location(table_root: Location, txn: str) -> Location:
    return table_root / STAGING / f"{txn}{OWNER_SUFFIX}"


def read_owners(table_root: Location) -> dict[str, Owner | None]:
    """Every open transaction of the table: txn -> its owner.

    An owner file that cannot be read counts as a writer on an unknown host whose last heartbeat
    is the file's modification time: a read that failed by chance never condemns a live writer,
    and a damaged file is cleaned after the grace period.
    """
    owners: dict[str, Owner] = {}
    for entry in (table_root / STAGING).list(recursive=False):
        name = entry.location.name
        if not name.endswith(OWNER_SUFFIX):
            continue
        txn = name[: -len(OWNER_SUFFIX)]
        try:
            owners[txn] = Owner(**json.loads(entry.location.read_text()))
        except (OSError, ValueError, TypeError):
            seen = entry.mtime or 0.0
            owners[txn] = Owner("", -1, seen, seen)
    return owners


class Lease:
    """An open transaction's owner file, kept fresh by a heartbeat thread until it is released."""

    def __init__(self, table_root: Location, txn: str):
        now = time.time()
        self.location = owner_location(table_root, txn)
        self.owner = Owner(socket.gethostname(), os.getpid(), now, now)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._write()
        self._thread = threading.Thread(target=self._beat, name=f"refinery-txn-{txn[:8]}", daemon=True)
        self._thread.start()

    def _write(self) -> None:
        with self._lock:
            self.location.write_text(json.dumps(asdict(self.owner)))

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self.owner.heartbeat = time.time()
            try:
                self._write()
            except OSError:
                continue  # a missed beat is retried; the grace period spans many of them

    def record_moved(self, names: Iterable[str]) -> None:
        """Name the data files placed under the table root before they are (re)written anywhere."""
        self.owner.moved = list(names)
        self.owner.heartbeat = time.time()
        self._write()

    def release(self) -> None:
        """Stop the heartbeat and remove the owner file: the transaction is committed or discarded."""
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            self.location.delete()


_leases: dict[tuple[str, str], Lease] = {}
_leases_lock = threading.Lock()


def open_lease(table_root: Location, txn: str) -> Lease:
    lease = Lease(table_root, txn)
    with _leases_lock:
        _leases[(table_root.url, txn)] = lease
    return lease


def lease_of(table_root: Location, txn: str) -> Lease | None:
    """This process's lease on `txn`, if it opened one (staged writes commit later, elsewhere)."""
    with _leases_lock:
        return _leases.get((table_root.url, txn))


def release_lease(table_root: Location, txn: str) -> None:
    with _leases_lock:
        lease = _leases.pop((table_root.url, txn), None)
    if lease is not None:
        lease.release()
    else:
        owner_location(table_root, txn).delete()
