"""The `augment` stage: mixture weights (repeat / downsample) and optional text and image noise.

Every decision is a pure function of (seed, row id, operation): a rerun on the same
table version gives the same rows, and no decision depends on batch or partition
boundaries. The stage never deletes: a row downsampled by the mixture keeps its
place with `drop_reason = "mixture_downsampled"` (first reason wins, so rows an
earlier stage dropped pass through untouched). Added rows carry
`augmented_from` (the parent id), `operation` and `params` (JSON of every value
drawn), and the parent's other columns; captions are carried over for images.

Train/validation leakage: added rows keep their parent's id in `augmented_from`
and the `shards` stage splits by `coalesce(augmented_from, doc_id)`, so every
variant lands in its parent's split.

Mixing (DCLM / Nemotron style repeat factors): a kept row's weight is
`source_weights[source] * quality_weights[bucket(quality_score)]`. Weight w gives
floor(w) copies in total, plus one more when the row's hash falls under the
fractional part; w < 1 therefore keeps the row with probability w.
"""

from __future__ import annotations

import bisect
import json
import math
import random
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import BaseModel, ConfigDict, Field, model_validator

from curation.augment_image import IMAGE_OPS, encode
from curation.augment_text import CASE_MODES, TEXT_OPS
from pipelines.framework.stage import (
    Stage,
    StageConfig,
    StageContext,
    StageResult,
    apply_kernel,
    spark_to_arrow_schema,
)

DOWNSAMPLED = "mixture_downsampled"
AUG_COLUMNS = (("augmented_from", pa.string()), ("operation", pa.string()), ("params", pa.string()))
UNIT = float(1 << 64)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpConfig(_Strict):
    rate: float = Field(0.0, ge=0.0, le=1.0, description="share of kept rows that get one variant by this op")


class SpanDeletionConfig(OpConfig):
    max_fraction: float = Field(0.1, gt=0.0, le=1.0)


class CharNoiseConfig(OpConfig):
    char_rate: float = Field(0.02, gt=0.0, le=1.0)


class CaseConfig(OpConfig):
    word_rate: float = Field(0.1, gt=0.0, le=1.0)
    modes: list[str] = Field(default_factory=lambda: list(CASE_MODES))

    @model_validator(mode="after")
    def _known_modes(self) -> CaseConfig:
        unknown = set(self.modes) - set(CASE_MODES)
        if unknown or not self.modes:
            raise ValueError(f"modes must be a non-empty subset of {list(CASE_MODES)}, got {self.modes}")
        return self


class TextNoiseConfig(_Strict):
    """Text noise operations; each is off (rate 0) by default."""

    span_deletion: SpanDeletionConfig = SpanDeletionConfig()
    sentence_order: OpConfig = OpConfig()
    char_noise: CharNoiseConfig = CharNoiseConfig()
    case: CaseConfig = CaseConfig()


class FlipConfig(OpConfig):
    vertical_rate: float = Field(0.0, ge=0.0, le=1.0)


class CropConfig(OpConfig):
    min_scale: float = Field(0.7, gt=0.0, le=1.0)


class RotationConfig(OpConfig):
    max_degrees: float = Field(15.0, ge=0.0, le=180.0)


class ColorJitterConfig(OpConfig):
    strength: float = Field(0.2, ge=0.0, lt=1.0)


