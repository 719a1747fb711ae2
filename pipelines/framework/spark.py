"""The one place a SparkSession is made.

Every job, test and CLI command goes through `get_spark` so that the settings the
lake layer relies on (Arrow transfer, microsecond timestamps, the driver's own
Python on executors, loopback networking, storage variables on executors) can never be
forgotten.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyspark
from pyspark.sql import SparkSession

from pipelines.framework.master_url import check_master_url
from pipelines.framework.storage_settings import active_settings

DEFAULT_CONF: dict[str, str] = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "2000",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.sources.partitionOverwriteMode": "static",
    "spark.python.worker.reuse": "true",
    "spark.driver.memory": "4g",
    "spark.driver.maxResultSize": "64m",  # the driver never receives rows (benchmarks/scaling.py runs with it)
    # Spark's own success markers would otherwise be committed into Delta tables.
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
    "spark.hadoop.parquet.enable.summary-metadata": "false",
    # Storage credentials reach executors as environment variables (forward_storage_environment):
    # the UI, the event log and `spark-submit --verbose` must show them as *********(redacted).
    "spark.redaction.regex": r"(?i)secret|password|token|access[._]?key|credential|account[._]?key",
}
JAVA_OPTIONS = "spark.driver.extraJavaOptions"
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
# Where else a driver JVM's options can come from (besides a `conf` given to get_spark).
JAVA_OPTION_VARIABLES = ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS")
# Local mode only, where this process's Python (with refinery installed) runs the workers and the
# driver's JVM runs every task; executors on a cluster keep their own settings.
LOCAL_CONF: dict[str, str] = {
    # PySpark from the installed package, not Spark's zip: ~40 ms less per Python task (python_daemon.py).
    "spark.python.daemon.module": "pipelines.framework.python_daemon",
    # Parallel GC, the throughput collector, suits a batch job: G1's write barriers and concurrent
    # threads cost ~10% of the near-dedup benchmark's wall time on 2 cores (BENCHMARKS.md). Left out
    # whenever JVM options come from anywhere else (`java_options_elsewhere`).
    # Our log4j2 configuration: Spark's default one announces itself in four lines at every start.
    JAVA_OPTIONS: f'-XX:+UseParallelGC "-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()}"',
}
# Variables that say where object storage is; with the credential variables the job's storage
# settings name, they are what an executor needs to reach the lake (pipelines/framework/storage.py).
STORAGE_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ALLOW_HTTP",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ENDPOINT",
    "AZURE_ALLOW_HTTP",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "STORAGE_EMULATOR_HOST",
    "GOOGLE_ALLOW_HTTP",
)


def storage_environment() -> dict[str, str]:
    """The storage variables set in this process (values may be secrets: never log them)."""
    names = (*STORAGE_VARIABLES, *active_settings().variable_names())
    return {name: os.environ[name] for name in names if os.environ.get(name)}


def forward_storage_environment(spark: SparkSession) -> None:
    """Give Python tasks created from now on this process's storage variables.

    PySpark ships `SparkContext.environment` with every Python function (mapInArrow included) and
    sets it in the worker that runs it, on any executor, so a task reading the lake sees the same
    endpoint and credentials as the driver, even when the session was started before they were
    set. The values travel inside Spark's task messages only, never in a record or a log.
    """
    spark.sparkContext.environment.update(storage_environment())


def prepare_environment() -> None:
    """Point executors at this interpreter and keep Spark on loopback.

    Executors started by a local or standalone worker on this machine must run the
    same Python that holds our packages; without this they pick whatever `python3`
    is on PATH and fail to import the kernels.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


def java_options_elsewhere() -> bool:
    """Whether the user gives the driver JVM options outside get_spark's `conf`.

    Then the project's collector stays out: our extraJavaOptions would replace theirs from
    spark-defaults.conf, and two collectors (theirs in JAVA_TOOL_OPTIONS, ours) stop the JVM
    from starting at all.
    """
    if any(os.environ.get(name) for name in JAVA_OPTION_VARIABLES):
        return True
    submit_args = os.environ.get("PYSPARK_SUBMIT_ARGS", "")
    if "driver-java-options" in submit_args or JAVA_OPTIONS in submit_args:
        return True
    home = os.environ.get("SPARK_HOME") or os.path.dirname(pyspark.__file__)
    defaults = Path(os.environ.get("SPARK_CONF_DIR") or Path(home) / "conf") / "spark-defaults.conf"
    try:
        lines = defaults.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return False
    return any(line.split(maxsplit=1)[:1] == [JAVA_OPTIONS] for line in lines)


def session_conf(master: str, conf: Mapping[str, Any] | None, ui: bool) -> dict[str, str]:
    """The settings a new session starts with: the project's defaults, then the caller's `conf`."""
    local = dict(LOCAL_CONF) if master.startswith("local") else {}
    if java_options_elsewhere():
        local.pop(JAVA_OPTIONS, None)
    merged = {
        **DEFAULT_CONF,
        **local,
        "spark.ui.enabled": str(bool(ui)).lower(),
        **{k: str(v) for k, v in (conf or {}).items()},
    }
    if merged.get("spark.driver.host") is None and os.environ.get("SPARK_LOCAL_IP") == "127.0.0.1":
        merged["spark.driver.host"] = "127.0.0.1"
        merged.setdefault("spark.driver.bindAddress", "127.0.0.1")
    return merged


def get_spark(
    master: str | None = None,
    conf: Mapping[str, Any] | None = None,
    app_name: str = "refinery",
    ui: bool | None = None,
) -> SparkSession:
    """Return the active session or build one with the project's defaults.

    `ui` defaults to off under pytest (ports collide between parallel test runs)
    and on otherwise, where users want the stage progress page.
    """
    master = check_master_url(master or os.environ.get("REFINERY_SPARK_MASTER", "local[*]"))
    prepare_environment()
    active = SparkSession.getActiveSession()
    if active is not None:
        forward_storage_environment(active)
        return active
    if ui is None:
        ui = "PYTEST_CURRENT_TEST" not in os.environ and os.environ.get("REFINERY_SPARK_UI", "1") != "0"
    builder = SparkSession.builder.appName(app_name).master(master)
    merged = session_conf(master, conf, ui)
    for key, value in merged.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("REFINERY_SPARK_LOG_LEVEL", "ERROR"))
    forward_storage_environment(spark)
    return spark
