"""What each drop reason of a run means: the one line shown beside its count in reports and pages.

The run record keeps the line each reason had when the run counted it (the runner imported the
stage that registered it; docs/architecture.md, "Rows are never deleted"). A viewer never imports
the areas, so for a reason the record does not describe (an older record, a table from another run)
the registry of this process is asked, and a reason nobody registered is shown without a line.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipelines.framework.drop_reason import describe
from pipelines.framework.runrecord import RunRecord


def reason_descriptions(record: RunRecord, reasons: Iterable[str] = ()) -> dict[str, str]:
    """`{reason: line}` for every reason the run's stages counted, and `reasons`, that has a line."""
    recorded: dict[str, str] = {}
    for stage in record.stages:
        recorded.update(stage.reason_descriptions)
    wanted = dict.fromkeys([*(reason for stage in record.stages for reason in stage.dropped), *reasons])
    found = {reason: recorded.get(reason) or describe(reason) for reason in wanted}
    return {reason: line for reason, line in found.items() if line}
