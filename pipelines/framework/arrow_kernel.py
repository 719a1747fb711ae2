"""Kernels and the one path that runs them in Spark's Python workers (`mapInArrow`).

Why a module of its own: the table I/O (below the lake) and the stages (above it) both run
kernels, so the path has to sit beneath both; in `stage.py` it made table_io import upwards.
Why one path (tests/test_one_kernel_path.py checks it): empty batches are skipped and Arrow
schemas become Spark ones here, once, instead of in every stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType


Kernel = Callable[[pa.RecordBatch], pa.RecordBatch]
# A kernel over a whole partition: for work that keeps state across batches or whose output
# rows do not follow its input rows (ingest's readers take file ids and write files).
StreamKernel = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]


def apply_kernel(
    df: DataFrame,
    kernel: Kernel | StreamKernel,
    output_schema: pa.Schema | StructType,
    *,
    stream: bool = False,
) -> DataFrame:
    """Run a pure-Arrow kernel on `df` in the Python workers: the one `mapInArrow` path.

    By default `kernel` maps each non-empty batch to one batch; with `stream=True` it maps
    the partition's iterator of batches to an iterator (empty batches included). Its output
    must match `output_schema`, an Arrow schema or, for output unrelated to the input's
    columns, a Spark StructType as is. The kernel is pickled to the workers, so models it
    needs must be loaded lazily there (module-level cache).
    """
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(output_schema) if isinstance(output_schema, pa.Schema) else output_schema
    if stream:
        return df.mapInArrow(kernel, schema)

    def _map(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield kernel(batch)

    return df.mapInArrow(_map, schema)


def spark_to_arrow_schema(df: DataFrame) -> pa.Schema:
    """The Arrow schema of a DataFrame, for kernels that append columns to their input."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema)
