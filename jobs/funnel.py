"""A run's funnel: what each stage itself kept and dropped.

A stage's record counts every `drop_reason` in its output table, and reasons are never
overwritten, so those counts include everything dropped upstream. What a stage did is its
output's counts less those of the table version it read. That version was written by an
earlier stage of the same run (or of the run it resumed, whose versions a skipped stage
records too), so the subtraction needs only run records, never a table scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.framework.runrecord import RunRecord, StageRecord


@dataclass
class FunnelStep:
    """One stage's line of the funnel; `dropped` is None when the stage has no drop column."""

    id: str
    stage: str
    status: str
    seconds: float | None
    rows_in: int | None
    kept: int | None
    dropped: dict[str, int] | None
    quarantined: int | None
    upstream_known: bool = field(default=True)
    notes: list[str] = field(default_factory=list)

    @property
    def dropped_total(self) -> int | None:
        return None if self.dropped is None else sum(self.dropped.values())


def _writer_counts(stages: list[StageRecord], before: int, table: str, version: int) -> dict[str, int] | None:
    """Drop counts of the stage (before index `before`) that wrote `table` at `version`.

    A writer without a drop column dropped nothing; None when no stage of the run wrote it.
    """
    for earlier in reversed(stages[:before]):
        if earlier.outputs.get(table) == version:
            return earlier.dropped if earlier.kept is not None else {}
    return None


def funnel(record: RunRecord) -> list[FunnelStep]:
    """Each stage with the rows it dropped itself, by reason (only reasons whose count grew)."""
    steps = []
    for index, stage in enumerate(record.stages):
        dropped: dict[str, int] | None = None
        upstream_known = True
        if stage.kept is not None:
            upstream: dict[str, int] = {}
            first_input = next(iter(stage.inputs.items()), None)
            if first_input is not None:
                found = _writer_counts(record.stages, index, *first_input)
                upstream_known = found is not None or not stage.dropped
                upstream = found or {}
            dropped = {
                reason: count - upstream.get(reason, 0)
                for reason, count in sorted(stage.dropped.items(), key=lambda kv: -kv[1])
                if count > upstream.get(reason, 0)
            }
        rows_in, kept = _source_counts(stage)
        steps.append(
            FunnelStep(
                id=stage.id,
                stage=stage.stage,
                status=stage.status,
                seconds=stage.seconds,
                rows_in=rows_in,
                kept=kept,
                dropped=dropped,
                quarantined=stage.quarantined,
                upstream_known=upstream_known,
                notes=_notes(stage),
            )
        )
    return steps


def _source_counts(stage: StageRecord) -> tuple[int | None, int | None]:
    """(rows in, kept): a table stage's as recorded; a source stage (ingest) reads no table, so its rows in
    are the records it read and its kept rows those not quarantined (rows in = kept + quarantined)."""
    records_in = stage.metrics.get("records_in")
    if stage.rows_in is not None or not isinstance(records_in, int):
        return stage.rows_in, stage.kept
    return records_in, records_in - (stage.quarantined or 0)


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in sorted(counts.items(), key=lambda kv: -kv[1]))


def _notes(stage: StageRecord) -> list[str]:
    """What the counts alone leave unexplained: records that were not documents (WARC requests,
    metadata), rows a stage added (augmentation's copies), and what a shards stage wrote."""
    notes = []
    if stage.skipped:
        notes.append(f"not documents, skipped: {_counted(stage.skipped)}")
    documents = stage.metrics.get("documents")
    if isinstance(documents, dict):
        added = {k: v for k, v in documents.items() if k not in ("original", "mixture_downsampled") and v}
        if added:
            notes.append(f"rows added: {_counted(added)}")
    if isinstance(stage.metrics.get("tokens"), int) and stage.metrics.get("output_dir"):
        notes.append(
            f"{stage.metrics['tokens']:,} tokens of {stage.metrics.get('documents', 0):,} documents "
            f"in {stage.metrics['output_dir']}"
        )
    return notes
