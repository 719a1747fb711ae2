"""What one Spark task of `ingest` does: read its files, write the three tables, report.

Each task streams the rows of its files (pipelines.ingest.readers) into one Parquet file per
output table, directly in that table's staging folder of the lake, and returns only a
few small rows: the files it wrote and its row counts per (kind, source, reason). So
one Spark job reads every input byte once and nothing is re-read to split the tables
or to count them; the driver commits the listed files with delta-rs (Lake.write of
StagedFiles).

File names carry the partition and attempt number: a retried or speculative attempt
writes its own files, and only those the successful attempt reports are committed.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.framework.storage import Location
from pipelines.framework.storage_settings import StorageSettings
from pipelines.ingest.readers import read_file
from pipelines.ingest.readers.base import FOLDED, SKIPPED, FileTask
from pipelines.ingest.readers.schema import (
    CONSTANTS,
    RENAMED,
    TABLE_KINDS,
    TABLE_SCHEMAS,
    to_batches,
)

# A task's report: ("file", table, name, rows) for each file written and
# ("count", kind, source, reason, n) for each group of rows it produced.
REPORT_SCHEMA = pa.schema(
    [
        ("record", pa.string()),
        ("table", pa.string()),
        ("name", pa.string()),
        ("source", pa.string()),
        ("reason", pa.string()),
        ("n", pa.int64()),
    ]
)
# Rows buffered per table before a row group is written (bounded memory, few row groups).
ROW_GROUP_ROWS = 8192
ROW_GROUP_BYTES = 64 << 20


@dataclass(frozen=True)
class TaskPlan:
    """What every task needs to know, shipped once in the closure.

    `groups` is a Spark broadcast of the file groups (one list of listed-file dicts per
    partition): task i reads group i. Broadcasting keeps the listing out of every
    task's closure and needs no Python stage to turn it into rows.
    """

    staging: dict[str, Location]  # table -> staging folder (local or on object storage)
    run_id: str
    stage: str
    max_doc_bytes: int
    max_compression_ratio: float
    settings: StorageSettings  # how the files' remote inputs are reached (the job's `storage:`)
    groups: Any


@dataclass
class _TableFile:
    """One table's Parquet file of this task attempt, opened at its first row."""

    path: Location
    schema: pa.Schema
    writer: pq.ParquetWriter | None = None
    pending: list[pa.Table] = field(default_factory=list)
    pending_rows: int = 0
    pending_bytes: int = 0
    rows: int = 0

    def add(self, part: pa.Table) -> None:
        self.pending.append(part)
        self.pending_rows += part.num_rows
        self.pending_bytes += part.nbytes
        if self.pending_rows >= ROW_GROUP_ROWS or self.pending_bytes >= ROW_GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.pending_rows:
            return
        if self.writer is None:  # written through the I/O layer: a local file or one object
            self.writer = pq.ParquetWriter(self.path.fs_path, self.schema, filesystem=self.path.fs)
        self.writer.write_table(pa.concat_tables(self.pending))
        self.rows += self.pending_rows
        self.pending, self.pending_rows, self.pending_bytes = [], 0, 0

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


def _table_part(batch: pa.RecordBatch, table: str, plan: TaskPlan) -> pa.Table:
    """The rows of `batch` that belong to `table`, in that table's schema."""
    rows = batch.filter(pc.equal(batch.column("kind"), TABLE_KINDS[table]))
    constants = {"run_id": plan.run_id, "stage": plan.stage}
    columns = []
    for name in TABLE_SCHEMAS[table].names:
        source = RENAMED.get(name, name)
        if source in CONSTANTS:
            columns.append(pa.array([constants[source]] * rows.num_rows, pa.string()))
        else:
            columns.append(rows.column(source))
    return pa.Table.from_arrays(columns, schema=TABLE_SCHEMAS[table])


def _file_tasks(batches: Iterator[pa.RecordBatch], plan: TaskPlan) -> Iterator[FileTask]:
    """The files of the groups whose ids this partition holds (one, from spark.range)."""
    for batch in batches:
        for group in batch.column("id").to_pylist():
            for f in plan.groups.value[group]:
                yield FileTask(
                    source=f["source"],
                    path=f["path"],
                    relpath=f["relpath"],
                    format=f["format"],
                    options=json.loads(f["options_json"]),
                    max_doc_bytes=plan.max_doc_bytes,
                    max_compression_ratio=plan.max_compression_ratio,
                    size=f["size"],
                    settings=plan.settings,
                )


def _counted(
    tasks: Iterator[FileTask], counts: Counter[tuple[str, str, str | None]]
) -> Iterator[dict[str, Any]]:
    """Every row of every file, counted per (kind, source, reason) on the way through; skipped
    and folded rows carry a count of records and belong to no table."""
    for task in tasks:
        for row in read_file(task):
            n = json.loads(row["meta"])["count"] if row["kind"] in (SKIPPED, FOLDED) else 1
            counts[(row["kind"], row["source"], row.get("reason"))] += n
            yield row


def write_partition(batches: Iterator[pa.RecordBatch], plan: TaskPlan) -> Iterator[pa.RecordBatch]:
    """The Spark task body (mapInArrow over group ids): files read, REPORT_SCHEMA rows out."""
    from pyspark import TaskContext

    context = TaskContext.get()
    tag = f"{context.partitionId():05d}-{context.attemptNumber()}" if context else "driver"
    suffix = uuid.uuid4().hex[:8]
    outputs = {
        table: _TableFile(folder / f"part-{tag}-{suffix}.parquet", TABLE_SCHEMAS[table])
        for table, folder in plan.staging.items()
    }
    counts: Counter[tuple[str, str, str | None]] = Counter()
    try:
        for batch in to_batches(_counted(_file_tasks(batches, plan), counts)):
            for table, out in outputs.items():
                part = _table_part(batch, table, plan)
                if part.num_rows:
                    out.add(part)
    finally:
        for out in outputs.values():
            out.close()
    report = [
        {"record": "file", "table": table, "name": out.path.name, "n": out.rows}
        for table, out in outputs.items()
        if out.rows
    ]
    report += [
        {"record": "count", "table": kind, "source": source, "reason": reason, "n": n}
        for (kind, source, reason), n in counts.items()
    ]
    yield pa.RecordBatch.from_pylist(report, schema=REPORT_SCHEMA)
