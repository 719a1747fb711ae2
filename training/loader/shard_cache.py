"""Local copies of remote shard files, bounded in bytes, so the loader reads object storage through mmap.

Remote files are fetched through the one I/O layer (`pipelines.framework.storage`, pyarrow.fs): s3://,
gs://, az:// and read-only http(s)://. It imports only pyarrow and pydantic, so the loader stays free
of Spark.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from pipelines.framework.storage import Location, with_retries
from training.shards.format import ShardError

COPY_CHUNK = 1 << 20
# A placeholder untouched this long belongs to a download whose process died (a live one writes at
# least every request timeout, 60 s): it is removed rather than counted against the bound forever.
STALE_PART_SECONDS = 600


def is_remote(location: Location) -> bool:
    """True for anything not on local disk (file:// URLs and plain paths are local)."""
    return not location.is_local


class ShardCache:
    """A local folder holding copies of remote shard files, bounded in bytes, least recently used out first.

    Files are downloaded under a temporary name and renamed, so concurrent workers never see half
    a file. Eviction only unlinks: a shard some process has memory-mapped stays readable (POSIX).
    Every process sharing the folder (DataLoader workers, ranks on one node) evicts and reserves the
    bytes of its download under one file lock, the reservation being a placeholder of the final size,
    so the folder stays within the bound together, not only per process.
    """

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def open(self, location: Location, size: int) -> BinaryIO:
        """An open handle on the local copy of `location` (`size` bytes, from the manifest), fetched if absent.

        A handle, not a path: another process sharing the folder may evict the file the moment after
        it is found or renamed into place, and only a file already open survives that (unlink keeps
        open files readable), so the copy is opened before it can be evicted.
        """
        local = self.directory / hashlib.sha1(location.url.encode()).hexdigest()[:20] / location.name
        cached = _open_if_complete(local, size)
        if cached is not None:
            return cached
        if size > self.max_bytes:
            raise ShardError(
                f"{location}: {size} bytes does not fit the shard cache bound of {self.max_bytes} bytes"
            )
        tmp = self._reserve(local, size)
        try:
            with_retries(lambda: _download(location, tmp), f"fetch {location}")
            if tmp.stat().st_size != size:
                raise ShardError(
                    f"shard file {location} has {tmp.stat().st_size} bytes, its manifest says {size}: "
                    "the shard set changed after it was committed; rebuild it"
                )
            handle = open(tmp, "rb")  # noqa: SIM115 (returned open: the caller maps it, then closes)
            os.replace(tmp, local)
        except FileNotFoundError:
            raise ShardError(
                f"shard file {location} is missing (listed in the manifest of its shard set)"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)
        return handle

    def _reserve(self, local: Path, size: int) -> Path:
        """Evict, then hold `size` bytes with a placeholder the download fills, all under the lock."""
        with self._locked():
            self._make_room(size)
            local.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=local.parent, prefix=f".{local.name}.", suffix=".part")
            try:
                os.ftruncate(fd, size)
            finally:
                os.close(fd)
        return Path(tmp)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _make_room(self, incoming: int) -> None:
        """Unlink finished files, least recently used first; other downloads' placeholders count but stay."""
        now = time.time()
        for path, st in self._files():
            if path.name.endswith(".part") and now - st.st_mtime > STALE_PART_SECONDS:
                path.unlink(missing_ok=True)
        files = self._files()
        total = sum(st.st_size for _, st in files)
        finished = [(st.st_mtime, st.st_size, p) for p, st in files if not p.name.startswith(".")]
        for _, size, path in sorted(finished):
            if total + incoming <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size

    def size(self) -> int:
        """Bytes in the cache, downloads in progress included at their final size."""
        return sum(st.st_size for _, st in self._files())

    def _files(self) -> list[tuple[Path, os.stat_result]]:
        """Files with their stat; one renamed or removed by another process meanwhile is skipped."""
        found = []
        for path in self.directory.glob("*/*"):
            try:
                found.append((path, path.stat()))
            except FileNotFoundError:
                continue
        return found


def _open_if_complete(local: Path, size: int) -> BinaryIO | None:
    """The cached copy opened and marked recently used, or None when absent, partial or just evicted."""
    try:
        handle = open(local, "rb")  # noqa: SIM115 (returned open, see ShardCache.open)
    except FileNotFoundError:
        return None
    if os.fstat(handle.fileno()).st_size != size:
        handle.close()
        return None
    with contextlib.suppress(FileNotFoundError):  # evicted since it was opened: the handle still reads it
        os.utime(local)
    return handle


def _download(location: Location, target: Path) -> None:
    """Stream one object into its placeholder in bounded memory (a retry starts over from byte 0).

    The placeholder is overwritten, not truncated first, so its reserved size stays counted until the
    end; it is cut to what was actually read, so a short object is caught by the size check.
    """
    with location.open_read() as source, open(target, "r+b") as out:
        shutil.copyfileobj(source, out, COPY_CHUNK)
        out.truncate()
