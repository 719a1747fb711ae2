"""Opening an input file wherever it lives: local disk, object storage (s3, gs, az) or HTTP(S).

Remote files are streamed through the I/O layer (pipelines/framework/storage.py), never copied
whole to local disk. A crawl read over the network meets dropped connections and throttling, so a
remote stream is a `ResumingStream`: a read that fails with a transient error, or a body that ends
before the file's size, is retried with bounded exponential backoff by re-opening the file *at the
byte reached* (a ranged GET), not from the start. A read that still fails raises `InputReadError`
with the URL and that byte offset; readers.read_file turns it into a quarantine row and the run goes
on with the next file. (storage.with_retries is the same backoff, but a resumed read needs the
offset it failed at, a hook to drop the broken stream, and http.client's own errors.)

Local files are opened with the operating system's own calls: a local name may be any bytes (a
surrogate-escaped str), which pyarrow's filesystem cannot encode, and local disk has no transient
errors worth a retry.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from email.utils import parsedate_to_datetime
from typing import IO, Any

from pipelines.framework.storage import TRANSIENT_ERRORS, Location
from pipelines.framework.storage_settings import StorageError, StorageSettings, scrub
from pipelines.framework.storage_urls import HTTP_SCHEMES, URL

# Errors after which a read is tried again: the I/O layer's transient ones and http.client's own
# (a body cut short raises IncompleteRead, which is not an OSError).
RETRY_ERRORS = (*TRANSIENT_ERRORS, http.client.HTTPException)
ATTEMPTS = 4
BASE_DELAY = 0.5
HTTP_TIMEOUT = 60
# HTTP statuses that no retry will change.
GONE = (404, 410)
# Bytes a buffered input stream holds (and asks a remote server for) per read.
BUFFER = 1 << 20


class InputReadError(Exception):
    """A remote read that still failed after its retries (not an OSError, so that no reader mistakes
    it for a damaged compressed stream): `offset` is the byte of the file the read stopped at."""

    def __init__(self, url: str, offset: int, cause: BaseException, attempts: int):
        self.url, self.offset = url, offset
        super().__init__(f"{url}: read failed at byte {offset} after {attempts} attempts: {describe(cause)}")


def describe(exc: BaseException) -> str:
    """`Type: message` of an error, with any live credential replaced by ***."""
    return scrub(f"{type(exc).__name__}: {exc}")


def is_remote(path: str) -> bool:
    """Whether `path` is a URL of object storage or HTTP(S) rather than a local path."""
    match = URL.match(path)
    return bool(match) and match.group(1).lower() != "file"


def shown_url(url: str) -> str:
    """A URL as it may be stored and shown: no user:password, query or fragment (a signed URL's
    query string is a credential). Other paths and URLs are returned as they are: an object key may
    hold `?` or `#`."""
    match = URL.match(url)
    if not match or match.group(1).lower() not in HTTP_SCHEMES:
        return url
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def input_size(path: str, settings: StorageSettings | None = None) -> int | None:
    """The file's size in bytes; None for an HTTP(S) file whose server does not say."""
    if not is_remote(path):
        return os.path.getsize(path)
    return _retried(path, 0, lambda: _remote_size(Location.parse(path, settings)))


def http_head(url: str) -> tuple[int | None, int | None]:
    """(size, modification time in ns) an HTTP(S) server states for `url`, each None if it does not."""
    return _retried(url, 0, lambda: _head(url))


def _head(url: str) -> tuple[int | None, int | None]:
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "refinery"})
    with _http_call(url, request) as response:
        length = response.headers.get("Content-Length")
        modified = response.headers.get("Last-Modified")
    mtime = int(parsedate_to_datetime(modified).timestamp() * 1e9) if modified else None
    return (int(length) if length and length.isdigit() else None), mtime


def _remote_size(loc: Location) -> int | None:
    return _head(loc.url)[0] if loc.scheme in HTTP_SCHEMES else loc.size()


