"""The one I/O layer: every byte of the lake, of raw inputs and of shard sets goes through here.

Why pyarrow.fs and not fsspec (docs/cluster.md, "Object storage"):
- Its S3, GCS and Azure filesystems are native C++ with no Python object inside. Arrow's I/O threads
  never wait for the GIL, which is what killed processes at exit before (pipelines/framework/lake.py,
  `snapshot_dataset`).
- pyarrow.parquet and pyarrow.dataset take the same objects, so table reads, Parquet writes and
  footers need no adapter.
- It streams: `open_input_stream` reads a WARC of any size in bounded memory.
- It ships in the pyarrow wheel we already depend on, with no extra dependency and no Hadoop connector.

HTTP(S) inputs are read-only streams through urllib; nothing can be listed or written there.

A `Location` is a URL plus the *settings* for reaching it, never the credentials. Credentials are
read from environment variables, named in the settings, by each process that builds a filesystem.
So a pickled Location can travel to Spark executors, and no record, log or error ever holds a
secret. `scrub` removes the live credential values from any text that leaves the process, as a
second guard.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import pyarrow.fs as pa_fs
from pyarrow import ArrowInvalid

from pipelines.framework import storage_urls as urls
from pipelines.framework.storage_clients import delta_storage_options, filesystem
from pipelines.framework.storage_settings import StorageError, StorageSettings, active_settings
from pipelines.framework.storage_urls import HTTP_SCHEMES, URL, split_url

TRANSIENT_ERRORS = (OSError, TimeoutError, ConnectionError)
T = TypeVar("T")
# Reads of an object replaced while it was read (see `read_parsed`), and the pause before each retry.
TORN_READ_ATTEMPTS = 8
TORN_READ_PAUSE_S = 0.05


@dataclass(frozen=True)
class FileEntry:
    """A listed file: where it is, its size in bytes, and its modification time (seconds, or None)."""

    location: Location
    size: int
    mtime: float | None

    @property
    def name(self) -> str:
        """The file's name, as a listed pathlib.Path would give it."""
        return self.location.name


