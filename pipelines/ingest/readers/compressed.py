"""Decompressing streams with bounded memory, linear time and a compression-bomb guard.

Every read hands out at most the caller's buffer size: the decompressor is asked for that
many bytes (`max_length`, brotli's `output_buffer_limit`, zstd's `read(size)`), and the
compressed input it has not consumed yet stays in the decompressor, so no buffer is ever
sliced or re-concatenated. A 2 GB line from a 2 MB gzip therefore costs one read buffer of
memory and time proportional to the bytes actually inflated, not quadratic in them.

Each stream counts what it produced against a limit, `max_compression_ratio` times the
compressed file size (never below BOMB_FLOOR_BYTES, so small highly repetitive files pass),
and raises CompressionBomb as soon as it is passed: the rest of the file is never inflated.
Damaged streams keep the reader's contract of base.py: every byte inflated before the damage
is handed out first, the error comes on the read after.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import brotli
import zstandard

from pipelines.framework.storage_settings import StorageSettings
from pipelines.ingest.readers.source import BUFFER, input_size, open_input

# Compressed bytes pulled from the file per step; the output per read is the caller's buffer.
INPUT_CHUNK = 64 << 10
DEFAULT_MAX_COMPRESSION_RATIO = 500.0
# Below this many decompressed bytes no file is a bomb, whatever its ratio.
BOMB_FLOOR_BYTES = 64 << 20
COMPRESSED_SUFFIXES = (".gz", ".zst", ".bz2", ".xz")

# Errors a damaged compressed stream raises while being read.
STREAM_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, zstandard.ZstdError, brotli.error)


class CompressionBomb(Exception):
    """The stream inflated past its limit: far more output than a real file of its size holds."""


def inflate_limit(compressed_size: int, max_ratio: float) -> int:
    """How many bytes a file of `compressed_size` may inflate to before it counts as a bomb."""
    return max(BOMB_FLOOR_BYTES, int(compressed_size * max_ratio))


class _Inflating(io.RawIOBase):
    """A raw stream over a compressed file: `_inflate(size)` gives at most `size` new bytes,
    b"" at the clean end; this class counts them against the bomb limit."""

    def __init__(self, fh: Any, limit: int):
        self._fh = fh
        self._limit = limit
        self.produced = 0

    @property
    def compressed_read(self) -> int:
        """Compressed bytes taken from the file so far (how far into it the bomb guard stopped)."""
        return self._fh.tell()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not len(buffer):
            return 0  # a max_length of 0 would mean "no limit" to zlib
        out = self._inflate(len(buffer))
        self.produced += len(out)
        if self.produced > self._limit:
            raise CompressionBomb(
                f"inflated past {self._limit} bytes after {self.compressed_read} compressed bytes"
            )
        buffer[: len(out)] = out
        return len(out)

    @abstractmethod
    def _inflate(self, size: int) -> bytes:
        """At most `size` inflated bytes (never unbounded); b"" once the stream has ended."""

    def close(self) -> None:
        self._fh.close()
        super().close()


class GzipStream(_Inflating):
    """Multi-member gzip. Unlike `gzip.GzipFile`, the output of the read that meets a cut end is
    delivered; EOFError comes on the next read, so the lines before a cut are kept."""

    def __init__(self, fh: Any, limit: int, wbits: int = 31):
        super().__init__(fh, limit)
        self._wbits = wbits  # 31: gzip; 47: gzip or zlib header (HTTP's "deflate")
        self._member = zlib.decompressobj(wbits)
        self._input = b""
        self._fresh = True  # the current member has not been given a byte yet

    def _inflate(self, size: int) -> bytes:
        while True:
            if self._member.eof:
                self._input = self._input or self._fh.read(INPUT_CHUNK)
                if not self._input:
                    return b""
                self._member, self._fresh = zlib.decompressobj(self._wbits), True
            if not self._input:
                self._input = self._fh.read(INPUT_CHUNK)
                if not self._input:
                    if self._fresh:
                        return b""
                    raise EOFError("compressed stream ends before its end-of-stream marker (truncated gzip)")
            out = self._member.decompress(self._input, size)
            self._fresh = False
            self._input = self._member.unused_data if self._member.eof else self._member.unconsumed_tail
            if out:
                return out


class ChainedStream(_Inflating):
    """bz2 or xz/lzma, possibly several streams back to back (as `bzip2`/`xz` concatenate)."""

    def __init__(self, fh: Any, limit: int, factory: Callable[[], Any]):
        super().__init__(fh, limit)
        self._factory = factory
        self._decoder = factory()
        self._input = b""
        self._fresh = True

    def _inflate(self, size: int) -> bytes:
        while True:
            if self._decoder.eof:
                self._input = self._decoder.unused_data or self._fh.read(INPUT_CHUNK)
                if not self._input:
                    return b""
                self._decoder, self._fresh = self._factory(), True
            data = b""
            if self._decoder.needs_input:
                data, self._input = self._input or self._fh.read(INPUT_CHUNK), b""
                if not data:
                    if self._fresh:
                        return b""
                    raise EOFError("compressed stream ends before its end-of-stream marker")
                self._fresh = False
            out = self._decoder.decompress(data, size)
            if out:
                return out


class ZstdStream(_Inflating):
    """zstd, every frame of the file (zstandard's reader stops after the first one by default).

    zstandard's reader ends quietly where a cut file ends, even inside a frame; the bytes it
    pulls pass through `ZstdFraming`, so a cut is an EOFError like a cut gzip's, not a short file."""

    def __init__(self, fh: Any, limit: int):
        super().__init__(fh, limit)
        self._framing = ZstdFraming(fh)
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            self._framing, read_size=INPUT_CHUNK, read_across_frames=True, closefd=False
        )

    def _inflate(self, size: int) -> bytes:
        out = self._reader.read(size)
        if not out and not self._framing.between_frames:
            raise EOFError("compressed stream ends inside a zstd frame (truncated file)")
        return out


