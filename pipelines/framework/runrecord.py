"""Run records: one JSON file per run under `<lake>/_runs/<run_id>/run.json`.

The CLI, the cluster submitter and the web app all read these files, so the
record is the single source of truth about a run. They are written through the I/O layer, so
a lake on object storage holds its runs too; every write replaces the whole file in one step
(temp file + rename locally, one PUT on object storage), so a reader never sees half a record.
A run that stops heartbeating while "running" is reported as interrupted: a killed process can
never leave a run "running" forever.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, ValidationError

from pipelines.framework.run_processes import process_facts, started_after
from pipelines.framework.storage import Location
from pipelines.framework.storage_settings import scrub
from pipelines.framework.validation import field_problems

RunStatus = Literal["queued", "running", "succeeded", "failed", "interrupted", "cancelled"]
StageStatus = Literal["pending", "running", "succeeded", "skipped", "failed"]
HEARTBEAT_SECONDS = 5.0
STALE_AFTER_SECONDS = 60.0
RUNS_DIR = "_runs"
RUN_FILE = "run.json"
LakeRoot = str | os.PathLike[str] | Location
CANCEL_FILE = "cancel.requested"
# A run id is a folder name (255 bytes at most on common filesystems) and part of longer ones
# (`refinery-<id>-XXXXXXXX` scratch folders), so it is held well below that.
MAX_RUN_ID_BYTES = 200
# The StageRecord field holding `{drop reason: its registered one-line description}`.
REASON_DESCRIPTIONS = "reason_descriptions"


class RunCancelled(BaseException):
    """Raised in a driver whose run was cancelled; a BaseException so stage code cannot swallow it."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_run_id(job: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{job}-{stamp}-{uuid.uuid4().hex[:6]}"


class StageRecord(BaseModel):
    id: str
    stage: str
    status: StageStatus = "pending"
    started_at: str | None = None
    ended_at: str | None = None
    seconds: float | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    config_hash: str = ""
    resume_key: str = ""
    inputs: dict[str, int] = Field(default_factory=dict)
    outputs: dict[str, int] = Field(default_factory=dict)
    rows_in: int | None = None
    rows_out: dict[str, int] = Field(default_factory=dict)
    kept: int | None = None
    dropped: dict[str, int] = Field(default_factory=dict)
    # The registered one-line description of each reason in `dropped` (see REASON_DESCRIPTIONS):
    # recorded by the runner, which imported the stage, so that viewers that never import the
    # area (the report, the web app) can say what a reason means.
    reason_descriptions: dict[str, str] = Field(default_factory=dict)
    quarantined: int | None = None
    # Valid records a reader met but did not want (DNS, CSS, non-200 ...), per reason: not rows of
    # any table, so outside rows in = kept + dropped + quarantined, but shown beside it.
    skipped: dict[str, int] = Field(default_factory=dict)
    reconciled: bool | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    files: list[str] = Field(default_factory=list)
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """The fields every funnel view starts from (stats.json, the report, the web app)."""
        return self.model_dump(
            include={
                "id",
                "stage",
                "status",
                "seconds",
                "rows_in",
                "rows_out",
                "quarantined",
                "skipped",
                "error",
            }
        )


def check_run_id(run_id: str) -> str:
    """A run id names a folder of the lake and appears in every listing: a plain name, or an error.

    Its length is checked too: a longer one than a folder name can be fails deep in the storage
    layer (a StorageError traceback) instead of saying what is wrong with the id."""
    if not run_id or run_id.startswith(".") or not all(c.isalnum() or c in "-_." for c in run_id):
        raise ValueError(
            f"invalid run id {run_id!r}: use letters, digits, '-', '_' and '.', not a leading '.'"
        )
    if len(run_id.encode()) > MAX_RUN_ID_BYTES:
        raise ValueError(
            f"invalid run id {run_id[:40]!r}... ({len(run_id)} characters): "
            f"a run id is at most {MAX_RUN_ID_BYTES} bytes"
        )
    return run_id


class RunRecordUnreadable(ValueError):
    """A run.json that is not a run record, or is another run's; the message names the file and what to do."""


