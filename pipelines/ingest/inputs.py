"""What ingest reads: the `inputs` of its params, and the driver's listing of their files.

An input is a local path (file, folder or glob), a URL on object storage (`s3://bucket/crawl/*.warc.gz`,
also gs:// and az://; a key, a prefix or a glob) or an HTTP(S) file; or a Common Crawl style paths
file (`paths_file: warc.paths.gz`, `base_url: s3://commoncrawl/`), one key per line. The driver never
opens a record. A paths file is read, not the bucket: a crawl of 90,000 WARCs costs the driver one
read of its paths file and no request per key; each task looks its own files' sizes up when it opens
them.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.framework.spec import plain_name
from pipelines.framework.storage import FileEntry, Location
from pipelines.framework.storage_urls import HTTP_SCHEMES
from pipelines.ingest.readers import OPTIONS, detect_format
from pipelines.ingest.readers.compressed import open_maybe_compressed
from pipelines.ingest.readers.source import http_head, is_remote, shown_url

Format = Literal["auto", "jsonl", "parquet", "warc", "html", "text", "images", "image_parquet"]
# Which detected formats a folder input of an explicit format picks up.
FOLDER_FORMATS: dict[str, tuple[str, ...]] = {
    "jsonl": ("jsonl",),
    "parquet": ("parquet",),
    "image_parquet": ("parquet",),
    "warc": ("warc",),
    "html": ("html",),
    "text": ("text",),
    "images": ("images",),
}
GLOB_CHARS = set("*?[")


class InputSpec(BaseModel):
    """One input: `name` becomes the rows' `source`; `path` is a file, a folder (walked
    recursively, dot-files ignored) or a glob, local (relative to the working directory) or a URL;
    or `paths_file` lists one file per line, each joined to `base_url` unless it is a URL itself.
    A folder with an explicit `format` picks up only files whose extension fits it (the others are
    counted in metrics `files_ignored`); a glob, a single file or a paths file's line goes to the
    reader whatever its name. `options` are the reader's (see docs/ingest.md); with `format: auto`
    they are keyed by format name."""

    model_config = ConfigDict(extra="forbid")

    name: str
    path: str | None = None
    paths_file: str | None = None
    base_url: str | None = None
    format: Format = "auto"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        return plain_name(value)

    @model_validator(mode="after")
    def _check_source(self) -> InputSpec:
        if (self.path is None) == (self.paths_file is None):
            raise ValueError(f"input {self.name!r}: give exactly one of `path` and `paths_file`")
        if self.base_url is not None and self.paths_file is None:
            raise ValueError(f"input {self.name!r}: `base_url` goes with `paths_file`, not `path`")
        return self

    @model_validator(mode="after")
    def _check_options(self) -> InputSpec:
        if self.format == "auto":
            for fmt, opts in self.options.items():
                if fmt not in OPTIONS:
                    raise ValueError(
                        f"with format auto, options are keyed by format ({', '.join(OPTIONS)}), not {fmt!r}"
                    )
                OPTIONS[fmt].model_validate(opts)
        else:
            OPTIONS[self.format].model_validate(self.options)
        return self

    def options_for(self, fmt: str) -> dict[str, Any]:
        return dict(self.options.get(fmt, {})) if self.format == "auto" else dict(self.options)


@dataclass(frozen=True)
class ListedFile:
    """A file as the driver sees it: no byte of it has been read. `path` is a local path or a URL;
    `size` and `mtime_ns` are None where the driver did not look them up (paths files, web files
    whose server does not say)."""

    source: str
    path: str
    relpath: str
    format: str
    options_json: str
    size: int | None
    mtime_ns: int | None


def list_input(spec: InputSpec) -> tuple[list[ListedFile], list[str]]:
    """(files to read, files ignored) for one input; raises a clear error when nothing matches."""
    if spec.paths_file is not None:
        found = _paths_file_entries(spec)
    elif is_remote(spec.path or ""):
        found = _remote_entries(spec)
    else:
        found = _local_entries(spec)
    filtered = found.filtered
    files, ignored = [], []
    for path, relpath, size, mtime_ns in found.entries:
        detected = detect_format(path)
        if filtered and detected not in FOLDER_FORMATS[spec.format]:
            ignored.append(path)
            continue
        fmt = spec.format if spec.format != "auto" else (detected or "unknown")
        options = json.dumps(spec.options_for(fmt), sort_keys=True)
        files.append(ListedFile(spec.name, path, relpath, fmt, options, size, mtime_ns))
    if not files:
        where = (
            shown_url(spec.path or "")
            if spec.paths_file is None
            else f"paths file {shown_url(spec.paths_file)}"
        )
        raise FileNotFoundError(
            f"ingest input {spec.name!r}: {where!r}{_relative_to_cwd(spec.path)} holds no file to read"
            + (f" as {spec.format} ({len(ignored)} other files ignored)" if ignored else "")
        )
    return files, ignored


@dataclass
class _Found:
    """(path, relpath, size, mtime_ns) of every candidate; `filtered`: a folder of an explicit format."""

    entries: list[tuple[str, str, int | None, int | None]]
    filtered: bool


def _local_entries(spec: InputSpec) -> _Found:
    path = os.path.expanduser(spec.path or "")
    if GLOB_CHARS & set(path):
        root, candidates, filtered = _glob_root(path), sorted(glob.glob(path, recursive=True)), False
    elif os.path.isdir(path):
        root, candidates, filtered = path, list(_walk(path)), spec.format != "auto"
    elif os.path.isfile(path):
        root, candidates, filtered = os.path.dirname(path) or ".", [path], False
    else:
        raise FileNotFoundError(
            f"ingest input {spec.name!r}: path {spec.path!r}{_relative_to_cwd(spec.path)} does not exist"
        )
    root = os.path.abspath(root)
    entries = []
    for candidate in candidates:
        if os.path.isfile(candidate):
            stat = os.stat(candidate)
            absolute = os.path.abspath(candidate)
            entries.append((absolute, os.path.relpath(absolute, root), stat.st_size, stat.st_mtime_ns))
    return _Found(entries, filtered)


def _relative_to_cwd(path: str | None) -> str:
    """Where a relative local path was looked for: a spec's paths are read from the folder refinery
    runs in, not the spec's, which is the first thing to check when nothing matches."""
    if not path or is_remote(path) or os.path.isabs(os.path.expanduser(path)):
        return ""
    return f" (relative to the folder refinery runs in, {os.getcwd()})"