ZSTD_MAGIC = 0xFD2FB528
SKIPPABLE_MAGIC = 0x184D2A50  # 0x184D2A50-0x184D2A5F: a frame of metadata a decoder skips
RLE_BLOCK, RESERVED_BLOCK = 1, 3


class ZstdFraming:
    """The compressed file as zstandard reads it, with zstd's frame and block headers walked as the
    bytes pass (RFC 8878, sections 3.1.1-3.1.2): no decompression, a few bytes of state, and at the
    end it knows whether the input stopped between frames or inside one. A structure it does not
    recognise leaves the verdict to the decoder, which rejects such input itself."""

    def __init__(self, fh: Any):
        self._fh = fh
        self._header = bytearray()
        self._skip = 0  # payload bytes to pass unread
        self._expect(4, self._magic)
        self._checksum = False
        self._lost = False

    @property
    def between_frames(self) -> bool:
        return self._lost or (self._step == self._magic and not self._header and not self._skip)

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        if not self._lost:
            self._feed(data)
        return data

    def _expect(self, need: int, step: Callable[[bytes], None]) -> None:
        self._need, self._step = need, step

    def _feed(self, data: bytes) -> None:
        i = 0
        while i < len(data) and not self._lost:
            if self._skip:
                taken = min(self._skip, len(data) - i)
                self._skip -= taken
                i += taken
                continue
            taken = min(self._need - len(self._header), len(data) - i)
            self._header += data[i : i + taken]
            i += taken
            if len(self._header) == self._need:
                header = bytes(self._header)
                self._header.clear()
                self._step(header)

    def _magic(self, header: bytes) -> None:
        magic = int.from_bytes(header, "little")
        if magic == ZSTD_MAGIC:
            self._expect(1, self._descriptor)
        elif magic & 0xFFFFFFF0 == SKIPPABLE_MAGIC:
            self._expect(4, self._skippable)
        else:
            self._lost = True

    def _skippable(self, header: bytes) -> None:
        self._skip = int.from_bytes(header, "little")
        self._expect(4, self._magic)

    def _descriptor(self, header: bytes) -> None:
        descriptor = header[0]
        single_segment = descriptor >> 5 & 1
        self._checksum = bool(descriptor >> 2 & 1)
        content_size = (single_segment, 2, 4, 8)[descriptor >> 6]
        rest = (1 - single_segment) + (0, 1, 2, 4)[descriptor & 3] + content_size
        self._skip = rest  # window descriptor, dictionary id, content size: nothing to check
        self._expect(3, self._block)

    def _block(self, header: bytes) -> None:
        value = int.from_bytes(header, "little")
        kind = value >> 1 & 3
        if kind == RESERVED_BLOCK:
            self._lost = True
            return
        self._skip = 1 if kind == RLE_BLOCK else value >> 3
        if value & 1:  # the frame's last block; then its checksum, if it has one
            self._skip += 4 * self._checksum
            self._expect(4, self._magic)
        else:
            self._expect(3, self._block)


