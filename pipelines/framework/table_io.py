"""Table files read and written by Spark tasks through the I/O layer, never by Spark's own Parquet code.

Why (issue 14, docs/cluster.md "Object storage"): Spark's reader and writer reach object storage
only through a Hadoop connector (S3A, GCS), whose jars come from Maven and must match Hadoop's
version, which offline users cannot get. Here Spark stays the scheduler: a table read is a
DataFrame of file groups whose tasks open each file with `Location.open_random` and stream its
batches (mapInArrow); a table write is a mapInArrow whose tasks write Parquet straight under the
table root with `Location.open_write` and return each file's name, size and footer statistics,
which the driver commits with delta-rs. Nothing is renamed, so object storage needs no copy.

Local lakes keep Spark's own Parquet reader and writer, which reach local disk without a connector
and are faster there (benchmarks.lake_io measures both; `DeltaCommits.spark_parquet` chooses).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.framework.arrow_kernel import apply_kernel
from pipelines.framework.parquet_stats import parquet_stats
from pipelines.framework.storage import Location

# Rows buffered before a row group is written: few, large row groups keep footers small and
# scans fast, while memory stays bounded.
ROW_GROUP_ROWS = 65536
ROW_GROUP_BYTES = 64 << 20
# A read task's share of a table: small files are grouped up to this many bytes per task.
READ_TASK_BYTES = 128 << 20
WRITTEN_SCHEMA = pa.schema(
    [("name", pa.string()), ("size", pa.int64()), ("num_records", pa.int64()), ("stats", pa.string())]
)


@dataclass(frozen=True)
class WrittenFile:
    """A data file under a table root and what its add action needs."""

    name: str
    size: int
    num_records: int
    stats: str


@dataclass(frozen=True)
class PlacedFiles:
    """Files a stage's tasks wrote under a table root themselves (named by `data_file_name` with the
    txn of DeltaCommits.open_transaction), with their facts: committed without a move (on object
    storage a copy of every byte) or a footer read. The txn's other files are removed at the commit."""

    table: str
    txn: str
    schema: pa.Schema
    files: tuple[WrittenFile, ...]


def data_file_name(txn: str, tag: str) -> str:
    """Every data file carries its transaction's id last: orphan cleanup matches on it."""
    return f"part-{tag}-{txn}.parquet"


def txn_of(name: str) -> str | None:
    """The transaction id in a data file's name, or None for a file not named by `data_file_name`."""
    if not (name.startswith("part-") and name.endswith(".parquet")):
        return None
    return name[: -len(".parquet")].rsplit("-", 1)[-1]


class ParquetFileWriter:
    """One Parquet file written as a stream through the I/O layer, in few large row groups."""

    def __init__(self, dest: Location, schema: pa.Schema):
        self.dest = dest
        self.schema = schema
        self._sink = dest.open_write()
        self._footers: list[pq.FileMetaData] = []
        self._writer = pq.ParquetWriter(self._sink, schema, metadata_collector=self._footers)
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self._pending_bytes += batch.nbytes
        self.rows += batch.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS or self._pending_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.Table.from_batches(self._pending, self.schema))
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0

    def close(self) -> WrittenFile:
        """Finish the file (on object storage it appears now) and return its add-action facts."""
        self._flush()
        self._writer.close()
        size = self._sink.tell()
        self._sink.close()
        num, stats = parquet_stats(self._footers[0])
        return WrittenFile(self.dest.name, size, num, json.dumps(stats))


def write_table_file(dest: Location, data: pa.Table) -> WrittenFile:
    """A whole Arrow table as one file (driver-side writes, empty versions)."""
    writer = ParquetFileWriter(dest, data.schema)
    for batch in data.to_batches():
        writer.add(batch)
    return writer.close()


def footer_facts(location: Location) -> tuple[pa.Schema, WrittenFile]:
    """Schema and add-action facts of an existing file (files a stage staged itself)."""
    with location.open_random() as source:
        meta = pq.read_metadata(source)
    num, stats = parquet_stats(meta)
    return meta.schema.to_arrow_schema(), WrittenFile(location.name, location.size(), num, json.dumps(stats))


