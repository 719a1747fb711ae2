"""The `augment` stage's configuration: mixture weights and the text and image operations, validated.

Pydantic only, no Spark: the augment kernels (curation.augment.kernel) carry it to the workers.
"""

from __future__ import annotations

import bisect
import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

from curation.augment.text import CASE_MODES
from pipelines.framework.stage import StageConfig


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