class BrotliStream(_Inflating):
    """Brotli over any binary stream (a WARC record body): brotli bodies are common on today's web
    and warcio cannot read them with the `brotli` package it finds installed. Brotli's output
    limit is a soft one (it may overshoot), so the overshoot is handed out by offset on later reads."""

    def __init__(self, fh: Any, limit: int):
        super().__init__(fh, limit)
        self._decoder = brotli.Decompressor()
        self._pending = b""
        self._offset = 0

    def _inflate(self, size: int) -> bytes:
        if self._offset == len(self._pending):
            self._pending, self._offset = self._process(size), 0
        out = self._pending[self._offset : self._offset + size]
        self._offset += len(out)
        return out

    def _process(self, size: int) -> bytes:
        while not self._decoder.is_finished():
            data = b""
            if self._decoder.can_accept_more_data():
                data = self._fh.read(INPUT_CHUNK)
                if not data:
                    raise EOFError("brotli stream ends before its end-of-stream marker")
            out = self._decoder.process(data, output_buffer_limit=size)
            if out:
                return out
        return b""


def open_maybe_compressed(
    path: str,
    max_ratio: float = DEFAULT_MAX_COMPRESSION_RATIO,
    size: int | None = None,
    settings: StorageSettings | None = None,
) -> io.BufferedReader:
    """A buffered binary stream of the file's content (a local path or a URL: readers/source.py),
    decompressing .gz, .zst, .bz2 and .xz by name. `size`, when the caller knows it, saves a lookup."""
    name = str(path).lower()
    fh = open_input(str(path), settings, size)
    if not name.endswith(COMPRESSED_SUFFIXES):
        return fh
    limit = _limit(str(path), size, settings, max_ratio)
    raw: _Inflating
    if name.endswith(".gz"):
        raw = GzipStream(fh, limit)
    elif name.endswith(".zst"):
        raw = ZstdStream(fh, limit)
    elif name.endswith(".bz2"):
        raw = ChainedStream(fh, limit, bz2.BZ2Decompressor)
    else:
        raw = ChainedStream(fh, limit, lzma.LZMADecompressor)
    return io.BufferedReader(raw, BUFFER)


def open_gzip(
    path: str,
    max_ratio: float = DEFAULT_MAX_COMPRESSION_RATIO,
    size: int | None = None,
    settings: StorageSettings | None = None,
) -> io.BufferedReader:
    """A file read as gzip whatever its name (a whole-file gzip WARC named `.warc.gz.bad`)."""
    limit = _limit(path, size, settings, max_ratio)
    return io.BufferedReader(GzipStream(open_input(path, settings, size), limit), BUFFER)


def _limit(path: str, size: int | None, settings: StorageSettings | None, max_ratio: float) -> int:
    """The bomb limit of a file; one whose size a web server does not state gets the floor."""
    known = size if size is not None else input_size(path, settings)
    return inflate_limit(known or 0, max_ratio)


# HTTP Content-Encoding -> a decoding stream over a body; encodings not listed are kept as sent
# (as warcio does), and then usually end as `undecodable_text`. The body is in memory already
# (its declared length is at most max_doc_bytes), so the stream never owns a file.
BODY_DECODERS: dict[str, Callable[[Any, int], _Inflating]] = {
    "gzip": GzipStream,
    "x-gzip": GzipStream,
    "deflate": lambda body, limit: GzipStream(body, limit, wbits=47),
    "br": BrotliStream,
    "zstd": ZstdStream,
}


def decode_body(raw: bytes, encoding: str, limit: int) -> bytes:
    """An HTTP body decoded per its Content-Encoding, at most `limit` + 1 bytes: one byte over tells
    the caller it is oversize, without inflating the rest (a brotli bomb costs `limit`).

    As in warcio, a body that does not decode from its first byte is returned as it is (crawlers
    often store the decoded body and keep the header), and a body cut mid-stream keeps what
    decoded before the cut.
    """
    make = BODY_DECODERS.get(encoding.strip().lower())
    if make is None:
        return raw
    stream = make(io.BytesIO(raw), limit + BUFFER)
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            chunk = stream.read(min(BUFFER, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except STREAM_ERRORS:
        if not chunks:
            return raw
    return b"".join(chunks)
