"""The `ingest` stage: raw files -> `documents`, `images` and `quarantine` tables.

How it runs (DESIGN decisions 1, 5):
1. The driver only lists files (path, size, mtime); it never opens a record. Files are
   spread over Spark partitions by size (longest-processing-time bins), so one large
   WARC does not sit in a partition with many others.
2. Spark tasks read their files in parallel with the readers of `pipelines.readers`
   (`mapInArrow`), producing one Arrow stream of rows of every kind.
3. That stream is written once to Parquet under the run's work folder, then split into
   the three tables by `kind`; nothing reads the input twice. The runner commits the
   tables; the work folder belongs to the run and goes with it.
4. One small aggregation gives the metrics: files and bytes per source, rows per
   source and table, quarantined rows per reason, skipped protocol records per type,
   and `records_in` (= documents + images + quarantine, which the runner checks).

`source_fingerprint` hashes (path, size, mtime) of every listed file, so a rerun over
unchanged input is skipped by the runner.
"""

from __future__ import annotations

import glob
import hashlib
import heapq
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.readers import OPTIONS, detect_format, read_file
from pipelines.readers.base import DEFAULT_MAX_DOC_BYTES, SKIPPED, FileTask
from pipelines.readers.schema import RECORD_SCHEMA, to_batches
from pipelines.stage import Stage, StageConfig, StageContext, StageResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

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

