"""JSON Lines (.jsonl, .json, .ndjson; optionally .gz or .zst): one document per line.

Rules: the text field (option `text_field`, default "text") must be a non-empty string;
every other field goes into `meta`. A line that is not valid UTF-8 (JSON is UTF-8 by
definition, so a bad byte means a mis-encoded source) is quarantined as `invalid_utf8`
rather than silently patched. A `.json` file whose first byte is `[` is read as one JSON
array of objects (bounded by max_doc_bytes for the whole file). Blank lines are not
records. A damaged compressed stream keeps the lines read before the damage and
quarantines the rest as `truncated_stream` at the line where it broke.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipelines.readers.base import STREAM_ERRORS, FileTask, open_maybe_compressed, read_bounded_lines


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
    meta = {k: v for k, v in obj.items() if k != opts.text_field}
    row = task.document(position, text, uri=_str_or_none(obj.get(opts.url_field)), meta=meta)
    if opts.id_field and obj.get(opts.id_field) is not None:
        row["id"] = task.record_id(f"id={obj[opts.id_field]}")
    return row


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def read(task: FileTask) -> Iterator[dict[str, Any]]:
    opts = JsonlOptions(**task.options)
    with open_maybe_compressed(task.path) as stream:
        if task.path.endswith(".json") and stream.peek(64)[:64].lstrip().startswith(b"["):
            yield from _read_array(task, opts, stream)
            return
        line_no = 0
        try:
            for line_no, line, head in read_bounded_lines(stream, task.max_doc_bytes):
                if line is None or line.strip():
                    yield _line_to_row(task, opts, line_no, line, head)
        except STREAM_ERRORS as exc:
            yield task.quarantine(line_no + 1, "truncated_stream", f"{type(exc).__name__}: {exc}")


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
    except ValueError as exc:
        return task.quarantine(line_no, "malformed_json", f"{exc}: {decoded}")
    return record_to_row(task, opts, line_no, obj, decoded)


def _read_array(task: FileTask, opts: JsonlOptions, stream: Any) -> Iterator[dict[str, Any]]:
    data = stream.read(task.max_doc_bytes + 1)
    if len(data) > task.max_doc_bytes:
        yield task.quarantine(0, "oversize", data[:800])
        return
    try:
        items = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        yield task.quarantine(0, "malformed_json", f"{exc}: {data[:200]!r}")
        return
    for index, obj in enumerate(items):
        yield record_to_row(task, opts, f"[{index}]", obj, json.dumps(obj, ensure_ascii=False)[:400])
