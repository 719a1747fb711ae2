"""Stages run kernels through one path, `pipelines.framework.arrow_kernel.apply_kernel`.

Why (docs/architecture.md, "Kernels are plain Arrow; Spark distributes them"): the one path is
where empty batches are skipped and Arrow schemas become Spark ones; five stages calling
`mapInArrow` themselves had five versions of that. A call of `mapInArrow` or `mapInPandas`
anywhere else in the code is reported with its place.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "curation", "dedup", "pii", "training", "jobs", "benchmarks")
OWNER = "pipelines/framework/arrow_kernel.py"
SPARK_MAPS = {"mapInArrow", "mapInPandas"}


def spark_map_calls(source: str) -> list[int]:
    """Lines calling `<anything>.mapInArrow(...)` or `.mapInPandas(...)`."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in SPARK_MAPS
    ]


def test_only_apply_kernel_calls_map_in_arrow() -> None:
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if relative != OWNER:
                found += [f"{relative}:{line}" for line in spark_map_calls(path.read_text(encoding="utf-8"))]
    if found:
        pytest.fail(f"mapInArrow/mapInPandas called outside {OWNER}'s apply_kernel:\n  " + "\n  ".join(found))


def test_the_check_finds_a_call_and_ignores_mentions() -> None:
    source = '"""Runs with mapInArrow."""\nout = df.mapInArrow(fn, schema)\nname = "mapInArrow"\n'
    assert spark_map_calls(source) == [2]
