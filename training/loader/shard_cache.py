"""Local copies of remote shard files, bounded in bytes, so the loader reads any fsspec URL through mmap."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from training.shards.format import ShardError


def is_remote(location: str) -> bool:
    """True for fsspec URLs other than plain local paths (file:// is treated as local)."""
    return "://" in location and not location.startswith("file://")


def local_path(location: str) -> Path:
    """The folder a local location (plain path or file:// URL) names."""
    return Path(location.removeprefix("file://"))


class ShardCache:
    """A local folder holding copies of remote shard files, bounded in bytes, least recently used out first.

    Files are downloaded under a temporary name and renamed, so concurrent workers never see half
    a file. Eviction only unlinks: a shard some process has memory-mapped stays readable (POSIX).
    """

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def fetch(self, url: str, size: int) -> Path:
        import fsspec

        local = self.directory / hashlib.sha1(url.encode()).hexdigest()[:20] / url.rsplit("/", 1)[-1]
        if local.is_file() and local.stat().st_size == size:
            os.utime(local)  # mark as recently used
            return local
        if size > self.max_bytes:
            raise ShardError(
                f"{url}: {size} bytes does not fit the shard cache bound of {self.max_bytes} bytes"
            )
        self._make_room(size)
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=local.parent, prefix=f".{local.name}.", suffix=".part")
        os.close(fd)
        try:
            fs, path = fsspec.core.url_to_fs(url)
            if not fs.exists(path):
                raise ShardError(f"shard file {url} is missing (listed in the manifest of its shard set)")
            fs.get_file(path, tmp)
            os.replace(tmp, local)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return local

    def _make_room(self, incoming: int) -> None:
        files = [p for p in self.directory.glob("*/*") if p.is_file() and not p.name.startswith(".")]
        stats = sorted(((p.stat().st_mtime, p.stat().st_size, p) for p in files), key=lambda t: t[0])
        total = sum(size for _, size, _ in stats)
        for _, size, path in stats:
            if total + incoming <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.directory.glob("*/*") if p.is_file())
