"""The augment kernels: `pa.RecordBatch -> pa.RecordBatch` over documents and images, no Spark import.

Every decision is a pure function of (seed, row id, operation), so no output depends on
batch or partition boundaries (see curation.augment.stage for what the stage adds and why).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import BaseModel

from curation.augment.config import AugmentConfig
from curation.augment.image import IMAGE_OPS, encode
from curation.augment.text import TEXT_OPS
from pipelines.framework.drop_reason import DROP_REASON, FIELD, arrow_reasons, register_reason

DOWNSAMPLED = register_reason(
    "mixture_downsampled",
    "downsampled by the mixture (source x quality weight below 1, not drawn for this seed)",
)
AUG_COLUMNS = (("augmented_from", pa.string()), ("operation", pa.string()), ("params", pa.string()))
UNIT = float(1 << 64)


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
    """The input columns, then the drop reason and the augmentation columns where the input lacks them."""
    if DROP_REASON not in schema.names:
        schema = schema.append(FIELD)
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
            elif field.name == DROP_REASON:
                columns.append(pa.array(self.drop, pa.string()))
            elif field.name in replaced:
                new = pa.array([v.get(field.name) for v in self.values], field.type)
                columns.append(pc.if_else(pc.is_null(new), taken.column(field.name), new))
            else:
                columns.append(taken.column(field.name))
        return pa.RecordBatch.from_arrays(columns, schema=schema)


def _values_or_nulls(batch: pa.RecordBatch, name: str) -> list[Any]:
    """The column's values, or one None per row where the batch has no such column (it is optional)."""
    return batch.column(name).to_pylist() if name in batch.schema.names else [None] * batch.num_rows


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
        ids = batch.column(cfg.id_column).to_pylist()
        texts = batch.column("text").to_pylist()
        drops = arrow_reasons(batch).to_pylist()
        sources = _values_or_nulls(batch, "source")
        scores = _values_or_nulls(batch, cfg.quality_column)
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
        drops = arrow_reasons(batch).to_pylist()
        formats = _values_or_nulls(batch, "format")
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
