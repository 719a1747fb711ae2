"""The `ingest` stage: raw files -> `documents`, `images` and `quarantine` tables.

How it runs (docs/architecture.md, "Kernels are plain Arrow; Spark distributes them" and
"Bad input is quarantined"):
1. The driver only lists files (path, size, mtime; local, object storage or a paths file:
   pipelines/ingest/inputs.py); it never opens a record. Files are spread over Spark
   partitions by size (longest-processing-time bins), so one large WARC does not sit in a
   partition with many others; a file the driver did not size counts as TASK_BYTES.
2. One Spark job: each task reads its files with the readers of `pipelines.ingest.readers`
   (streaming remote files, resuming after dropped connections: readers/source.py)
   and writes the rows straight under the three tables' roots, through the I/O layer
   (pipelines/ingest/writer.py); nothing reads the input twice, nothing re-reads the
   output to split or count it. The runner commits the files where they are with delta-rs
   (PlacedFiles: no staging folder to copy from on object storage, no footer to re-read).
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

import hashlib
import heapq
from dataclasses import asdict
from functools import partial
from typing import Any, ClassVar

from pydantic import Field, field_validator

from pipelines.framework.arrow_kernel import apply_kernel
from pipelines.framework.spark import forward_storage_environment
from pipelines.framework.stage import Stage, StageConfig, StageContext, StageResult
from pipelines.framework.storage import Location
from pipelines.framework.storage_settings import active_settings
from pipelines.framework.table_io import PlacedFiles, WrittenFile, data_file_name, write_table_file
from pipelines.ingest.inputs import InputSpec, ListedFile, list_input
from pipelines.ingest.readers import CAPPED
from pipelines.ingest.readers.base import DEFAULT_MAX_DOC_BYTES, FOLDED, SKIPPED
from pipelines.ingest.readers.compressed import DEFAULT_MAX_COMPRESSION_RATIO
from pipelines.ingest.readers.schema import TABLE_SCHEMAS
from pipelines.ingest.writer import REPORT_SCHEMA, TaskPlan, write_partition

# Input bytes per Spark task (spark.sql.files.maxPartitionBytes' default); a file whose size the
# driver did not look up (a paths file's line) is counted as this much.
TASK_BYTES = 128 << 20


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


def weight(f: ListedFile) -> int:
    """A file's share of a task: its bytes, or TASK_BYTES when the driver did not size it."""
    return f.size if f.size is not None else TASK_BYTES


def task_count(files: list[ListedFile], cores: int) -> int:
    """One task per TASK_BYTES of input, at least one per core, at most one per file.

    Each Python task costs Spark a fixed start (about 0.15 s measured on this 2-core
    machine, BENCHMARKS.md), so small inputs get one task per core rather than many
    short ones; large crawls get splits the size Spark itself uses for files.
    """
    total = sum(weight(f) for f in files)
    return max(1, min(len(files), max(cores, -(-total // TASK_BYTES))))


def assign_bins(files: list[ListedFile], bins: int) -> list[int]:
    """Longest-processing-time-first: each file (largest first) goes to the lightest bin."""
    heap = [(0, b) for b in range(bins)]
    assignment = [0] * len(files)
    for index in sorted(range(len(files)), key=lambda i: -weight(files[i])):
        load, b = heapq.heappop(heap)
        assignment[index] = b
        heapq.heappush(heap, (load + max(weight(files[index]), 1), b))
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

    def preflight(self) -> None:
        """Lists the inputs now (the listing is kept for the run), so one that matches nothing fails first."""
        self.listing()

    def source_fingerprint(self, ctx: StageContext) -> str:
        digest = hashlib.sha256()
        for f in self.listing()[0]:
            line = f"{f.source}\0{f.path}\0{f.format}\0{f.size}\0{f.mtime_ns}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))
        return digest.hexdigest()[:16]

    def run(self, ctx: StageContext) -> StageResult:
        files, ignored = self.listing()
        txns = {table: ctx.lake.open_transaction(ctx.table(table)) for table in self.output_tables()}
        roots = {table: ctx.lake.path(ctx.table(table)) for table in txns}
        try:
            report = self._read_all(ctx, files, roots, txns)
        except BaseException:
            for table, txn in txns.items():  # the attempts' files under the roots, then the owners
                ctx.lake.discard_staged(ctx.table(table), txn)
            raise
        written: dict[str, list[WrittenFile]] = {table: [] for table in txns}
        for row in report:
            if row["record"] == "file":
                written[row["table"]].append(WrittenFile(row["name"], row["size"], row["n"], row["stats"]))
        tables = {}
        for table, txn in txns.items():
            schema = TABLE_SCHEMAS[table]
            if not written[table]:  # an empty version still needs a file that carries the schema
                empty = roots[table] / data_file_name(txn, "empty")
                written[table].append(write_table_file(empty, schema.empty_table()))
            tables[table] = PlacedFiles(ctx.table(table), txn, schema, tuple(written[table]))
        return StageResult(tables=tables, metrics=self._metrics(report, files, ignored))

    def _read_all(
        self, ctx: StageContext, files: list[ListedFile], roots: dict[str, Location], txns: dict[str, str]
    ) -> list[Any]:
        """One Spark job: tasks read their files and write the tables' files; their reports come back."""
        spark = ctx.spark
        forward_storage_environment(spark)  # remote inputs: the tasks reach them as the driver does
        count = self.config.partitions or task_count(files, spark.sparkContext.defaultParallelism)
        groups: list[list[dict[str, Any]]] = [[] for _ in range(max(1, min(count, len(files))))]
        loads = [0] * len(groups)
        for b, f in zip(assign_bins(files, len(groups)), files, strict=True):
            groups[b].append(asdict(f))
            loads[b] += weight(f)
        # Heaviest groups first: Spark starts tasks in partition order, so the long ones
        # do not end up last on a busy core.
        groups = [g for _, g in sorted(zip(loads, groups, strict=True), key=lambda p: -p[0]) if g]
        plan = TaskPlan(
            roots,
            txns,
            ctx.run_id,
            self.name,
            self.config.max_doc_bytes,
            self.config.max_compression_ratio,
            active_settings(),
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
        unsized: dict[str, int] = {}  # paths files' lines: their bytes are not in `bytes`
        for f in files:
            files_per_source[f.source] = files_per_source.get(f.source, 0) + 1
            bytes_per_source[f.source] = bytes_per_source.get(f.source, 0) + (f.size or 0)
            if f.size is None:
                unsized[f.source] = unsized.get(f.source, 0) + 1
        records_in = sum(sum(b.values()) for b in per_source.values())
        folded, skipped = uncounted[FOLDED], uncounted[SKIPPED]
        return {
            "files": files_per_source,
            "bytes": bytes_per_source,
            "files_unsized": unsized,
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
