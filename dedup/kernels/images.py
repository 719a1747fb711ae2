"""Image fingerprints: sha256 of the bytes, sha256 of the decoded pixels, 64-bit pHash and dHash.

Bytes hashes catch copies of a file; pixel hashes catch the same picture saved
with other metadata or in a lossless format; pHash (DCT) and dHash (gradients)
catch resized and recompressed copies, compared by Hamming distance. An image
Pillow cannot decode gets `decode_error` instead of hashes: the stage sends it
to quarantine rather than failing the batch.
"""

from __future__ import annotations

import hashlib
import io
import warnings

import imagehash
import numpy as np
import pyarrow as pa
from PIL import Image

HASH_COLUMNS = ("pixel_sha256", "phash", "dhash", "decode_error")
FINGERPRINT_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string()),
        pa.field("sha256", pa.string()),
        pa.field("pixel_sha256", pa.string()),
        pa.field("phash", pa.int64()),
        pa.field("dhash", pa.int64()),
        pa.field("decode_error", pa.string()),
    ]
)


def _bits_to_int64(bits: np.ndarray) -> int:
    value = int.from_bytes(np.packbits(bits.flatten()).tobytes(), "big")
    return value - (1 << 64) if value >= 1 << 63 else value


def fingerprint(data: bytes) -> tuple[str, int, int]:
    """(pixel sha256, pHash, dHash) of one encoded image; raises on undecodable bytes."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            rgba = image.convert("RGBA")
    header = f"{rgba.width}x{rgba.height}:".encode()
    pixels = hashlib.sha256(header + rgba.tobytes()).hexdigest()
    phash = _bits_to_int64(imagehash.phash(rgba.convert("RGB")).hash)
    dhash = _bits_to_int64(imagehash.dhash(rgba.convert("RGB")).hash)
    return pixels, phash, dhash


def image_hashes(batch: pa.RecordBatch, bytes_column: str = "bytes") -> pa.RecordBatch:
    """Append sha256 (kept if present), pixel_sha256, phash, dhash and decode_error to a batch of images."""
    blobs = batch.column(bytes_column).to_pylist()
    given = batch.column("sha256").to_pylist() if "sha256" in batch.schema.names else [None] * len(blobs)
    sha, pixels, phash, dhash, errors = [], [], [], [], []
    for blob, known in zip(blobs, given, strict=True):
        sha.append(known or (hashlib.sha256(blob).hexdigest() if blob is not None else None))
        try:
            if not blob:
                raise ValueError("no image bytes")
            p, ph, dh = fingerprint(blob)
            pixels.append(p)
            phash.append(ph)
            dhash.append(dh)
            errors.append(None)
        except Exception as exc:  # noqa: BLE001 - any decoder failure means a corrupt image, never a crash
            pixels.append(None)
            phash.append(None)
            dhash.append(None)
            errors.append(f"{type(exc).__name__}: {exc}"[:500])
    names = [n for n in batch.schema.names if n not in ("sha256", *HASH_COLUMNS)]
    arrays = [batch.column(n) for n in names] + [
        pa.array(sha, pa.string()),
        pa.array(pixels, pa.string()),
        pa.array(phash, pa.int64()),
        pa.array(dhash, pa.int64()),
        pa.array(errors, pa.string()),
    ]
    return pa.RecordBatch.from_arrays(arrays, names=[*names, "sha256", *HASH_COLUMNS])


def image_fingerprints(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch of (image_id, bytes[, sha256]) to its FINGERPRINT_SCHEMA row per image."""
    return image_hashes(batch).select(FINGERPRINT_SCHEMA.names)
