"""Whole-object reads racing overwrites of that object, on a real S3 server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest

from pipelines.framework.storage import Location

SHORT = json.dumps({"v": 1}).encode()
LONG = json.dumps({"v": 2, "pad": "x" * 200_000}).encode()


def _race(target: Location, read: Callable[[], object], reads: int = 300) -> list[object]:
    """`read` called `reads` times while another thread rewrites `target` short, long, short..."""
    target.write_bytes(SHORT)
    stop = threading.Event()

    def overwrite() -> None:
        while not stop.is_set():
            target.write_bytes(LONG)
            target.write_bytes(SHORT)

    writer = threading.Thread(target=overwrite)
    writer.start()
    try:
        return [read() for _ in range(reads)]
    finally:
        stop.set()
        writer.join()


def test_a_parsed_read_is_always_one_whole_version(s3_bucket) -> None:
    """pyarrow asks an object's size, then GETs that many bytes, so a plain read racing a rewrite
    returns a prefix or a splice of two versions (78 of 300 here; in CI a run record was read that way
    while its runner rewrote it). A parsed read is read again until it parses: always a whole version."""
    target = Location.parse(f"s3://{s3_bucket}/record.json")
    seen = _race(target, lambda: target.read_parsed(json.loads))
    assert all(record in ({"v": 1}, {"v": 2, "pad": "x" * 200_000}) for record in seen)


def test_a_local_file_that_does_not_parse_fails_at_once(tmp_path) -> None:
    target = Location.parse(tmp_path / "broken.json")
    target.write_bytes(b'{"v": ')
    with pytest.raises(ValueError):
        target.read_parsed(json.loads)