def _glob_root(pattern: str) -> str:
    """The deepest folder of a glob pattern without wildcards."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else "."


def _walk(folder: str) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield os.path.join(dirpath, name)


def _remote_entries(spec: InputSpec) -> _Found:
    """A key, a prefix (a folder) or a glob on object storage, listed with the I/O layer; or one web file."""
    url = spec.path or ""
    loc = Location.parse(url)
    if loc.scheme in HTTP_SCHEMES:  # a web server lists nothing; `?` there starts a query
        size, mtime_ns = http_head(url)
        return _Found([(url, loc.name, size, mtime_ns)], False)
    loc.require_reachable()  # a wrong endpoint or bucket is named as such, not as "no file"
    scheme, rest = loc.url.split("://", 1)
    parts = rest.split("/")
    fixed = next((i for i, part in enumerate(parts) if GLOB_CHARS & set(part)), None)
    if fixed is not None:
        root = Location(f"{scheme}://{'/'.join(parts[:fixed])}", loc.settings)
        matched = [e for e in root.glob("/".join(parts[fixed:])) if not _hidden(e.location.relative_to(root))]
        return _Found(_entries(root, matched), False)  # dot-files left out, as a local glob does
    if loc.is_file():
        return _Found(_entries(loc.parent, [FileEntry(loc, loc.size(), None)]), False)
    if loc.is_dir():
        listed = [e for e in loc.list() if not _hidden(e.location.relative_to(loc))]
        return _Found(_entries(loc, listed), spec.format != "auto")
    raise FileNotFoundError(f"ingest input {spec.name!r}: no object or prefix at {shown_url(url)}")


def _hidden(relpath: str) -> bool:
    return any(part.startswith(".") for part in relpath.split("/"))


def _entries(root: Location, listed: list[FileEntry]) -> list[tuple[str, str, int | None, int | None]]:
    return [
        (
            e.location.url,
            e.location.relative_to(root),
            e.size,
            int(e.mtime * 1e9) if e.mtime is not None else None,
        )
        for e in listed
    ]


def _paths_file_entries(spec: InputSpec) -> _Found:
    """One entry per line of the paths file (plain or compressed, local or a URL); no file is looked at.

    The line itself is the relpath, so record ids stay the same whichever mirror `base_url` names.
    """
    base = (spec.base_url or "").rstrip("/")
    entries: list[tuple[str, str, int | None, int | None]] = []
    paths_file = os.path.expanduser(spec.paths_file or "")
    if is_remote(paths_file):
        Location.parse(paths_file).require_reachable()
    try:
        stream = open_maybe_compressed(paths_file)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"ingest input {spec.name!r}: paths file {shown_url(paths_file)} does not exist"
        ) from None
    with stream:
        for number, raw in enumerate(stream, start=1):
            line = raw.decode("utf-8", "surrogateescape").strip()
            if not line or line.startswith("#"):
                continue
            if is_remote(line) or os.path.isabs(line):
                entries.append((line, line, None, None))
            elif base:
                entries.append((f"{base}/{line.lstrip('/')}", line, None, None))
            else:
                raise ValueError(
                    f"ingest input {spec.name!r}: line {number} of the paths file, {line[:200]!r}, is a "
                    "relative key: set `base_url` (e.g. s3://commoncrawl or https://data.commoncrawl.org)"
                )
    return _Found(entries, False)