class ResizeConfig(OpConfig):
    min_scale: float = Field(0.5, gt=0.0)
    max_scale: float = Field(1.0, gt=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> ResizeConfig:
        if self.min_scale > self.max_scale:
            raise ValueError("min_scale must not exceed max_scale")
        return self


class JpegConfig(OpConfig):
    min_quality: int = Field(30, ge=1, le=100)
    max_quality: int = Field(90, ge=1, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> JpegConfig:
        if self.min_quality > self.max_quality:
            raise ValueError("min_quality must not exceed max_quality")
        return self


class ImageAugConfig(_Strict):
    """Image operations (Pillow); each is off (rate 0) by default."""

    flip: FlipConfig = FlipConfig()
    crop: CropConfig = CropConfig()
    rotation: RotationConfig = RotationConfig()
    color_jitter: ColorJitterConfig = ColorJitterConfig()
    resize: ResizeConfig = ResizeConfig()
    jpeg: JpegConfig = JpegConfig()


class MixtureConfig(_Strict):
    """Repeat factors by source and by quality bucket (weights multiply; 1.0 everywhere = no change)."""

    source_weights: dict[str, float] = Field(default_factory=dict)
    default_source_weight: float = Field(1.0, ge=0.0)
    quality_bins: list[float] = Field(
        default_factory=list, description="ascending bucket edges on quality_score"
    )
    quality_weights: list[float] = Field(
        default_factory=list, description="one weight per bucket: len(bins) + 1"
    )
    unscored_weight: float = Field(1.0, ge=0.0, description="weight of rows without a quality score")

    @model_validator(mode="after")
    def _consistent(self) -> MixtureConfig:
        if self.quality_bins != sorted(self.quality_bins):
            raise ValueError("quality_bins must be ascending")
        if self.quality_bins and len(self.quality_weights) != len(self.quality_bins) + 1:
            raise ValueError("quality_weights needs exactly len(quality_bins) + 1 entries")
        if not self.quality_bins and self.quality_weights:
            raise ValueError("quality_weights given without quality_bins")
        if any(w < 0 for w in [*self.source_weights.values(), *self.quality_weights]):
            raise ValueError("weights must be >= 0")
        return self

    def weight(self, source: str | None, quality: float | None) -> float:
        w = self.source_weights.get(source or "", self.default_source_weight)
        if quality is None or (isinstance(quality, float) and math.isnan(quality)):
            return w * self.unscored_weight
        if self.quality_bins:
            w *= self.quality_weights[bisect.bisect_right(self.quality_bins, quality)]
        return w


class AugmentConfig(StageConfig):
    input: str = "curated"
    output: str = "augmented"
    images_input: str | None = Field(
        None, description="images table to augment (e.g. images); None = text only"
    )
    images_output: str = "images_augmented"
    seed: int = 0
    mixture: MixtureConfig = MixtureConfig()
    text: TextNoiseConfig = TextNoiseConfig()
    image: ImageAugConfig = ImageAugConfig()
    id_column: str = "doc_id"
    image_id_column: str = "image_id"
    quality_column: str = "quality_score"


def unit_hash(seed: int, row_id: str, purpose: str) -> float:
    """A uniform draw in [0, 1) fixed by (seed, id, purpose)."""
    return xxhash.xxh64_intdigest(f"{seed}\x1f{row_id}\x1f{purpose}".encode()) / UNIT


def rng_for(seed: int, row_id: str, purpose: str) -> random.Random:
    return random.Random(xxhash.xxh64_intdigest(f"{seed}\x1f{row_id}\x1f{purpose}\x1fparams".encode()))


def derived_id(parent: str, operation: str, k: int) -> str:
    return xxhash.xxh3_128_hexdigest(f"{parent}\x1f{operation}\x1f{k}".encode())


def enabled_ops(section: BaseModel) -> list[tuple[str, dict[str, Any]]]:
    """(name, params) of the operations whose rate is above zero, in declaration order."""
    out = []
    for name in type(section).model_fields:
        op = getattr(section, name)
        if op.rate > 0:
            out.append((name, op.model_dump(exclude={"rate"})))
    return out


def output_schema(schema: pa.Schema) -> pa.Schema:
    if "drop_reason" not in schema.names:
        schema = schema.append(pa.field("drop_reason", pa.string()))
    for name, dtype in AUG_COLUMNS:
        if name not in schema.names:
            schema = schema.append(pa.field(name, dtype))
    return schema


class _Rows:
    """Output rows of one batch: parent index, drop reason, augmentation columns, replaced values."""

    def __init__(self) -> None:
        self.index: list[int] = []
        self.drop: list[str | None] = []
        self.aug: dict[str, list[str | None]] = {name: [] for name, _ in AUG_COLUMNS}
        self.values: list[dict[str, Any]] = []

    def add(
        self, i: int, drop: str | None, aug: tuple[str | None, str | None, str | None], **values: Any
    ) -> None:
        self.index.append(i)
        self.drop.append(drop)
        for (name, _), value in zip(AUG_COLUMNS, aug, strict=True):
            self.aug[name].append(value)
        self.values.append(values)

    def build(self, batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
        taken = batch.take(pa.array(self.index, pa.int64()))
        replaced = {name for values in self.values for name in values}
        columns = []
        for field in schema:
            if field.name in self.aug:
                columns.append(pa.array(self.aug[field.name], field.type))
            elif field.name == "drop_reason":
                columns.append(pa.array(self.drop, pa.string()))
            elif field.name in replaced:
                new = pa.array([v.get(field.name) for v in self.values], field.type)
                columns.append(pc.if_else(pc.is_null(new), taken.column(field.name), new))
            else:
                columns.append(taken.column(field.name))
        return pa.RecordBatch.from_arrays(columns, schema=schema)


def _params(drawn: dict[str, Any], configured: dict[str, Any], seed: int) -> str:
    return json.dumps({**configured, **drawn, "seed": seed}, sort_keys=True)


class DocumentAugmenter:
    """Kernel over document batches: mixture decisions and text variants for kept rows."""

    def __init__(self, config: AugmentConfig, schema: pa.Schema):
        self.config = config
        self.schema = output_schema(schema)
        self.text_ops = enabled_ops(config.text)

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        cfg = self.config
        names = batch.schema.names
        ids = batch.column(cfg.id_column).to_pylist()
        texts = batch.column("text").to_pylist()
        drops = batch.column("drop_reason").to_pylist() if "drop_reason" in names else [None] * len(ids)
        sources = batch.column("source").to_pylist() if "source" in names else [None] * len(ids)
        scores = (
            batch.column(cfg.quality_column).to_pylist() if cfg.quality_column in names else [None] * len(ids)
        )
        rows = _Rows()
        for i, row_id in enumerate(ids):
            if drops[i] is not None or row_id is None:
                rows.add(i, drops[i], (None, None, None))
                continue
            weight = cfg.mixture.weight(sources[i], scores[i])
            copies = math.floor(weight) + (
                unit_hash(cfg.seed, row_id, "mixture") < weight - math.floor(weight)
            )
            if copies == 0:
                rows.add(i, DOWNSAMPLED, (None, None, None))
                continue
            rows.add(i, None, (None, None, None))
            for k in range(1, copies):
                params = json.dumps({"copy": k, "weight": weight, "seed": cfg.seed}, sort_keys=True)
                rows.add(
                    i, None, (row_id, "repeat", params), **{cfg.id_column: derived_id(row_id, "repeat", k)}
                )
            if texts[i] is not None:
                self._noise(rows, i, row_id, texts[i])
        return rows.build(batch, self.schema)

    def _noise(self, rows: _Rows, i: int, row_id: str, text: str) -> None:
        cfg = self.config
        for name, configured in self.text_ops:
            if unit_hash(cfg.seed, row_id, name) >= getattr(cfg.text, name).rate:
                continue
            new_text, drawn = TEXT_OPS[name](text, rng_for(cfg.seed, row_id, name), configured)
            new_id = derived_id(row_id, name, 0)
            rows.add(
                i,
                None,
                (row_id, name, _params(drawn, configured, cfg.seed)),
                **{cfg.id_column: new_id, "text": new_text},
            )


class ImageAugmenter:
    """Kernel over image batches: one variant per enabled op for the rows its rate selects."""

    def __init__(self, config: AugmentConfig, schema: pa.Schema):
        self.config = config
        self.schema = output_schema(schema)
        self.ops = enabled_ops(config.image)

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        import hashlib
        import io

        from PIL import Image, UnidentifiedImageError

        cfg = self.config
        names = batch.schema.names
        ids = batch.column(cfg.image_id_column).to_pylist()
        drops = batch.column("drop_reason").to_pylist() if "drop_reason" in names else [None] * len(ids)
        formats = batch.column("format").to_pylist() if "format" in names else [None] * len(ids)
        payloads = batch.column("bytes")
        rows = _Rows()
        for i, row_id in enumerate(ids):
            rows.add(i, drops[i], (None, None, None))
            chosen = [
                (n, p) for n, p in self.ops if unit_hash(cfg.seed, row_id, n) < getattr(cfg.image, n).rate
            ]
            if drops[i] is not None or row_id is None or not chosen:
                continue
            data = payloads[i].as_py()
            try:
                image = Image.open(io.BytesIO(data))
                image.load()
            except (UnidentifiedImageError, OSError, ValueError, TypeError):
                continue  # ingest already quarantines undecodable images; nothing to vary here
            for name, configured in chosen:
                variant, drawn = IMAGE_OPS[name](image, rng_for(cfg.seed, row_id, name), configured)
                encoded, fmt = encode(variant, name, formats[i], drawn)
                values = {
                    cfg.image_id_column: derived_id(row_id, name, 0),
                    "bytes": encoded,
                    "format": fmt,
                    "width": variant.width,
                    "height": variant.height,
                    "sha256": hashlib.sha256(encoded).hexdigest(),
                }
                values = {k: v for k, v in values.items() if k in names}
                rows.add(i, None, (row_id, name, _params(drawn, configured, cfg.seed)), **values)
        return rows.build(batch, self.schema)


class Augment(Stage):
    """Add mixture repeats and noisy variants of kept rows (documents, optionally images)."""

    name = "augment"
    Config = AugmentConfig
    row_policy: ClassVar[str] = "expand"
    config: AugmentConfig

    def input_tables(self) -> list[str]:
        return [self.config.input] + ([self.config.images_input] if self.config.images_input else [])

    def output_tables(self) -> list[str]:
        return [self.config.output] + ([self.config.images_output] if self.config.images_input else [])

    def run(self, ctx: StageContext) -> StageResult:
        cfg = self.config
        tables = {}
        metrics: dict[str, Any] = {}
        docs = ctx.read(cfg.input)
        schema = spark_to_arrow_schema(docs)
        for column in (cfg.id_column, "text"):
            if column not in schema.names:
                raise ValueError(f"table {cfg.input!r} has no {column!r} column (columns: {schema.names})")
        augmenter = DocumentAugmenter(cfg, schema)
        tables[cfg.output] = apply_kernel(docs, augmenter, augmenter.schema)
        metrics["documents"] = _operation_counts(tables[cfg.output])
        if cfg.images_input:
            images = ctx.read(cfg.images_input)
            image_aug = ImageAugmenter(cfg, spark_to_arrow_schema(images))
            tables[cfg.images_output] = apply_kernel(images, image_aug, image_aug.schema)
            metrics["images"] = _operation_counts(tables[cfg.images_output])
        metrics["mixture"] = cfg.mixture.model_dump()
        return StageResult(tables=tables, metrics=metrics)


def _operation_counts(df: Any) -> dict[str, int]:
    """Rows per operation ("original" for input rows) and downsampled rows: a small aggregate."""
    from pyspark.sql import functions as F

    counts = (
        df.select(
            F.coalesce(F.col("operation"), F.lit("original")).alias("op"),
            (F.col("drop_reason") == F.lit(DOWNSAMPLED)).alias("down"),
        )
        .groupBy("op")
        .agg(F.count(F.lit(1)).alias("rows"), F.sum(F.col("down").cast("int")).alias("down"))
        .collect()
    )
    out = {row["op"]: int(row["rows"]) for row in counts}
    out[DOWNSAMPLED] = sum(int(row["down"] or 0) for row in counts)
    return dict(sorted(out.items()))
