"""The `ingest` stage: raw files -> `documents`, `images` and `quarantine` tables.

How it runs (docs/architecture.md, "Kernels are plain Arrow; Spark distributes them" and
"Bad input is quarantined"):
1. The driver only lists files (path, size, mtime); it never opens a record. Files are
   spread over Spark partitions by size (longest-processing-time bins), so one large
   WARC does not sit in a partition with many others.
2. One Spark job: each task reads its files with the readers of `pipelines.ingest.readers`
   and writes the rows straight into the three tables' staging folders
   (pipelines/ingest/writer.py); nothing reads the input twice, nothing re-reads the
   output to split or count it. The runner commits the staged files with delta-rs.
3. The tasks' reports (a few rows each) give the metrics: files and bytes per source,
   rows per source and table, quarantined rows per reason, skipped records per reason,
   quarantine records folded past a file's cap per reason, `records_in` (= documents +
   images + quarantine rows, which the runner checks against the committed tables'
   statistics) and `records_read` (every record a reader met: records_in - capped
   summary rows + folded + skipped).

`source_fingerprint` hashes (path, size, mtime) of every listed file, so a rerun over
unchanged input is skipped by the runner. File names may be any bytes: a name that is
not UTF-8 travels as Python's surrogate-escaped str and is hashed as its bytes.
"""

from __future__ import annotations

import glob
import hashlib
import heapq
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.framework.delta_commit import StagedFiles
from pipelines.framework.spec import plain_name
from pipelines.framework.stage import Stage, StageConfig, StageContext, StageResult, apply_kernel
from pipelines.ingest.readers import CAPPED, OPTIONS, detect_format
from pipelines.ingest.readers.base import DEFAULT_MAX_DOC_BYTES, FOLDED, SKIPPED
from pipelines.ingest.readers.compressed import DEFAULT_MAX_COMPRESSION_RATIO
from pipelines.ingest.readers.schema import TABLE_SCHEMAS
from pipelines.ingest.writer import REPORT_SCHEMA, TaskPlan, write_partition

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
# Input bytes per Spark task (spark.sql.files.maxPartitionBytes' default).
TASK_BYTES = 128 << 20


class InputSpec(BaseModel):
    """One input: `name` becomes the rows' `source`; `path` is a file, a folder (walked
    recursively, dot-files ignored) or a glob; relative paths are relative to the
    working directory. A folder with an explicit `format` picks up only files whose
    extension fits it (the others are counted in metrics `files_ignored`); a glob or a
    single file goes to the reader whatever its name. `options` are the reader's
    (see docs/ingest.md); with `format: auto` they are keyed by format name."""

    model_config = ConfigDict(extra="forbid")

    name: str
    path: str
    format: Format = "auto"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        return plain_name(value)

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


class IngestConfig(StageConfig):
    """`inputs`: what to read; `max_doc_bytes`: larger records are quarantined as `oversize`;
    `max_compression_ratio`: a compressed file that inflates to more than this times its size
    (and past 64 MB) is quarantined as `compression_bomb` without being read further;
    `partitions`: Spark tasks (default one per 128 MB of input, at least one per core,
    at most one per file)."""

    inputs: list[InputSpec] = Field(default_factory=list)
    max_doc_bytes: int = Field(DEFAULT_MAX_DOC_BYTES, gt=0)
    max_compression_ratio: float = Field(DEFAULT_MAX_COMPRESSION_RATIO, gt=1)
    partitions: int | None = Field(None, gt=0)

    @field_validator("inputs")
    @classmethod
    def _unique_names(cls, value: list[InputSpec]) -> list[InputSpec]:
        names = [i.name for i in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"input names must be unique; repeated: {', '.join(dupes)}")
        return value


@dataclass(frozen=True)
class ListedFile:
    """A file as the driver sees it: no byte of it has been read."""

    source: str
    path: str
    relpath: str
    format: str
    options_json: str
    size: int
    mtime_ns: int


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


