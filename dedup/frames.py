"""Spark helpers the dedup algorithms share: a kernel-computed column, and who wins in incremental runs.

In an incremental run (`against`), documents already in the corpus join the
candidates so that they can be representatives: their keys get the prefix
EXISTING, new ones NEW, and "0" sorts before "1", so a cluster's smallest key is
an existing document whenever it has one (docs/dedup.md, incremental runs).
"""

from __future__ import annotations

from functools import partial

import pyarrow as pa
from pyspark.sql import DataFrame

from dedup.kernels.columns import ColumnFn, append_computed
from pipelines.framework.arrow_kernel import apply_kernel, spark_to_arrow_schema

EXISTING, NEW = "0", "1"


def append_column(df: DataFrame, name: str, type_: pa.DataType, compute: ColumnFn) -> DataFrame:
    """Append (or replace) column `name`, computed from each Arrow batch by the picklable `compute`."""
    base = df.drop(name) if name in df.columns else df
    schema = spark_to_arrow_schema(base).append(pa.field(name, type_))
    return apply_kernel(base, partial(append_computed, compute=compute, schema=schema), schema)
