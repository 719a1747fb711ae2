"""Image augmentation operations (Pillow): pure functions of (image, rng, params) -> (image, drawn params).

Every random draw is returned in the parameters so that a variant records exactly
how it was made; encoding is deterministic, so the same seed gives the same bytes.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageEnhance, ImageOps

ImageOp = Callable[[Image.Image, random.Random, dict[str, Any]], tuple[Image.Image, dict[str, Any]]]
LOSSLESS_FORMATS = {"PNG", "WEBP", "TIFF", "BMP", "GIF"}


def flip(
    image: Image.Image, rng: random.Random, params: dict[str, Any]
) -> tuple[Image.Image, dict[str, Any]]:
    """Mirror horizontally, or vertically with probability `vertical_rate`."""
    if rng.random() < params["vertical_rate"]:
        return ImageOps.flip(image), {"direction": "vertical"}
    return ImageOps.mirror(image), {"direction": "horizontal"}


def crop(
    image: Image.Image, rng: random.Random, params: dict[str, Any]
) -> tuple[Image.Image, dict[str, Any]]:
    """A random crop keeping between `min_scale` and all of each side."""
    width, height = image.size
    w = max(1, int(width * rng.uniform(params["min_scale"], 1.0)))
    h = max(1, int(height * rng.uniform(params["min_scale"], 1.0)))
    left, top = rng.randint(0, width - w), rng.randint(0, height - h)
    box = (left, top, left + w, top + h)
    return image.crop(box), {"box": list(box)}


def rotation(
    image: Image.Image, rng: random.Random, params: dict[str, Any]
) -> tuple[Image.Image, dict[str, Any]]:
    """Rotate by a uniform angle in [-max_degrees, max_degrees], same canvas size, black fill."""
    degrees = round(rng.uniform(-params["max_degrees"], params["max_degrees"]), 3)
    return image.rotate(degrees, resample=Image.Resampling.BILINEAR), {"degrees": degrees}


def color_jitter(
    image: Image.Image, rng: random.Random, params: dict[str, Any]
) -> tuple[Image.Image, dict[str, Any]]:
    """Brightness, contrast and saturation each scaled by a factor in [1 - strength, 1 + strength]."""
    strength = params["strength"]
    factors = {
        k: round(rng.uniform(1 - strength, 1 + strength), 4) for k in ("brightness", "contrast", "saturation")
    }
    rgb = image.convert("RGB")
    rgb = ImageEnhance.Brightness(rgb).enhance(factors["brightness"])
    rgb = ImageEnhance.Contrast(rgb).enhance(factors["contrast"])
    rgb = ImageEnhance.Color(rgb).enhance(factors["saturation"])
    return rgb, factors


def resize(
    image: Image.Image, rng: random.Random, params: dict[str, Any]
) -> tuple[Image.Image, dict[str, Any]]:
    """Scale both sides by one factor in [min_scale, max_scale]."""
    scale = round(rng.uniform(params["min_scale"], params["max_scale"]), 4)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC), {"scale": scale, "size": list(size)}


def jpeg(
    image: Image.Image, rng: random.Random, params: dict[str, Any]
) -> tuple[Image.Image, dict[str, Any]]:
    """Draw a JPEG quality in [min_quality, max_quality]; `encode` applies it (the encoding is the change)."""
    return image.convert("RGB"), {"quality": rng.randint(params["min_quality"], params["max_quality"])}


IMAGE_OPS: dict[str, ImageOp] = {
    "flip": flip,
    "crop": crop,
    "rotation": rotation,
    "color_jitter": color_jitter,
    "resize": resize,
    "jpeg": jpeg,
}


def encode(
    image: Image.Image, operation: str, source_format: str | None, params: dict[str, Any]
) -> tuple[bytes, str]:
    """Bytes and format of a variant: JPEG at the drawn quality for `jpeg`, else the source format
    when Pillow can write it losslessly, else PNG (so geometric ops do not add JPEG artefacts twice)."""
    buffer = io.BytesIO()
    if operation == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=params["quality"])
        return buffer.getvalue(), "JPEG"
    fmt = (source_format or "").upper()
    if fmt in ("JPEG", "JPG"):
        image.convert("RGB").save(buffer, format="JPEG", quality=95)
        return buffer.getvalue(), "JPEG"
    fmt = fmt if fmt in LOSSLESS_FORMATS else "PNG"
    if fmt == "GIF" or image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    image.save(buffer, format=fmt)
    return buffer.getvalue(), fmt
