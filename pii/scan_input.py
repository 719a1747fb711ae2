"""What `refinery pii scan` reads: texts from a file, a folder or a Delta table, and what it could not read.

Why its own module: a scan's counts are only true if it says what it did not scan.
A record without a string `text` (an array, an object, a number, null, or no such
field) or with an empty one is not a document: it is named with its reason, as a text
holding lone surrogates is. A file that cannot be read whole (not JSON, binary, a
damaged stream) is never half-scanned: it is checked before its first record is
scanned. Named on the command line it is an error, before anything is scanned; met in a
folder it is skipped whole, counted and named, and the folder's other files are scanned
(one stray .pdf or .DS_Store must not end a folder scan half-way).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.ingest.readers.base import SNIFF_BYTES, looks_binary
from pipelines.ingest.readers.compressed import STREAM_ERRORS, open_maybe_compressed
from pipelines.ingest.readers.jsonl import JSON_ERRORS, JsonLinesError, json_lines

TEXT_SUFFIXES = (".txt", ".md")
JSON_TYPES = {list: "an array", dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}


class UnreadableFile(Exception):
    """A file that cannot be read as text, JSON or JSON Lines; the message names it (and the line)."""


@dataclass(frozen=True)
class Item:
    """One record: its text, or None and why it is not scanned (`whole_file`: an unreadable file)."""

    locator: str
    text: str | None
    problem: str = ""
    whole_file: bool = False


def iter_items(path: Path) -> Iterator[Item]:
    """Items of a Delta table folder, a folder of files, a .txt/.md file, or a JSON array / JSON Lines file.

    A file named here that cannot be read raises UnreadableFile before any item of it.
    """
    if path.is_dir() and (path / "_delta_log").is_dir():
        yield from _table_items(path)
    elif path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            items = _file_items(child)
            try:
                first = next(items, None)
            except UnreadableFile as exc:
                yield Item(str(child), None, str(exc), whole_file=True)
                continue
            if first is not None:
                yield first
                yield from items
    else:
        yield from _file_items(path)


def _table_items(path: Path) -> Iterator[Item]:
    from deltalake import DeltaTable

    from pipelines.framework.lake import snapshot_dataset

    dataset = snapshot_dataset(DeltaTable(str(path)))
    row = 0
    for batch in dataset.to_batches(columns=["text"]):
        for text in batch.column("text").to_pylist():
            yield _text_item(f"{path.name}:{row}", text, "`text` is null")
            row += 1


def _file_items(path: Path) -> Iterator[Item]:
    """A file's items; the whole file is checked first, so UnreadableFile comes before any item."""
    if path.suffix in TEXT_SUFFIXES:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise UnreadableFile(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
        yield _text_item(str(path), text, "")
        return
    try:
        with open_maybe_compressed(str(path)) as stream:
            head = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]
            if looks_binary(head):
                raise UnreadableFile(f"{path}: a binary file, not JSON Lines or a JSON array")
            array = json.load(stream) if head[:1] == b"[" else None
        if array is None:
            for _ in json_lines(path):  # the check: a bad line stops it here, before any record
                pass
    except JsonLinesError as exc:
        raise UnreadableFile(str(exc)) from None
    except (*STREAM_ERRORS, *JSON_ERRORS) as exc:
        raise UnreadableFile(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
    if array is not None:
        yield from _array_items(path, array)
        return
    try:
        for line_no, record in json_lines(path):
            yield _record_item(f"{path}:{line_no}", record, ("text",))
    except JsonLinesError as exc:  # changed since the check
        raise UnreadableFile(str(exc)) from None


def _array_items(path: Path, array: Any) -> Iterator[Item]:
    """A JSON array file's elements (`text`, else `full_text`, as presidio-research's files have)."""
    if not isinstance(array, list):
        raise UnreadableFile(f"{path}: {JSON_TYPES.get(type(array), 'a JSON value')}, not an array")
    for i, record in enumerate(array):
        yield _record_item(f"{path}:{i}", record, ("text", "full_text"))


def _record_item(locator: str, record: Any, fields: tuple[str, ...]) -> Item:
    """The record's text (the first of `fields` it has), or why it has none to scan."""
    if not isinstance(record, dict):
        return Item(locator, None, f"{_json_type(record)}, not an object")
    field = next((f for f in fields if f in record), None)
    if field is None:
        return Item(locator, None, f"no {' or '.join(f'`{f}`' for f in fields)} field")
    return _text_item(locator, record[field], f"`{field}` is null", field)


def _text_item(locator: str, text: Any, null_problem: str, field: str = "text") -> Item:
    if text is None:
        return Item(locator, None, null_problem)
    if not isinstance(text, str):
        return Item(locator, None, f"`{field}` is {_json_type(text)}, not a string")
    if not text.strip():
        return Item(locator, None, "empty text")
    return Item(locator, text)


def _json_type(value: Any) -> str:
    return JSON_TYPES.get(type(value), "a number" if isinstance(value, int | float) else "a JSON value")
