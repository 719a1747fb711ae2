"""The runner: executes a job's stages in order, commits their tables, records the run.

Resume by content (docs/architecture.md, "Resume by content"): a stage's resume key is the hash of its
name, config hash, code version, pinned input table versions and source
fingerprint. Every commit carries the key; a rerun whose output tables already
hold a commit with the same key is skipped and its recorded versions are reused.
Staging files of killed runs are removed before a stage writes.

Storage: the spec's `storage:` block becomes the process default before anything is parsed, so
every Location of the job (lake, inputs, shard sets) reaches the same endpoint; the lake is
checked before the run starts, so a wrong endpoint or bucket fails at once, naming the URL and
what to set. Scratch space (`StageContext.work_dir`) is a local temporary folder even for a lake
on object storage. Errors recorded or raised are scrubbed of credential values.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from pipelines.framework.codeversion import code_version
from pipelines.framework.delta_commit import inject_fault
from pipelines.framework.drop_reason import DROP_REASON, descriptions
from pipelines.framework.lake import Lake
from pipelines.framework.progress import RunProgress
from pipelines.framework.runrecord import (
    REASON_DESCRIPTIONS,
    Heartbeat,
    RunCancelled,
    RunRecord,
    StageRecord,
    dump_json,
    new_run_id,
    now_iso,
)
from pipelines.framework.spark import get_spark
from pipelines.framework.spec import JobSpec
from pipelines.framework.stage import Stage, StageContext, StageResult
from pipelines.framework.storage_settings import scrub, use_settings

CAUSE_LINES = 8  # of an error's informative lines kept where a cancel explains the failure
STACK_FRAME = re.compile(r"(at |\.\.\. \d+ more|File \"|\^+$|~+)")


class RowAccountingError(RuntimeError):
    """A stage lost or invented rows: rows in != kept + dropped + quarantined."""


def resume_key(stage: Stage, stage_id: str, inputs: dict[str, int], fingerprint: str) -> str:
    payload = {
        "stage": stage.name,
        "id": stage_id,
        "config": stage.config.config_hash(),
        "code": code_version(),
        "inputs": inputs,
        "source": fingerprint,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def informative_lines(text: str, limit: int = CAUSE_LINES) -> str:
    """What a long error says happened: its first line, then those naming an exception or a cause,
    without stack frames (a Py4JJavaError carries the JVM's whole stack trace, ~150 lines)."""
    lines = [line.strip() for line in text.splitlines()]
    # A Python frame is its `File "..."` line and the source line after it.
    kept = [
        line
        for line, before in zip(lines, ["", *lines], strict=False)
        if line and not STACK_FRAME.match(line) and not before.startswith('File "')
    ]
    named = [line for line in kept[1:] if re.search(r"Error|Exception|Caused by|KILLED", line)]
    return "\n".join(list(dict.fromkeys(kept[:1] + named))[:limit])


class Runner:
    """Runs one job spec against one lake; one instance per run."""

    def __init__(
        self,
        spec: JobSpec,
        stages: list[tuple[str, Stage]],
        spec_path: str | None = None,
        run_id: str | None = None,
        spark: Any = None,
        progress: bool = True,
        record: RunRecord | None = None,
    ):
        self.spec = spec
        self.stages = stages
        use_settings(spec.storage)
        self.lake = Lake(spec.lake)
        self.lake.root.require_writable()
        self.work_dir = Path(tempfile.gettempdir())  # replaced by the run's own folder in run()
        self._spark = spark
        self.progress_enabled = progress
        self.lock = threading.Lock()
        self.record = record or RunRecord(
            run_id=run_id or new_run_id(spec.name),
            job=spec.name,
            dataset=spec.dataset_name,
            lake=self.lake.root.url,
            spec_path=spec_path,
            spec=spec.model_dump(mode="json"),
            spec_hash=spec.spec_hash(),
        )
        self.record.code_version = code_version()
        self.record.stages = [
            StageRecord(
                id=sid,
                stage=st.name,
                config=st.config.model_dump(mode="json"),
                config_hash=st.config.config_hash(),
            )
            for sid, st in stages
        ]

    @property
    def spark(self) -> Any:
        if self._spark is None:
            conf = {"spark.ui.showConsoleProgress": "false", **self.spec.spark.conf}
            self._spark = get_spark(self.spec.spark.master, conf, app_name=f"refinery:{self.spec.name}")
        return self._spark

    def _save(self) -> None:
        with self.lock:
            self.record.save()

    def run(self) -> RunRecord:
        """Run every stage; the record ends succeeded, failed (with cause) or interrupted."""
        rec = self.record
        self.work_dir = Path(tempfile.mkdtemp(prefix=f"refinery-{rec.run_id}-"))
        rec.status, rec.started_at, rec.heartbeat_at = "running", now_iso(), now_iso()
        rec.pid, rec.host = os.getpid(), socket.gethostname()
        self._save()
        try:
            self._check_inputs()
            with Heartbeat(rec, self.lock):
                spark = self.spark
                rec.master = spark.sparkContext.master
                rec.app_id = spark.sparkContext.applicationId
                self._save()
                with RunProgress(spark, len(self.stages), enabled=self.progress_enabled) as bar:
                    versions: dict[str, int] = {}
                    for stage_id, stage in self.stages:
                        if rec.cancel_requested:
                            raise RunCancelled(f"cancelled before stage {stage_id}")
                        bar.begin_stage(f"{stage_id} ({stage.name})")
                        self._run_stage(stage_id, stage, versions, bar)
                        bar.end_stage()
            rec.status = "succeeded"
        except RunCancelled as exc:
            rec.status, rec.error = "cancelled", f"cancelled by the user ({exc})"
            raise
        except KeyboardInterrupt:
            rec.status, rec.error = "interrupted", "interrupted by the user (Ctrl-C)"
            raise
        except BaseException as exc:
            if rec.cancel_requested:  # what failed was the cancel at work (the master killed the app, ...)
                rec.status = "cancelled"
                rec.error = f"cancelled by the user (the running stage stopped with {type(exc).__name__})"
                rec.error_cause = scrub(informative_lines(f"{type(exc).__name__}: {exc}")) or None
                raise RunCancelled(rec.error) from exc
            self._record_failure(exc)
            raise
        finally:
            rec.ended_at = now_iso()
            self._save()
            self._write_stats()
            # Stages may stage intermediate data in the work folder (read by their committed
            # DataFrames); once the run is over nothing reads it any more.
            shutil.rmtree(self.work_dir, ignore_errors=True)
        return rec

    def _record_failure(self, exc: BaseException) -> None:
        """Status failed, the error and its cause in the record, the whole traceback in error.txt."""
        rec = self.record
        rec.status = "failed"
        rec.error = scrub(f"{type(exc).__name__}: {exc}")
        cause = exc.__cause__ or exc.__context__
        rec.error_cause = scrub(f"{type(cause).__name__}: {cause}") if cause else None
        (rec.path.parent / "error.txt").write_text(scrub(traceback.format_exc()))

    def _check_inputs(self) -> None:
        """Every stage's own preflight passes and its inputs are written by an earlier stage or already in
        the lake, checked before the first stage: a misnamed input of the last stage fails now, not after
        hours of the others."""
        written: set[str] = set()
        for stage_id, stage in self.stages:
            self._preflight(stage_id, stage)
            for name in stage.input_tables():
                if name not in written and self.lake.version(f"{self.spec.dataset_name}/{name}") is None:
                    close = difflib.get_close_matches(name, sorted(written), n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise FileNotFoundError(
                        f"stage {stage_id!r}: its input table {self.spec.dataset_name}/{name} is written by no "
                        f"earlier stage of the job and is not in {self.lake.root}{hint}"
                    )
            written.update(stage.output_tables())

    def _preflight(self, stage_id: str, stage: Stage) -> None:
        """The stage's own checks; a failure is recorded on the stage, whose error names what to fix."""
        try:
            stage.preflight()
        except Exception as exc:
            srec = self.record.stage(stage_id)
            srec.status, srec.error = "failed", scrub(f"{type(exc).__name__}: {exc}")
            raise

    def _pin_inputs(self, stage: Stage, versions: dict[str, int]) -> dict[str, int]:
        pinned = {}
        for name in stage.input_tables():
            if name in versions:
                pinned[name] = versions[name]
                continue
            latest = self.lake.version(f"{self.spec.dataset_name}/{name}")
            if latest is None:
                raise FileNotFoundError(
                    f"stage input table {self.spec.dataset_name}/{name} does not exist in {self.lake.root}; "
                    "add the stage that writes it earlier in the job"
                )
            pinned[name] = latest
        return pinned

    def _context(self, pinned: dict[str, int]) -> StageContext:
        return StageContext(
            spark=self.spark,
            lake=self.lake,
            dataset=self.spec.dataset_name,
            run_id=self.record.run_id,
            work_dir=self.work_dir,
            versions=dict(pinned),
        )

    def _run_stage(self, stage_id: str, stage: Stage, versions: dict[str, int], bar: RunProgress) -> None:
        srec = self.record.stage(stage_id)
        srec.status, srec.started_at = "running", now_iso()
        started = time.perf_counter()
        self._save()
        try:
            pinned = self._pin_inputs(stage, versions)
            ctx = self._context(pinned)
            key = resume_key(stage, stage_id, pinned, stage.source_fingerprint(ctx))
            srec.inputs, srec.resume_key = pinned, key
            for table in stage.output_tables():
                self.lake.clean_orphans(ctx.table(table))
            if stage.is_complete(ctx, {"resume_key": key}):
                self._skip(stage, ctx, key, srec, versions)
                bar.log(f"[dim]skipped {stage_id}: output already matches (resume key {key})[/dim]")
            else:
                result = stage.run(ctx)
                self._commit(stage, stage_id, ctx, key, result, srec, versions)
                srec.status = "succeeded"
        except BaseException as exc:
            # Under a cancel, the stage's own error is the cancel's doing (the run's error_cause keeps it).
            srec.status = "failed"
            srec.error = (
                "cancelled" if self.record.cancel_requested else scrub(f"{type(exc).__name__}: {exc}")
            )
            raise
        finally:
            srec.ended_at = now_iso()
            srec.seconds = round(time.perf_counter() - started, 3)
            self._save()

    def _skip(
        self, stage: Stage, ctx: StageContext, key: str, srec: StageRecord, versions: dict[str, int]
    ) -> None:
        for table in stage.output_tables():
            version = self.lake.find_commit(ctx.table(table), {"resume_key": key})
            if version is not None:
                versions[table] = version
                srec.outputs[table] = version
        srec.status = "skipped"
        self._account(stage, ctx, srec, {})

    def _commit(
        self,
        stage: Stage,
        stage_id: str,
        ctx: StageContext,
        key: str,
        result: StageResult,
        srec: StageRecord,
        versions: dict[str, int],
    ) -> None:
        metadata = {
            "run_id": self.record.run_id,
            "stage": stage.name,
            "stage_id": stage_id,
            "config_hash": stage.config.config_hash(),
            "code_version": code_version(),
            "inputs": json.dumps({ctx.table(t): v for t, v in ctx.versions.items()}, sort_keys=True),
            "resume_key": key,
        }
        for table, df in result.tables.items():
            mode = "append" if table in result.append else "overwrite"
            commit = self.lake.write(df, ctx.table(table), metadata, mode=mode)
            inject_fault("after_commit", ctx.table(table))  # resume test: committed, run.json not yet updated
            versions[table] = commit.version
            srec.outputs[table] = commit.version
        srec.metrics, srec.files = result.metrics, result.files
        srec.skipped = dict(result.metrics.get("skipped_records", {}))
        self._account(stage, ctx, srec, result.metrics)

    def _account(self, stage: Stage, ctx: StageContext, srec: StageRecord, metrics: dict[str, Any]) -> None:
        """Fill row counts from Delta statistics and check rows in = kept + dropped + quarantined."""
        srec.rows_out = {t: self.lake.rows_added(ctx.table(t), v) for t, v in srec.outputs.items()}
        inputs = stage.input_tables()
        if inputs:
            srec.rows_in = self.lake.num_records(ctx.table(inputs[0]), srec.inputs[inputs[0]])
        srec.quarantined = srec.rows_out.get("quarantine")
        outputs = [t for t in stage.output_tables() if t in srec.outputs]
        if outputs:
            srec.kept, srec.dropped = self._drop_counts(ctx.table(outputs[0]), srec.outputs[outputs[0]])
            srec.reason_descriptions = descriptions(srec.dropped)
        if stage.row_policy == "preserve" and inputs and outputs:
            produced = srec.rows_out[outputs[0]] + (
                (srec.quarantined or 0) if "quarantine" in outputs[1:] else 0
            )
            srec.reconciled = srec.rows_in == produced
        elif stage.row_policy == "expand" and inputs and outputs:
            # Augmentation keeps every input row and adds variants: fewer rows out is a loss.
            srec.reconciled = srec.rows_out[outputs[0]] >= srec.rows_in
        elif stage.row_policy == "source" and "records_in" in metrics:
            srec.reconciled = int(metrics["records_in"]) == sum(srec.rows_out.values())
        if srec.reconciled is False:
            rows_in = metrics.get("records_in") if stage.row_policy == "source" else srec.rows_in
            raise RowAccountingError(
                f"stage {srec.id} ({stage.row_policy}): rows in {rows_in} vs rows out {srec.rows_out}; "
                "the stage lost or invented rows"
            )

    def _drop_counts(self, table: str, version: int) -> tuple[int | None, dict[str, int]]:
        """Kept rows and rows per drop reason: a Spark aggregation, only the counts reach the driver."""
        if DROP_REASON not in self.lake.arrow_schema(table, version).names:
            return None, {}
        counts = self.lake.read(self.spark, table, version).groupBy(DROP_REASON).count().collect()
        dropped = {row[DROP_REASON]: int(row["count"]) for row in counts if row[DROP_REASON] is not None}
        kept = sum(int(row["count"]) for row in counts if row[DROP_REASON] is None)
        return kept, dropped

    def _write_stats(self) -> None:
        """stats.json beside run.json: the per-stage funnel the reports and the web app start from."""
        funnel = [
            {**s.summary(), "kept": s.kept, "dropped": s.dropped, REASON_DESCRIPTIONS: s.reason_descriptions}
            for s in self.record.stages
        ]
        dump_json(self.record.path.parent / "stats.json", {"run_id": self.record.run_id, "funnel": funnel})


def run_spec(
    path: str | Path, run_id: str | None = None, progress: bool = True, spark: Any = None
) -> RunRecord:
    """Load, validate and run a job spec file (what `refinery run` does)."""
    return prepare_run(path, run_id, progress, spark).run()


def prepare_run(
    path: str | Path, run_id: str | None = None, progress: bool = True, spark: Any = None
) -> Runner:
    """The spec validated and its lake checked, nothing recorded yet: an error here (SpecError, StorageError)
    leaves no run record behind, so the CLI says what to fix rather than where to look."""
    from pipelines.framework.spec import load_spec

    spec, stages = load_spec(path)
    return Runner(spec, stages, spec_path=str(path), run_id=run_id, progress=progress, spark=spark)