def list_input(spec: InputSpec) -> tuple[list[ListedFile], list[str]]:
    """(files to read, files ignored) for one input; raises a clear error when nothing matches."""
    path = os.path.expanduser(spec.path)
    if GLOB_CHARS & set(path):
        root, candidates, filtered = _glob_root(path), sorted(glob.glob(path, recursive=True)), False
    elif os.path.isdir(path):
        root, candidates, filtered = path, list(_walk(path)), spec.format != "auto"
    elif os.path.isfile(path):
        root, candidates, filtered = os.path.dirname(path) or ".", [path], False
    else:
        raise FileNotFoundError(f"ingest input {spec.name!r}: path {spec.path!r} does not exist")
    files, ignored = [], []
    root = os.path.abspath(root)
    for candidate in candidates:
        if not os.path.isfile(candidate):
            continue
        detected = detect_format(candidate)
        if filtered and detected not in FOLDER_FORMATS[spec.format]:
            ignored.append(candidate)
            continue
        fmt = spec.format if spec.format != "auto" else (detected or "unknown")
        stat = os.stat(candidate)
        absolute = os.path.abspath(candidate)
        files.append(
            ListedFile(
                source=spec.name,
                path=absolute,
                relpath=os.path.relpath(absolute, root),
                format=fmt,
                options_json=json.dumps(spec.options_for(fmt), sort_keys=True),
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
            )
        )
    if not files:
        raise FileNotFoundError(
            f"ingest input {spec.name!r}: {spec.path!r} holds no file to read"
            + (f" as {spec.format} ({len(ignored)} other files ignored)" if ignored else "")
        )
    return files, ignored


