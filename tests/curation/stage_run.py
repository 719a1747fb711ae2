"""Running one stage outside the runner, as the curation stage tests do: write its tables, read them back."""

from __future__ import annotations

import pyarrow as pa

from pipelines.framework.stage import Stage, StageContext, StageResult


def run_stage(stage: Stage, ctx: StageContext) -> StageResult:
    """Run `stage` and write every table it returns through the lake, as the runner would."""
    result = stage.run(ctx)
    for name, df in result.tables.items():
        ctx.lake.write(df, ctx.table(name))
    return result


def table_rows(ctx: StageContext, name: str) -> pa.Table:
    return ctx.lake.dataset(ctx.table(name)).to_table()
