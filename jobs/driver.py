"""The program spark-submit runs: continue a submitted run's record and execute its job.

`refinery submit` writes the run record (status queued, the spec frozen inside it)
and starts `spark-submit ... jobs/driver.py --lake LAKE --run-id RUN`. This driver
loads that record, so the spec that runs is the one submitted even if the file
changed since, and hands it to the Runner, which marks it running, records the
application id and per-stage progress, and ends it succeeded, failed or cancelled.

The SparkSession is built from the settings spark-submit received (master, --conf),
with the spec's `spark.conf` underneath: command-line settings win over the spec,
and the spec's over the project defaults.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any


def submitted_conf() -> dict[str, str]:
    """The settings spark-submit passed to this driver's JVM (master, app name, --conf ...)."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return dict(SparkConf().getAll())


def driver_host() -> str:
    """The address Spark itself would advertise; keeps pipelines.framework.spark from pinning 127.0.0.1 on a cluster."""
    from pyspark import SparkContext

    SparkContext._ensure_initialized()
    return str(SparkContext._jvm.org.apache.spark.util.Utils.localHostName())


def build_session(spec_conf: dict[str, Any]) -> Any:
    from pipelines.framework.spark import get_spark

    given = submitted_conf()
    if "SPARK_LOCAL_IP" not in os.environ:
        os.environ["SPARK_LOCAL_IP"] = driver_host()
    conf = {"spark.ui.showConsoleProgress": "false", **{k: str(v) for k, v in spec_conf.items()}, **given}
    return get_spark(given.get("spark.master"), conf, app_name=given.get("spark.app.name", "refinery"))


def _on_sigterm(record: Any) -> Any:
    """SIGTERM (cancel, or the cluster manager stopping the driver) ends the run instead of killing it mid-write."""
    from pipelines.framework.runrecord import RunCancelled

    def handler(signum: int, frame: Any) -> None:
        if record.cancel_requested:
            raise RunCancelled("SIGTERM after a cancel request")
        raise KeyboardInterrupt

    return handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="refinery driver (started by `refinery submit`)")
    parser.add_argument("--lake", required=True, help="lake root holding the run record")
    parser.add_argument("--run-id", required=True)
    args = parser.parse_args(argv)

    from pipelines.framework.runrecord import RunCancelled, RunRecord
    from pipelines.framework.spec import parse_spec

    record = RunRecord.load(args.lake, args.run_id)
    # Resume keys and commit metadata name the code that was submitted, as a local run of it would.
    os.environ.setdefault("REFINERY_CODE_VERSION", record.code_version)
    signal.signal(signal.SIGTERM, _on_sigterm(record))
    spec, stages = parse_spec(record.spec, record.spec_path or record.run_id)
    from pipelines.framework.runner import Runner

    if record.cancel_requested:
        record.status, record.error = "cancelled", "cancelled by the user before the driver started"
        record.save()
        return 3
    try:
        spark = build_session(spec.spark.conf)
        Runner(spec, stages, spec_path=record.spec_path, record=record, spark=spark, progress=False).run()
    except RunCancelled:
        return 3
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the record and error.txt hold the traceback
        print(f"refinery driver: run {record.run_id} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is not None:
            active.stop()
    print(f"refinery driver: run {record.run_id} {record.status}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)  # run as a script: jobs/ itself must not shadow top-level modules
    sys.exit(main())
