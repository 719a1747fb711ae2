"""Image previews for the gallery: small PNGs decoded with bounds, so a hostile image costs little.

An image row can hold anything (a decompression bomb, a truncated file): the pixel count is checked
before decoding, Pillow's draft mode decodes JPEGs at reduced size, and every decoding error is a 404
for that one image rather than a failed page.
"""

from __future__ import annotations

from io import BytesIO

from jobs.web.errors import NotFound

THUMB_PIXELS = 160
MAX_IMAGE_PIXELS = 50_000_000


def thumbnail(data: bytes, image_id: str) -> bytes:
    """A PNG thumbnail at most THUMB_PIXELS on a side; corrupt or oversized images raise NotFound."""
    from PIL import Image

    try:
        with Image.open(BytesIO(data)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise NotFound(f"image {image_id!r} is too large to preview ({img.width}x{img.height})")
            img.draft("RGB", (THUMB_PIXELS, THUMB_PIXELS))
            thumb = img.convert("RGB")
            thumb.thumbnail((THUMB_PIXELS, THUMB_PIXELS))
            out = BytesIO()
            thumb.save(out, format="PNG", optimize=True)
            return out.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise NotFound(f"image {image_id!r} cannot be decoded: {exc}") from exc
