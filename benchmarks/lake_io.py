"""Table I/O on a local lake: our Spark tasks through the I/O layer vs Spark's own Parquet reader and writer.

Issue 14 moved table reads and writes on object storage out of Spark's Parquet code (which
reaches object storage only through a Hadoop connector) into Spark tasks that read and write
through pipelines/framework/storage.py (pipelines/framework/table_io.py). This measures what that
path would cost on local disk, which decided that local lakes keep Spark's own Parquet path
(`DeltaCommits.spark_parquet`).

Corpus: the real texts of ../shared/data/web/datajuicer_pretrain_source_samples repeated to
`--rows` rows (text, source, length), staged once as a Parquet file outside the lake.

Each round, on the same local[2] session, one after the other:
- ours (the object-storage path, forced on local disk): `Lake.write` with mapInArrow tasks writing
  Parquet under the table root, delta-rs commits; then `Lake.read` through the I/O layer feeding a
  pure-Arrow kernel (mapInArrow, as every stage does) and a count by source.
- anchor (what local lakes use): `df.write.parquet` into a staging folder, the files renamed under
  the table root and committed with the same delta-rs commit, then `spark.read.parquet` of the
  snapshot's files feeding the same kernel and count.
Unit: rows per second for write + read. Ratio: ours / anchor (1.0 = no cost; target >= 0.8).

Run: `python -m benchmarks.lake_io [--rows N] [--rounds R]`; the last line is the benchmark JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.framework.arrow_kernel import apply_kernel
from pipelines.framework.lake import Lake
from pipelines.framework.spark import get_spark

DATA = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "web"
    / "datajuicer_pretrain_source_samples"
)
OUT_SCHEMA = pa.schema([("source", pa.string()), ("chars", pa.int64())])


def corpus(folder: Path, rows: int) -> Path:
    """The real texts repeated to `rows` rows, as one Parquet file."""
    texts, sources = [], []
    for path in sorted(DATA.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                texts.append(json.loads(line).get("text") or "")
                sources.append(path.stem)
    reps = -(-rows // len(texts))
    table = pa.table({"text": (texts * reps)[:rows], "source": (sources * reps)[:rows]})
    target = folder / "corpus.parquet"
    pq.write_table(table, target)
    return target


def kernel(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A stand-in for a stage's kernel: reads every text."""
    chars = pc.utf8_length(batch.column("text")).cast(pa.int64())
    return pa.RecordBatch.from_arrays([batch.column("source"), chars], schema=OUT_SCHEMA)


def consume(df) -> int:
    counted = apply_kernel(df, kernel, OUT_SCHEMA).groupBy("source").count().collect()
    return sum(int(r["count"]) for r in counted)


def write_and_read(spark, lake: Lake, df, table: str) -> int:
    lake.write(df, table, {"stage": "bench"})
    return consume(lake.read(spark, table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lake-io-") as tmp:
        folder = Path(tmp)
        spark = get_spark(
            "local[2]", {"spark.sql.shuffle.partitions": "4"}, app_name="bench-lake-io", ui=False
        )
        df = spark.read.parquet(str(corpus(folder, args.rows))).repartition(4).cache()
        df.count()
        lakes = {"ours": Lake(folder / "lake"), "anchor": Lake(folder / "lake")}
        lakes["ours"].spark_parquet = False
        consume(df)  # warm the Python workers for both sides
        times: dict[str, list[float]] = {"ours": [], "anchor": []}
        for round_no in range(args.rounds):
            for name, lake in lakes.items():
                started = time.perf_counter()
                n = write_and_read(spark, lake, df, f"b/{name}{round_no}")
                times[name].append(time.perf_counter() - started)
                assert n == args.rows, (name, n)
                print(f"round {round_no} {name}: {times[name][-1]:.2f} s", flush=True)
        ours_s, anchor_s = statistics.median(times["ours"]), statistics.median(times["anchor"])
        result = {
            "benchmark": "lake_io",
            "rows": args.rows,
            "ours_rows_per_s": round(args.rows / ours_s),
            "anchor_rows_per_s": round(args.rows / anchor_s),
            "ours_s": [round(t, 2) for t in times["ours"]],
            "anchor_s": [round(t, 2) for t in times["anchor"]],
            "ratio": round(anchor_s / ours_s, 2),
        }
        print(json.dumps(result))


if __name__ == "__main__":
    main()
