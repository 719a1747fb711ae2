"""JSON Lines (.jsonl, .json, .ndjson; optionally .gz or .zst): one document per line.

Rules: the text field (option `text_field`, default "text") must be a non-empty string;
every other field goes into `meta`. A line that is not valid UTF-8 (JSON is UTF-8 by
definition, so a bad byte means a mis-encoded source) is quarantined as `invalid_utf8`
rather than silently patched. A `.json` file that holds one JSON document (it starts
with `[`, or its first line is not a complete JSON value) is read whole, up to
max_doc_bytes: an array gives one record per element (locator `file:[i]`), an object
one record. Blank lines are not records. A damaged compressed stream keeps the lines read
before the damage and quarantines the rest as `truncated_stream` at the line where it broke.
A file whose first bytes are not text (base.looks_binary) is one `binary_file` row, not one
row per "line" of binary. JSON's `\\ud800` escapes decode to lone surrogates, which are not
Unicode text (and cannot be stored): such a record is quarantined as `invalid_unicode`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipelines.framework.unicode_text import has_lone_surrogates
from pipelines.ingest.readers.base import (
    EXCERPT_CHARS,
    SNIFF_BYTES,
    FileTask,
    looks_binary,
    read_bounded_lines,
)
from pipelines.ingest.readers.compressed import STREAM_ERRORS, open_maybe_compressed

# What json.loads raises on a bad line: ValueError, or RecursionError for nesting deeper than its stack
# (`[[[[...` a hundred thousand deep), which is one bad line too, not the end of the file.
JSON_ERRORS = (ValueError, RecursionError)


class JsonlOptions(BaseModel):
    """`text_field`: the document text; `id_field`: a stable record id that, when set, names the
    document instead of its position; `url_field`: the document's URL if the records carry one."""

    model_config = ConfigDict(extra="forbid")
    text_field: str = "text"
    id_field: str | None = None
    url_field: str = "url"


def record_to_row(
    task: FileTask, opts: JsonlOptions, position: str | int, obj: Any, raw: bytes | str
) -> dict[str, Any]:
    """A parsed JSON value (or Parquet row) -> a document row, or a quarantine row saying what is wrong."""
    if not isinstance(obj, dict):
        return task.quarantine(position, "not_an_object", raw)
    text = obj.get(opts.text_field)
    if not isinstance(text, str):
        reason = "missing_text_field" if text is None else "text_not_a_string"
        return task.quarantine(position, reason, raw)
    if not text.strip():
        return task.quarantine(position, "empty_text", raw)
    if has_lone_surrogates(text):
        return task.quarantine(position, "invalid_unicode", raw)
    if len(text) > task.max_doc_bytes:  # a Parquet cell or .json element; JSONL lines are cut before
        return task.quarantine(position, "oversize", text[:EXCERPT_CHARS])
    meta = {k: v for k, v in obj.items() if k != opts.text_field}
    row = task.document(position, text, uri=_str_or_none(obj.get(opts.url_field)), meta=meta)
    if opts.id_field and obj.get(opts.id_field) is not None:
        row["id"] = task.record_id(f"id={obj[opts.id_field]}")
    return row


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def read(task: FileTask) -> Iterator[dict[str, Any]]:
    opts = JsonlOptions(**task.options)
    if _is_single_document(task):
        yield from _read_document(task, opts)
        return
    with task.open() as stream:
        line_no = 0
        try:
            head = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]
            if looks_binary(head):
                yield task.quarantine(0, "binary_file", head)
                return
            for line_no, line, head in read_bounded_lines(stream, task.max_doc_bytes):
                if line is None or line.strip():
                    yield _line_to_row(task, opts, line_no, line, head)
        except STREAM_ERRORS as exc:
            yield task.quarantine(line_no + 1, "truncated_stream", f"{type(exc).__name__}: {exc}")


def _is_single_document(task: FileTask) -> bool:
    """A `.json` file holding one JSON document (an array, or an object spread over lines)."""
    if not task.path.removesuffix(".gz").removesuffix(".zst").endswith(".json"):
        return False
    try:
        with task.open() as stream:
            first = next(read_bounded_lines(stream, task.max_doc_bytes), None)
    except STREAM_ERRORS:
        return False
    if first is None or first[1] is None:
        return False
    line = first[1].lstrip()
    if line.startswith(b"["):
        return True
    try:
        json.loads(line)
    except JSON_ERRORS:
        return line.startswith(b"{")
    return False


def _line_to_row(
    task: FileTask, opts: JsonlOptions, line_no: int, line: bytes | None, head: bytes
) -> dict[str, Any]:
    if line is None:
        return task.quarantine(line_no, "oversize", head)
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError:
        return task.quarantine(line_no, "invalid_utf8", line)
    try:
        obj = json.loads(decoded)
    except JSON_ERRORS as exc:
        return task.quarantine(line_no, "malformed_json", f"{exc}: {decoded}")
    return record_to_row(task, opts, line_no, obj, decoded)


def _read_document(task: FileTask, opts: JsonlOptions) -> Iterator[dict[str, Any]]:
    """A whole-file JSON document (up to max_doc_bytes): an array gives one record per element."""
    with task.open() as stream:
        data = stream.read(task.max_doc_bytes + 1)
    if len(data) > task.max_doc_bytes:
        yield task.quarantine(0, "oversize", data[:800])
        return
    try:
        parsed = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        yield task.quarantine(0, "invalid_utf8", data)
        return
    except JSON_ERRORS as exc:
        yield task.quarantine(0, "malformed_json", f"{exc}: {data[:200]!r}")
        return
    if not isinstance(parsed, list):
        yield record_to_row(task, opts, 0, parsed, data[:400])
        return
    for index, obj in enumerate(parsed):
        yield record_to_row(task, opts, f"[{index}]", obj, json.dumps(obj, ensure_ascii=False)[:400])


class JsonLinesError(ValueError):
    """A local JSON Lines file (labelled data, a benchmark, a sample) that cannot be read as one."""


def json_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """`(line number, object)` for every non-blank line of a local JSONL file (.gz, .zst, .bz2, .xz too).

    The one reader of the project's own JSONL inputs outside ingest (training data for the
    quality model, benchmark sets to decontaminate against, evaluation sets, samples).
    Unlike ingest, which quarantines a bad line and goes on, a tool's input is the user's
    own file: a bad line stops the read with the file, the line and what is wrong.
    """
    with open_maybe_compressed(str(path)) as stream:
        try:
            for line_no, raw in enumerate(stream, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw)
                except JSON_ERRORS as exc:
                    raise JsonLinesError(
                        f"{path}:{line_no}: not valid JSON ({exc}); fix or remove the line"
                    ) from None
                if not isinstance(obj, dict):
                    raise JsonLinesError(f"{path}:{line_no}: a JSON {type(obj).__name__}, not an object")
                yield line_no, obj
        except STREAM_ERRORS as exc:
            raise JsonLinesError(f"{path}: damaged compressed stream ({type(exc).__name__}: {exc})") from None