class RunRecord(BaseModel):
    run_id: str
    job: str
    dataset: str
    lake: str
    spec_path: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)
    spec_hash: str = ""
    code_version: str = ""
    master: str = "local[*]"
    deploy_mode: str = "local"
    app_id: str | None = None
    status: RunStatus = "queued"
    created_at: str = Field(default_factory=now_iso)
    started_at: str | None = None
    ended_at: str | None = None
    heartbeat_at: str | None = None
    pid: int | None = Field(default=None, gt=0)  # 0 and -1 would signal whole process groups
    host: str | None = None
    stages: list[StageRecord] = Field(default_factory=list)
    error: str | None = None
    error_cause: str | None = None
    log_path: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    # The run.json this record was read from; None for a record not read from a lake (a new run).
    _source: Location | None = PrivateAttr(default=None)

    # ------------------------------------------------------------ persistence
    @staticmethod
    def directory(lake_root: LakeRoot, run_id: str) -> Location:
        return Location.parse(lake_root) / RUNS_DIR / check_run_id(run_id)

    @property
    def path(self) -> Location:
        """The record's file: where it was read from, else its place in the lake it names.

        A record read from a lake is written back only to that file, never to the `lake` stored in it:
        a lake copied or moved elsewhere would otherwise write into the original, and an edited
        record could pick where a command writes."""
        return self._source or self.directory(self.lake, self.run_id) / RUN_FILE

    def copied_from(self) -> str | None:
        """The lake this record names when it was read from another lake (copied or moved), else None.

        Its pid, process group and application belong to the lake it names: a command run on the copy
        must neither signal them nor take them for this lake's run."""
        if self._source is None:
            return None
        here = self._source.parent.parent.parent  # <lake>/_runs/<run>/run.json
        try:
            named = Location.parse(self.lake)
        except ValueError:
            return self.lake
        if here.is_local and named.is_local:
            same = Path(here.url).resolve() == Path(named.url).resolve()
        else:
            same = here.url.rstrip("/") == named.url.rstrip("/")
        return None if same else self.lake

    def save(self) -> None:
        # Scrubbed as a whole: a spec or an error may quote a credential value (a pasted key).
        self.path.write_text(scrub(self.model_dump_json(indent=2)))

    @classmethod
    def load(cls, lake_root: LakeRoot, run_id: str) -> RunRecord:
        """Load a run; the id `latest` names the newest run in the lake."""
        runs_dir = Location.parse(lake_root) / RUNS_DIR
        if run_id == "latest":
            runs = list_runs(lake_root)
            if not runs:
                raise FileNotFoundError(f"no runs under {runs_dir}")
            return runs[0]
        path = cls.directory(lake_root, run_id) / RUN_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no run {run_id!r} under {runs_dir}; `refinery runs` lists them")
        return read_record(path)

    def refreshed(self) -> RunRecord:
        """Mark a 'running' run whose heartbeat went stale as interrupted (the process died)."""
        if self.status == "running" and self.heartbeat_at:
            age = time.time() - datetime.fromisoformat(self.heartbeat_at).timestamp()
            if age > STALE_AFTER_SECONDS and not self._owner_alive():
                self.status = "interrupted"
                self.error = self.error or f"no heartbeat for {age:.0f} s: the driver process died"
                for stage in self.stages:
                    if stage.status == "running":
                        stage.status = "failed"
                        stage.error = "interrupted"
        return self

    def _owner_alive(self) -> bool:
        """Whether the recorded pid still runs the driver: a process under it that started after the
        run did is another one that reused the pid, and the driver is gone."""
        if self.host != socket.gethostname() or self.pid is None or self.copied_from():
            return False
        found = process_facts(self.pid)
        return found is not None and not started_after(self, found)

    @property
    def cancel_requested(self) -> bool:
        """`refinery cancel` leaves a marker beside the record; drivers check it between stages."""
        return (self.path.parent / CANCEL_FILE).exists()

    def stage(self, stage_id: str) -> StageRecord:
        for record in self.stages:
            if record.id == stage_id:
                return record
        raise KeyError(stage_id)


def list_runs(lake_root: LakeRoot) -> list[RunRecord]:
    """Every readable run record, newest first; unreadable ones are skipped, never fatal."""
    return read_runs(lake_root)[0]


def read_runs(lake_root: LakeRoot) -> tuple[list[RunRecord], list[str]]:
    """(readable run records newest first, the run.json files that would not read), so that a listing
    can say what it left out."""
    records, unreadable = [], []
    for entry in (Location.parse(lake_root) / RUNS_DIR).glob(f"*/{RUN_FILE}"):
        try:
            records.append(read_record(entry.location))
        except (OSError, ValueError):
            unreadable.append(str(entry.location))
    return sorted(records, key=lambda r: r.created_at, reverse=True), sorted(unreadable)


def read_record(path: Location) -> RunRecord:
    """The run record in `path` (`<lake>/_runs/<run_id>/run.json`), bound to that file.

    Raises RunRecordUnreadable, naming the file and what to do, for a file that is not a run
    record and for one whose `run_id` is not its folder's name: such a record (copied, or edited)
    would list one run twice and show one run under another's id."""
    folder = path.parent
    advice = (
        f"restore it from a backup, or move the folder {folder} out of the lake's {RUNS_DIR} "
        "(`refinery runs` lists the readable runs)"
    )
    try:
        record = path.read_parsed(RunRecord.model_validate_json)
    except ValidationError as exc:
        problems = field_problems(exc, root="the file").split("; ")
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise RunRecordUnreadable(
            f"{path} is damaged, not a run record: {'; '.join(problems[:3])}{more}; {advice}"
        ) from None
    if record.run_id != folder.name:
        raise RunRecordUnreadable(
            f"{path} records run {record.run_id!r}, not {folder.name!r} (its folder): a record copied "
            f"from another run or edited; {advice}"
        )
    record._source = path
    try:
        return record.refreshed()
    except ValueError as exc:  # a timestamp that is not one
        raise RunRecordUnreadable(f"{path} is damaged, not a run record: {exc}; {advice}") from None


class Heartbeat:
    """Rewrites the record's heartbeat every few seconds while a run is alive."""

    def __init__(self, record: RunRecord, lock: threading.Lock, interval: float = HEARTBEAT_SECONDS):
        self.record = record
        self.lock = lock
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="refinery-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            with self.lock:
                self.record.heartbeat_at = now_iso()
                self.record.save()


def dump_json(path: LakeRoot, payload: Any) -> None:
    """Whole-file JSON write for files beside a run record (stats, reports)."""
    Location.parse(path).write_text(scrub(json.dumps(payload, indent=2, default=str)))