def open_input(path: str, settings: StorageSettings | None = None, size: int | None = None) -> IO[bytes]:
    """A buffered binary stream of the file's bytes: the OS file locally, a ResumingStream remotely."""
    if not is_remote(path):
        return open(path, "rb", buffering=BUFFER)  # noqa: SIM115 - the caller closes it
    return io.BufferedReader(ResumingStream(Location.parse(path, settings), size), BUFFER)


def open_random_access(path: str, settings: StorageSettings | None = None) -> Any:
    """A seekable file for pyarrow (Parquet footers); local paths go to pyarrow as they are."""
    return path if not is_remote(path) else _retried(path, 0, Location.parse(path, settings).open_random)


class ResumingStream(io.RawIOBase):
    """A remote file read front to back, re-opened at the byte reached when a read fails or the
    body ends before `size` (see the module docstring)."""

    def __init__(self, loc: Location, size: int | None):
        self._loc = loc
        self._size = size
        self._pos = 0
        self._stream: Any = _retried(loc.url, 0, lambda: self._open(0))

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        data = _retried(self._loc.url, self._pos, lambda: self._read(len(buffer)), self._drop)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _read(self, size: int) -> bytes:
        if self._stream is None:
            self._stream = self._open(self._pos)
        data = self._stream.read(size)
        if not data and size and self._size is not None and self._pos < self._size:
            raise ConnectionError(f"body ended at byte {self._pos} of {self._size}")
        return data

    def _open(self, offset: int) -> Any:
        """The file from byte `offset` on. Object storage: a random-access file (ranged GETs, and
        the bytes as stored: pyarrow's input *stream* would gunzip a `.gz` by its name)."""
        if self._loc.scheme in HTTP_SCHEMES:
            response = _http_get(self._loc.url, offset)
            length = response.headers.get("Content-Length", "")
            if self._size is None and not offset and length.isdigit():
                self._size = int(length)  # http.client ends a cut body quietly: only this tells
            return response
        stream = self._loc.open_random()
        if self._size is None:
            self._size = stream.size()
        if offset:
            stream.seek(offset)
        return stream

    def _drop(self) -> None:
        """Forget a broken stream; the next attempt opens a new one at the same byte."""
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(RETRY_ERRORS):
                stream.close()

    def close(self) -> None:
        self._drop()
        super().close()


def _retried(url: str, offset: int, action: Any, on_error: Any = None) -> Any:
    """`action()`, retried on transient errors with exponential backoff; InputReadError at the end.
    A missing file (FileNotFoundError) is not retried: no wait makes it appear."""
    for attempt in range(ATTEMPTS):
        try:
            return action()
        except FileNotFoundError:
            raise
        except RETRY_ERRORS as exc:
            if on_error is not None:
                on_error()
            if attempt == ATTEMPTS - 1 or isinstance(exc, _Permanent):
                raise InputReadError(shown_url(url), offset, exc, attempt + 1) from None
            time.sleep(BASE_DELAY * 2**attempt)
    raise AssertionError("unreachable")


class _Permanent(StorageError):
    """An HTTP answer no retry will change (403, 416 ...)."""


def _http_get(url: str, offset: int) -> Any:
    """A GET of `url` from byte `offset`; a server that ignores Range has the skipped part read past."""
    headers = {"User-Agent": "refinery"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    response = _http_call(url, urllib.request.Request(url, headers=headers))
    if offset and response.status != 206:
        skipped = 0
        while skipped < offset and (chunk := response.read(min(1 << 20, offset - skipped))):
            skipped += len(chunk)
    return response


def _http_call(url: str, request: urllib.request.Request) -> Any:
    """urlopen, with its errors sorted: gone (404, 410), permanent (other 4xx) or transient."""
    try:
        return urllib.request.urlopen(request, timeout=HTTP_TIMEOUT)  # noqa: S310 - http(s) only here
    except urllib.error.HTTPError as exc:
        if exc.code in GONE:
            raise FileNotFoundError(f"{shown_url(url)}: HTTP {exc.code}") from None
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise _Permanent(f"{shown_url(url)}: HTTP {exc.code} {exc.reason}") from None
        raise