DOCUMENTS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("uri", pa.string()),
        ("locator", pa.string()),
        ("text", pa.string()),
        ("content_type", pa.string()),
        ("fetched_at", pa.timestamp("us", tz="UTC")),
        ("meta", pa.string()),
        ("ingest_run", pa.string()),
    ]
)
IMAGES_SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("source", pa.string()),
        ("uri", pa.string()),
        ("locator", pa.string()),
        ("bytes", pa.binary()),
        ("format", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("caption", pa.string()),
        ("sha256", pa.string()),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("locator", pa.string()),
        ("reason", pa.string()),
        ("excerpt", pa.string()),
        ("stage", pa.string()),
        ("run_id", pa.string()),
    ]
)


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
        if not value or not all(c.isalnum() or c in "-_." for c in value):
            raise ValueError("use letters, digits, '-', '_' and '.' only")
        return value

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
    `partitions`: Spark tasks (default 4 per core, at most one per file)."""

    inputs: list[InputSpec] = Field(default_factory=list)
    max_doc_bytes: int = Field(DEFAULT_MAX_DOC_BYTES, gt=0)
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


def assign_bins(files: list[ListedFile], bins: int) -> list[int]:
    """Longest-processing-time-first: each file (largest first) goes to the lightest bin."""
    heap = [(0, b) for b in range(bins)]
    assignment = [0] * len(files)
    for index in sorted(range(len(files)), key=lambda i: -files[i].size):
        load, b = heapq.heappop(heap)
        assignment[index] = b
        heapq.heappush(heap, (load + max(files[index].size, 1), b))
    return assignment


def read_listed(batches: Iterator[pa.RecordBatch], max_doc_bytes: int) -> Iterator[pa.RecordBatch]:
    """The Spark task body: every row of every file in the partition, as RECORD_SCHEMA batches."""

    def rows() -> Iterator[dict[str, Any]]:
        for batch in batches:
            for f in batch.to_pylist():
                task = FileTask(
                    source=f["source"],
                    path=f["path"],
                    relpath=f["relpath"],
                    format=f["format"],
                    options=json.loads(f["options_json"]),
                    max_doc_bytes=max_doc_bytes,
                )
                yield from read_file(task)

    yield from to_batches(rows())


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
            digest.update(f"{f.source}\0{f.path}\0{f.format}\0{f.size}\0{f.mtime_ns}\n".encode())
        return digest.hexdigest()[:16]

    def run(self, ctx: StageContext) -> StageResult:
        from pyspark.sql import functions as F

        files, ignored = self.listing()
        records = self._read_all(ctx, files)
        documents = records.filter(F.col("kind") == "document").select(
            F.col("id").alias("doc_id"),
            "source",
            "uri",
            "locator",
            "text",
            "content_type",
            "fetched_at",
            "meta",
            F.lit(ctx.run_id).alias("ingest_run"),
        )
        images = records.filter(F.col("kind") == "image").select(
            F.col("id").alias("image_id"),
            "source",
            "uri",
            "locator",
            "bytes",
            "format",
            "width",
            "height",
            "caption",
            "sha256",
        )
        quarantine = records.filter(F.col("kind") == "quarantine").select(
            "source",
            "locator",
            "reason",
            "excerpt",
            F.lit(self.name).alias("stage"),
            F.lit(ctx.run_id).alias("run_id"),
        )
        return StageResult(
            tables={"documents": documents, "images": images, "quarantine": quarantine},
            metrics=self._metrics(records, files, ignored),
        )

    def _read_all(self, ctx: StageContext, files: list[ListedFile]) -> DataFrame:
        """Read every file in Spark tasks and persist the rows once as Parquet; return them re-read."""
        from pyspark.sql.pandas.types import from_arrow_schema

        spark = ctx.spark
        bins = self.config.partitions or spark.sparkContext.defaultParallelism * 4
        bins = max(1, min(bins, len(files)))
        assignment = assign_bins(files, bins)
        columns = list(asdict(files[0]))
        rdd = (
            spark.sparkContext.parallelize(
                [(b, tuple(asdict(f).values())) for b, f in zip(assignment, files, strict=True)], bins
            )
            .partitionBy(bins, lambda b: b)
            .values()
        )
        listed = spark.createDataFrame(rdd, schema=_listing_schema(columns))
        max_doc_bytes = self.config.max_doc_bytes
        rows = listed.mapInArrow(lambda it: read_listed(it, max_doc_bytes), from_arrow_schema(RECORD_SCHEMA))
        target = Path(ctx.work_dir) / "ingest" / f"{ctx.run_id}-{uuid.uuid4().hex[:8]}"
        rows.write.mode("error").parquet(str(target))
        return spark.read.schema(from_arrow_schema(RECORD_SCHEMA)).parquet(str(target))

    def _metrics(
        self, records: DataFrame, files: list[ListedFile], ignored: dict[str, list[str]]
    ) -> dict[str, Any]:
        """Counts from one aggregation over the persisted rows, plus the driver's listing."""
        from pyspark.sql import functions as F

        counted = F.when(
            F.col("kind") == SKIPPED, F.get_json_object("meta", "$.count").cast("long")
        ).otherwise(1)
        groups = records.groupBy("kind", "source", "reason").agg(F.sum(counted).alias("n")).collect()
        per_source: dict[str, dict[str, int]] = {}
        quarantined: dict[str, int] = {}
        skipped: dict[str, int] = {}
        for row in groups:
            n = int(row["n"] or 0)
            if row["kind"] == SKIPPED:
                skipped[row["reason"]] = skipped.get(row["reason"], 0) + n
                continue
            table = {"document": "documents", "image": "images"}.get(row["kind"], "quarantine")
            bucket = per_source.setdefault(row["source"], {})
            bucket[table] = bucket.get(table, 0) + n
            if table == "quarantine":
                quarantined[row["reason"]] = quarantined.get(row["reason"], 0) + n
        files_per_source: dict[str, int] = {}
        bytes_per_source: dict[str, int] = {}
        for f in files:
            files_per_source[f.source] = files_per_source.get(f.source, 0) + 1
            bytes_per_source[f.source] = bytes_per_source.get(f.source, 0) + f.size
        return {
            "files": files_per_source,
            "bytes": bytes_per_source,
            "files_ignored": {k: len(v) for k, v in ignored.items() if v},
            "rows": per_source,
            "quarantined": dict(sorted(quarantined.items())),
            "skipped_records": dict(sorted(skipped.items())),
            "records_in": sum(sum(b.values()) for b in per_source.values()),
        }


def _listing_schema(columns: list[str]) -> Any:
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    return StructType(
        [StructField(c, LongType() if c in ("size", "mtime_ns") else StringType(), False) for c in columns]
    )
