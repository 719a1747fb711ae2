"""Each drop reason's line: as the run recorded it, else as this process registered it, else none."""

from __future__ import annotations

from jobs.reasons import reason_descriptions
from pipelines.framework.drop_reason import register_reason
from pipelines.framework.runrecord import RunRecord, StageRecord

LIVE = register_reason("t_reasons_live", "registered by this test module only")
RECORDED = register_reason("t_reasons_recorded", "the line this process has now")


def _record(dropped: dict[str, int], lines: dict[str, str]) -> RunRecord:
    stage = StageRecord(
        id="decide", stage="decide", status="succeeded", kept=1, dropped=dropped, reason_descriptions=lines
    )
    return RunRecord(
        run_id="r", job="j", dataset="d", lake="lake", status="succeeded", created_at="", stages=[stage]
    )


def test_the_recorded_line_wins_then_the_registry_then_nothing():
    record = _record(
        {RECORDED: 2, LIVE: 1, "t_reasons_nobody_registered": 3},
        {RECORDED: "the line the run recorded"},
    )
    assert reason_descriptions(record) == {
        RECORDED: "the line the run recorded",
        LIVE: "registered by this test module only",
    }


def test_reasons_beyond_the_records_counts_are_described_too():
    record = _record({}, {})
    assert reason_descriptions(record, [LIVE, "t_reasons_nobody_registered"]) == {
        LIVE: "registered by this test module only"
    }
