"""What one Spark task of `ingest` does: read its files, write the three tables, report.

Each task streams the rows of its files (pipelines.ingest.readers) into one Parquet file per
output table, directly under that table's root in the lake, named with the table's transaction
id (table_io.data_file_name), and returns only a few small rows: the files it wrote with their
add-action facts (size, row count, statistics) and its row counts per (kind, source, reason). So
one Spark job reads every input byte once, nothing is re-read to split the tables or to count
them, and the driver commits the files where they are (Lake.write of PlacedFiles): no staging
folder, so no copy of every byte on object storage (where a move is a copy) and no footer read.

File names carry the partition and attempt number: a retried or speculative attempt
writes its own files, and only those the successful attempt reports are committed (the
transaction's other files are removed at the commit).
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

from pipelines.framework.storage import Location
from pipelines.framework.storage_settings import StorageSettings
from pipelines.framework.table_io import ParquetFileWriter, WrittenFile, data_file_name
from pipelines.ingest.readers import read_file
from pipelines.ingest.readers.base import FOLDED, SKIPPED, FileTask
from pipelines.ingest.readers.schema import (
    CONSTANTS,
    RENAMED,
    TABLE_KINDS,
    TABLE_SCHEMAS,
    to_batches,
)

# A task's report: ("file", table, name, rows, size, stats) for each file written and
# ("count", kind, source, reason, n) for each group of rows it produced.
REPORT_SCHEMA = pa.schema(
    [
        ("record", pa.string()),
        ("table", pa.string()),
        ("name", pa.string()),
        ("source", pa.string()),
        ("reason", pa.string()),
        ("n", pa.int64()),
        ("size", pa.int64()),
        ("stats", pa.string()),
    ]
)


@dataclass(frozen=True)
class TaskPlan:
    """What every task needs to know, shipped once in the closure.

    `groups` is a Spark broadcast of the file groups (one list of listed-file dicts per
    partition): task i reads group i. Broadcasting keeps the listing out of every
    task's closure and needs no Python stage to turn it into rows.
    """

    roots: dict[str, Location]  # table -> its root (local or on object storage)
    txns: dict[str, str]  # table -> the transaction its files are named with
    run_id: str
    stage: str
    max_doc_bytes: int
    max_compression_ratio: float
    settings: StorageSettings  # how the files' remote inputs are reached (the job's `storage:`)
    groups: Any


@dataclass
class _TableFiles:
    """This task attempt's file of each table, opened at the table's first row (a table without rows
    gets no file)."""

    plan: TaskPlan
    tag: str
    open: dict[str, ParquetFileWriter] = field(default_factory=dict)

    def add(self, table: str, part: pa.Table) -> None:
        if table not in self.open:
            name = data_file_name(self.plan.txns[table], self.tag)
            self.open[table] = ParquetFileWriter(self.plan.roots[table] / name, TABLE_SCHEMAS[table])
        for batch in part.to_batches():
            self.open[table].add(batch)

    def close(self) -> dict[str, WrittenFile]:
        """Finish every file (on object storage each appears now); their facts per table."""
        return {table: writer.close() for table, writer in self.open.items()}


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
    outputs = _TableFiles(plan, f"{tag}-{uuid.uuid4().hex[:8]}")
    counts: Counter[tuple[str, str, str | None]] = Counter()
    for batch in to_batches(_counted(_file_tasks(batches, plan), counts)):
        for table in plan.roots:
            part = _table_part(batch, table, plan)
            if part.num_rows:
                outputs.add(table, part)
    report = [
        {
            "record": "file",
            "table": table,
            "name": w.name,
            "n": w.num_records,
            "size": w.size,
            "stats": w.stats,
        }
        for table, w in outputs.close().items()
    ]
    report += [
        {"record": "count", "table": kind, "source": source, "reason": reason, "n": n}
        for (kind, source, reason), n in counts.items()
    ]
    yield pa.RecordBatch.from_pylist(report, schema=REPORT_SCHEMA)