@dataclass(frozen=True)
class Location:
    """A file or folder on local disk, object storage or HTTP(S). Picklable; holds no secret.

    `url` is canonical: an absolute path for local disk, `scheme://bucket/key` otherwise.
    """

    url: str
    settings: StorageSettings = field(default_factory=active_settings, compare=False)

    @classmethod
    def parse(
        cls, value: str | os.PathLike[str] | Location, settings: StorageSettings | None = None
    ) -> Location:
        if isinstance(value, Location):
            return value
        scheme, path = split_url(os.fspath(value))
        url = path if scheme == "file" else f"{scheme}://{path}"
        return cls(url, settings or active_settings())

    # ------------------------------------------------------------------ naming
    @property
    def scheme(self) -> str:
        match = URL.match(self.url)
        return match.group(1) if match else "file"

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @property
    def fs_path(self) -> str:
        """The path the filesystem takes: `/abs/path` or `bucket/key`."""
        return self.url if self.is_local else self.url.split("://", 1)[1]

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> Location:
        head = self.url.rstrip("/").rsplit("/", 1)[0]
        return Location(head or "/", self.settings)

    def __truediv__(self, part: str) -> Location:
        pieces = [p for p in str(part).split("/") if p and p != "."]
        if ".." in pieces:
            raise ValueError(f"{part!r} would leave {self.url}")
        return Location("/".join([self.url.rstrip("/"), *pieces]), self.settings)

    def relative_to(self, other: Location) -> str:
        base = other.url.rstrip("/") + "/"
        if not self.url.startswith(base):
            raise ValueError(f"{self.url} is not under {other.url}")
        return self.url[len(base) :]

    def local_path(self) -> Path:
        """The local path, for the few callers that hand a file to a library taking only paths."""
        if not self.is_local:
            raise StorageError(f"{self.url} is not on local disk")
        return Path(self.url)

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"Location({self.url!r})"

    def __fspath__(self) -> str:
        return str(self.local_path())

    # -------------------------------------------------------------- filesystem
    @property
    def fs(self) -> Any:
        """The pyarrow filesystem for this location (built once per process)."""
        if self.scheme in HTTP_SCHEMES:
            raise StorageError(f"{self.url}: http(s) locations can only be opened for reading")
        return filesystem(self.scheme, self.settings)

    def delta_storage_options(self) -> dict[str, str]:
        """Options for delta-rs. They hold credentials: pass them to deltalake only, never print them.

        Every table access asks for them, so a URL delta-rs would read elsewhere stops here."""
        if problem := urls.lake_url_problem(self.url):
            raise urls.UrlError(problem)
        return delta_storage_options(self.scheme, self.settings)

    def _info(self) -> Any:
        return self._call("inspect", lambda: self.fs.get_file_info(self.fs_path))

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        """Run a filesystem call; an error says which URL and, for object storage, what to check."""
        try:
            return fn()
        except FileNotFoundError:
            raise
        except (OSError, ArrowInvalid) as exc:  # ArrowInvalid: a key pyarrow refuses, e.g. `a//b`
            hint = "" if self.is_local else " (check the endpoint, bucket and credentials: docs/cluster.md)"
            cause = urls.store_error(str(exc), self.settings, self.scheme)
            raise StorageError(f"cannot {action} {self.url}: {cause}{hint}") from None

    def exists(self) -> bool:
        if self.scheme in HTTP_SCHEMES:
            return True
        return self._info().type != pa_fs.FileType.NotFound

    def is_file(self) -> bool:
        return self.scheme in HTTP_SCHEMES or self._info().type == pa_fs.FileType.File

    def is_dir(self) -> bool:
        """A folder; on object storage, a prefix that holds at least one object."""
        return self._info().type == pa_fs.FileType.Directory

    def size(self) -> int:
        info = self._info()
        if info.type != pa_fs.FileType.File:
            raise FileNotFoundError(f"no file at {self.url}")
        return int(info.size)

    def list(self, recursive: bool = True) -> list[FileEntry]:
        """Files below this folder, sorted by URL; an absent folder lists nothing."""
        selector = pa_fs.FileSelector(self.fs_path, recursive=recursive, allow_not_found=True)
        infos = self._call("list", lambda: self.fs.get_file_info(selector))
        base = self.url.rstrip("/")
        prefix = self.fs_path.rstrip("/")
        entries = [
            FileEntry(
                Location(base + info.path[len(prefix) :], self.settings),
                int(info.size),
                None if info.mtime is None else info.mtime.timestamp(),
            )
            for info in infos
            if info.type == pa_fs.FileType.File
        ]
        return sorted(entries, key=lambda e: e.location.url)

    def children(self) -> list[Location]:
        """Direct sub-folders (on object storage: common prefixes)."""
        if self.scheme == "gs":
            # pyarrow's GCS listing reports a sub-folder only where a marker object names it, and
            # nothing here writes markers: derive the folders from the files below, at the cost of
            # listing all of them (one request per thousand).
            below = (e.location.relative_to(self).split("/", 1) for e in self.list())
            names = {parts[0] for parts in below if len(parts) == 2}
            return sorted((self / name for name in names), key=lambda loc: loc.url)
        selector = pa_fs.FileSelector(self.fs_path, recursive=False, allow_not_found=True)
        infos = self._call("list", lambda: self.fs.get_file_info(selector))
        return sorted(
            (self / info.base_name for info in infos if info.type == pa_fs.FileType.Directory),
            key=lambda loc: loc.url,
        )

    def glob(self, pattern: str) -> list[FileEntry]:
        """Files below this folder whose path relative to it matches `pattern` (`**` spans folders)."""
        regex = urls.glob_regex(pattern)
        return [e for e in self.list(recursive=True) if regex.match(e.location.relative_to(self))]

    # -------------------------------------------------------------- reading
    def open_read(self) -> IO[bytes]:
        """A streaming binary reader (never the whole object in memory)."""
        if self.scheme in HTTP_SCHEMES:
            return _http_open(self.url)
        # compression=None: the bytes as stored (pyarrow would otherwise gunzip a `.gz` by its name).
        return self._call("read", lambda: self.fs.open_input_stream(self.fs_path, compression=None))

    def open_random(self) -> Any:
        """A seekable reader (Parquet footers, index files)."""
        if self.scheme in HTTP_SCHEMES:
            raise StorageError(f"{self.url}: http(s) inputs are read as streams only")
        return self._call("read", lambda: self.fs.open_input_file(self.fs_path))

    def read_bytes(self) -> bytes:
        with self.open_read() as stream:
            return stream.read()

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def read_parsed(self, parse: Callable[[bytes], T]) -> T:
        """`parse` of the whole file, read again while it does not parse (ValueError) on object storage.

        Why: pyarrow reads an object by asking its size, then GETting that many bytes. An object
        replaced in between (a run record its runner rewrites) comes back cut short or spliced from two
        versions, which a reader of records must not take for the record (measured on the test S3
        server: a quarter of the reads racing a writer). A whole version parses; a torn one fails to,
        and is read again. Local files are replaced by rename and never torn: their error is raised.
        """
        attempt = 1
        while True:
            try:
                return parse(self.read_bytes())
            except ValueError:
                if self.is_local or attempt >= TORN_READ_ATTEMPTS:
                    raise
            time.sleep(TORN_READ_PAUSE_S * attempt)
            attempt += 1

    # -------------------------------------------------------------- writing
    def open_write(self) -> Any:
        """A streaming writer. On object storage the object appears only when it is closed."""
        self.parent.make_dirs()
        # compression=None: the bytes as given (pyarrow would otherwise gzip them again for a `.gz` name).
        return self._call("write", lambda: self.fs.open_output_stream(self.fs_path, compression=None))

    def write_bytes(self, data: bytes) -> None:
        """Replace the file in one step: readers see the old or the new content, never a part."""
        if not self.is_local:
            with self.open_write() as out:
                out.write(data)
            return
        self.parent.make_dirs()
        tmp = Path(f"{self.url}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, self.url)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def make_dirs(self) -> None:
        """Create the folder (object storage has none to create)."""
        if self.is_local:
            os.makedirs(self.url, exist_ok=True)

    def move_to(self, dest: Location) -> None:
        """Local: an atomic rename. Object storage: copy then delete (no rename exists there)."""
        if self.is_local and dest.is_local:
            dest.parent.make_dirs()
            os.replace(self.url, dest.url)
            return
        # Copy then delete, spelled out: pyarrow's Move is that on S3 and GCS, but is not implemented
        # for Azure accounts without a hierarchical namespace (the default kind, and Azurite).
        self._call("move", lambda: self.fs.copy_file(self.fs_path, dest.fs_path))
        self._call("move", lambda: self.fs.delete_file(self.fs_path))

    def delete(self) -> None:
        """Remove the file; an absent file is not an error."""
        try:
            self.fs.delete_file(self.fs_path)
        except FileNotFoundError:
            return

    def require_writable(self) -> None:
        """What a run needs of its lake before it records anything: on disk, the folder exists or can be
        made (a lake under a file or an unwritable folder is named here, not as an OSError mid-run); on
        object storage, the URL is one delta-rs reads alike and the bucket is reachable."""
        if not self.is_local:
            self.delta_storage_options()
            self.require_reachable()
            return
        try:
            self.make_dirs()
        except OSError as exc:
            raise StorageError(
                f"cannot use {self.url} as the lake: {exc.strerror or exc}; set `lake:` in the spec "
                "(or --lake / REFINERY_LAKE) to a folder you can write"
            ) from None
        if not os.access(self.url, os.W_OK | os.X_OK):
            raise StorageError(
                f"cannot write the lake folder {self.url}: set `lake:` to a folder you can write"
            )

    def require_reachable(self) -> None:
        """Fail fast, naming the URL and what to set, when the bucket or endpoint is wrong.

        Object stores have no folders, so a lake that does not exist yet is fine; its bucket must.
        """
        if self.is_local or self.scheme in HTTP_SCHEMES:
            return
        bucket = self.fs_path.split("/", 1)[0]
        endpoint = self.settings.resolved_endpoint(self.scheme) or "the provider's default endpoint"
        hint = self.settings.setup_hint(self.scheme)
        try:
            info = self.fs.get_file_info(bucket)
        except (OSError, ArrowInvalid) as exc:
            cause = urls.store_error(str(exc), self.settings, self.scheme)
            raise StorageError(f"cannot reach {self.url} at {endpoint}: {cause}. {hint}") from None
        if info.type != pa_fs.FileType.NotFound:
            return
        if self.scheme == "s3" and endpoint.startswith("http") and (why := _not_s3(endpoint, bucket)):
            raise StorageError(
                f"the endpoint {endpoint} of {self.url} does not look like S3: {why}. "
                "Set AWS_ENDPOINT_URL (or storage.endpoint) to the S3 server's URL"
            )
        raise StorageError(
            f"bucket {bucket!r} of {self.url} does not exist at {endpoint}: create it, or fix the lake URL. {hint}"
        )

    def delete_tree(self) -> None:
        """Remove the folder and everything below it; an absent folder is not an error."""
        if self._info().type == pa_fs.FileType.NotFound:
            return
        if self.scheme == "gs":
            # pyarrow's GCS DeleteDir ends by deleting the folder's marker object, and fails where
            # there is none (nothing here writes markers): remove what is below instead.
            self._call("delete", lambda: self.fs.delete_dir_contents(self.fs_path, missing_dir_ok=True))
            return
        self._call("delete", lambda: self.fs.delete_dir(self.fs_path))


def _not_s3(endpoint: str, bucket: str) -> str | None:
    """Why `endpoint`, which answered 404 for `bucket`, is no S3 server (pyarrow reads any 404 as a
    missing bucket: "create it"); None where it may be one (see `is_s3_answer`)."""
    request = urllib.request.Request(f"{endpoint.rstrip('/')}/{bucket}", headers={"User-Agent": "refinery"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the endpoint's own URL
            headers, body = answer.headers, answer.read(4096)
    except urllib.error.HTTPError as exc:
        headers, body = exc.headers, exc.read(4096)
    except OSError as exc:
        return f"it does not answer HTTP ({getattr(exc, 'reason', exc)})"
    return None if urls.is_s3_answer(list(headers.keys()), body) else "it answers HTTP, but not as S3 does"


def _http_open(url: str) -> IO[bytes]:
    request = urllib.request.Request(url, headers={"User-Agent": "refinery"})
    try:
        return urllib.request.urlopen(request, timeout=60)  # noqa: S310 - the scheme is checked as http(s)
    except OSError as exc:
        raise StorageError(f"cannot read {url}: {exc}") from None


def with_retries(action: Callable[[], T], what: str, attempts: int = 4, base_delay: float = 0.5) -> T:
    """Run `action`, retrying transient I/O errors with exponential backoff a bounded number of times.

    The last error propagates, so the caller decides whether it becomes a quarantine row.
    """
    for attempt in range(attempts):
        try:
            return action()
        except FileNotFoundError:
            raise
        except TRANSIENT_ERRORS:
            if attempt == attempts - 1:
                raise
            time.sleep(base_delay * 2**attempt)
    raise AssertionError(f"unreachable: {what}")
