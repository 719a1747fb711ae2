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
        steps.append(
            FunnelStep(
                id=stage.id,
                stage=stage.stage,
                status=stage.status,
                seconds=stage.seconds,
                rows_in=stage.rows_in,
                kept=stage.kept,
                dropped=dropped,
                quarantined=stage.quarantined,
                upstream_known=upstream_known,
            )
        )
    return steps