def task_count(files: list[ListedFile], cores: int) -> int:
    """One task per TASK_BYTES of input, at least one per core, at most one per file.

    Each Python task costs Spark a fixed start (about 0.15 s measured on this 2-core
    machine, BENCHMARKS.md), so small inputs get one task per core rather than many
    short ones; large crawls get splits the size Spark itself uses for files.
    """
    total = sum(f.size for f in files)
    return max(1, min(len(files), max(cores, -(-total // TASK_BYTES))))


def assign_bins(files: list[ListedFile], bins: int) -> list[int]:
    """Longest-processing-time-first: each file (largest first) goes to the lightest bin."""
    heap = [(0, b) for b in range(bins)]
    assignment = [0] * len(files)
    for index in sorted(range(len(files)), key=lambda i: -files[i].size):
        load, b = heapq.heappop(heap)
        assignment[index] = b
        heapq.heappush(heap, (load + max(files[index].size, 1), b))
    return assignment


class Ingest(Stage):
    """Read raw text and image files into the bronze tables, quarantining what cannot be read."""

    name = "ingest"
    Config = IngestConfig
    row_policy: ClassVar[str] = "source"
    config: IngestConfig

    def __init__(self, config: StageConfig):
        super().__init__(config)
        self._listing: tuple[list[ListedFile], dict[str, list[str]]] | None = None

    def input_tables(self) -> list[str]:
        return []

    def output_tables(self) -> list[str]:
        return ["documents", "images", "quarantine"]

    def listing(self) -> tuple[list[ListedFile], dict[str, list[str]]]:
        """Every file of every input (listed once per stage object) and the ignored ones per input."""
        if self._listing is None:
            if not self.config.inputs:
                raise ValueError("ingest: params.inputs is empty; list at least one {name, path, format}")
            files: list[ListedFile] = []
            ignored: dict[str, list[str]] = {}
            for spec in self.config.inputs:
                listed, skipped = list_input(spec)
                files.extend(listed)
                ignored[spec.name] = skipped
            self._listing = (files, ignored)
        return self._listing

    def source_fingerprint(self, ctx: StageContext) -> str:
        digest = hashlib.sha256()
        for f in self.listing()[0]:
            line = f"{f.source}\0{f.path}\0{f.format}\0{f.size}\0{f.mtime_ns}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))
        return digest.hexdigest()[:16]

    def run(self, ctx: StageContext) -> StageResult:
        files, ignored = self.listing()
        staging = {table: ctx.lake.staging_area(ctx.table(table)) for table in self.output_tables()}
        try:
            report = self._read_all(ctx, files, {t: str(folder) for t, (_, folder) in staging.items()})
        except BaseException:
            for table, (txn, _) in staging.items():
                ctx.lake.discard_staged(ctx.table(table), txn)
            raise
        written: dict[str, list[str]] = {table: [] for table in staging}
        for row in report:
            if row["record"] == "file":
                written[row["table"]].append(row["name"])
        tables = {}
        for table, (txn, folder) in staging.items():
            if not written[table]:  # an empty version still needs a file that carries the schema
                pq.write_table(TABLE_SCHEMAS[table].empty_table(), folder / "part-empty.parquet")
                written[table].append("part-empty.parquet")
            tables[table] = StagedFiles(ctx.table(table), txn, tuple(written[table]))
        return StageResult(tables=tables, metrics=self._metrics(report, files, ignored))

    def _read_all(self, ctx: StageContext, files: list[ListedFile], staging: dict[str, str]) -> list[Any]:
        """One Spark job: tasks read their files and write the tables' files; their reports come back."""
        spark = ctx.spark
        count = self.config.partitions or task_count(files, spark.sparkContext.defaultParallelism)
        groups: list[list[dict[str, Any]]] = [[] for _ in range(max(1, min(count, len(files))))]
        loads = [0] * len(groups)
        for b, f in zip(assign_bins(files, len(groups)), files, strict=True):
            groups[b].append(asdict(f))
            loads[b] += f.size
        # Heaviest groups first: Spark starts tasks in partition order, so the long ones
        # do not end up last on a busy core.
        groups = [g for _, g in sorted(zip(loads, groups, strict=True), key=lambda p: -p[0]) if g]
        plan = TaskPlan(
            staging,
            ctx.run_id,
            self.name,
            self.config.max_doc_bytes,
            self.config.max_compression_ratio,
            spark.sparkContext.broadcast(groups),
        )
        try:
            ids = spark.range(0, len(groups), 1, len(groups))  # partition i holds exactly the id i
            return apply_kernel(
                ids, partial(write_partition, plan=plan), REPORT_SCHEMA, stream=True
            ).collect()
        finally:
            plan.groups.destroy()

    def _metrics(
        self, report: list[Any], files: list[ListedFile], ignored: dict[str, list[str]]
    ) -> dict[str, Any]:
        """Counts from the tasks' reports (a few rows per task), plus the driver's listing."""
        per_source: dict[str, dict[str, int]] = {}
        quarantined: dict[str, int] = {}
        uncounted: dict[str, dict[str, int]] = {SKIPPED: {}, FOLDED: {}}
        for row in report:
            if row["record"] != "count":
                continue
            kind, n = row["table"], int(row["n"])
            if kind in uncounted:
                uncounted[kind][row["reason"]] = uncounted[kind].get(row["reason"], 0) + n
                continue
            table = {"document": "documents", "image": "images"}.get(kind, "quarantine")
            bucket = per_source.setdefault(row["source"], {})
            bucket[table] = bucket.get(table, 0) + n
            if table == "quarantine":
                quarantined[row["reason"]] = quarantined.get(row["reason"], 0) + n
        files_per_source: dict[str, int] = {}
        bytes_per_source: dict[str, int] = {}
        for f in files:
            files_per_source[f.source] = files_per_source.get(f.source, 0) + 1
            bytes_per_source[f.source] = bytes_per_source.get(f.source, 0) + f.size
        records_in = sum(sum(b.values()) for b in per_source.values())
        folded, skipped = uncounted[FOLDED], uncounted[SKIPPED]
        return {
            "files": files_per_source,
            "bytes": bytes_per_source,
            "files_ignored": {k: len(v) for k, v in ignored.items() if v},
            "rows": per_source,
            "quarantined": dict(sorted(quarantined.items())),
            "quarantine_folded": dict(sorted(folded.items())),
            "skipped_records": dict(sorted(skipped.items())),
            "records_in": records_in,
            "records_read": records_in
            - quarantined.get(CAPPED, 0)
            + sum(folded.values())
            + sum(skipped.values()),
        }
