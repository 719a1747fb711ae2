"""Benchmark n-gram hits as an annotator: `contamination_ngrams` and `contamination_benchmark`.

The index (every benchmark item's word 13-grams, hashed) is built once on the
driver and broadcast, so each worker loads it once, not per task; `prepare` does
that. The standalone `decontaminate` stage shares the index and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import Field, field_validator

from curation.annotators.base import Annotator, AnnotatorConfig, BatchContext, declared_rule
from curation.decontam.index import DECONTAM_FIELDS, BenchmarkSpec, DecontamIndex

RULE = declared_rule(
    "contamination", "contamination_ngrams", "ge", 1, means="shares word n-grams with a benchmark's items"
)


class BenchmarkConfig(AnnotatorConfig):
    path: str = Field(description="JSONL or CSV file (optionally .gz) of benchmark items")
    name: str | None = Field(None, description="name recorded on matches (default: from the file name)")
    fields: list[str] | None = Field(
        None, description="fields holding the text to protect (default: question/prompt/...)"
    )

    @field_validator("path")
    @classmethod
    def _file_exists(cls, value: str) -> str:
        """A missing benchmark fails when the spec is read, not when annotate starts after the stages before it."""
        if not Path(value).is_file():
            raise ValueError(
                f"benchmark file {value!r} does not exist (relative paths are read from {Path.cwd()})"
            )
        return value

    def spec(self) -> BenchmarkSpec:
        return BenchmarkSpec(Path(self.path), self.name, self.fields)


class DecontamConfig(AnnotatorConfig):
    benchmarks: list[BenchmarkConfig] = Field(min_length=1, description="benchmark files to protect")
    ngram: int = Field(13, ge=3, description="n-gram length in words")


class Decontam(Annotator):
    """Counts each document's word n-grams found in benchmark items, and names the benchmark hit most."""

    name = "decontam"
    Config = DecontamConfig
    columns = DECONTAM_FIELDS
    rules = (RULE,)
    rule_rank = 30

    def __init__(self, config: DecontamConfig):
        super().__init__(config)
        self.index: Any = None

    def build(self) -> DecontamIndex:
        return DecontamIndex.build([b.spec() for b in self.config.benchmarks], self.config.ngram)

    def prepare(self, broadcast: Callable[[Any], Any]) -> dict[str, Any]:
        index = self.build()
        self.index = broadcast(index)
        return {"benchmarks": index.stats, "benchmark_ngrams": len(index.ngrams)}

    def compute(self, ctx: BatchContext) -> list[pa.Array]:
        if self.index is None:  # used without `prepare` (tests, single-machine tools): build it here
            self.index = self.build()
        index: DecontamIndex = getattr(self.index, "value", self.index)
        return index.arrays(ctx.texts())