def _write_partition(
    batches: Iterator[pa.RecordBatch], root: Location, txn: str, max_records: int | None
) -> Iterator[pa.RecordBatch]:
    """Task body of `write_dataframe`: this partition's rows as files under `root`, their facts out."""
    from pyspark import TaskContext

    context = TaskContext.get()
    base = f"{context.partitionId():05d}-{context.attemptNumber()}" if context else "driver"
    base = f"{base}-{uuid.uuid4().hex[:8]}"
    written: list[WrittenFile] = []
    writer: ParquetFileWriter | None = None
    for batch in batches:
        while batch.num_rows:
            if writer is None:
                writer = ParquetFileWriter(root / data_file_name(txn, f"{base}-{len(written)}"), batch.schema)
            room = batch.num_rows if max_records is None else max_records - writer.rows
            writer.add(batch.slice(0, room))
            batch = batch.slice(room)
            if max_records is not None and writer.rows >= max_records:
                written.append(writer.close())
                writer = None
    if writer is not None:
        written.append(writer.close())
    yield pa.RecordBatch.from_pylist([vars(w) for w in written], schema=WRITTEN_SCHEMA)


def write_dataframe(
    df: Any, root: Location, txn: str, max_records_per_file: int | None
) -> tuple[pa.Schema, list[WrittenFile]]:
    """Spark tasks write `df` under `root` (see the module docstring); one file per non-empty task.

    A version with no rows still gets one empty file that carries the schema.
    """
    from pyspark.sql.pandas.types import to_arrow_schema

    from pipelines.framework.spark import forward_storage_environment

    forward_storage_environment(df.sparkSession)
    schema = to_arrow_schema(df.schema)
    rows = apply_kernel(
        df,
        lambda batches: _write_partition(batches, root, txn, max_records_per_file),
        WRITTEN_SCHEMA,
        stream=True,
    ).collect()
    written = [WrittenFile(r["name"], r["size"], r["num_records"], r["stats"]) for r in rows]
    if not written:
        written = [write_table_file(root / data_file_name(txn, "empty"), schema.empty_table())]
    return schema, sorted(written, key=lambda w: w.name)


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A file's batch in the snapshot's schema: columns by name, absent ones null (older files)."""
    columns = []
    for field in schema:
        index = batch.schema.get_field_index(field.name)
        if index < 0:
            columns.append(pa.nulls(batch.num_rows, field.type))
        else:
            column = batch.column(index)
            columns.append(column if column.type == field.type else column.cast(field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _read_partition(
    batches: Iterator[pa.RecordBatch], groups: list[list[Location]], schema: pa.Schema, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """Task body of `read_dataframe`: the files of the groups whose ids this partition holds."""
    for ids in batches:
        for group in ids.column("id").to_pylist():
            for location in groups[group]:
                with location.open_random() as source:
                    for batch in pq.ParquetFile(source).iter_batches(batch_size=batch_rows):
                        yield _conform(batch, schema)


def group_files(files: Iterable[tuple[Location, int]], slots: int) -> list[list[Location]]:
    """Files in groups of about READ_TASK_BYTES, at least `slots` groups when there are enough files.

    Largest first onto the lightest group, so one task does not read all the big files.
    """
    ordered = sorted(files, key=lambda f: -f[1])
    total = sum(size for _, size in ordered)
    count = min(len(ordered), max(slots, -(-total // READ_TASK_BYTES)))
    groups: list[list[Location]] = [[] for _ in range(count)]
    loads = [0] * count
    for location, size in ordered:
        lightest = loads.index(min(loads))
        groups[lightest].append(location)
        loads[lightest] += size
    return groups


def read_dataframe(spark: Any, files: list[tuple[Location, int]], schema: pa.Schema) -> Any:
    """A DataFrame of the rows of `files` (location, size), read in Spark tasks through the I/O layer."""
    from pyspark.sql.pandas.types import from_arrow_schema

    from pipelines.framework.spark import forward_storage_environment

    forward_storage_environment(spark)
    spark_schema = from_arrow_schema(schema)
    if not files:
        return spark.createDataFrame([], spark_schema)
    groups = group_files(files, spark.sparkContext.defaultParallelism)
    batch_rows = int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch", "10000"))
    ids = spark.range(0, len(groups), numPartitions=len(groups))
    return apply_kernel(
        ids, lambda b: _read_partition(b, groups, schema, batch_rows), spark_schema, stream=True
    )
