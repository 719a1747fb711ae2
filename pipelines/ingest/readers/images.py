"""Images: one file per image (jpg, png, gif, webp, tiff, bmp) or Parquet rows holding image bytes.

Every image is fully decoded once with Pillow (`verify` catches bad checksums, `load`
catches truncation, which `verify` misses for JPEG); what fails becomes a quarantine
row: `unidentified_image` (Pillow cannot identify it), `corrupt_image` (it breaks while
decoding), `image_too_large` (over `max_pixels`, a decompression-bomb guard), `oversize`
(file over `max_image_bytes`). Multi-frame images (GIF, TIFF) are checked on their
first frame.

Captions (option `captions`):
* `auto` (default): a sidecar `<stem>.txt` beside the image, else COCO caption files
  `annotations/captions_*.json` in the image's folder or any folder above it up to the
  input root (all captions of an image, one per line);
* `coco` / `jsonl`: the file named by `captions_path` (JSONL: `image_field` holds a path
  or list of paths matched by file name, `caption_field` the caption);
* `sidecar`, `none`.
Caption files are parsed once per Python worker (module-level cache keyed by path).
Images on object storage or the web are read through the I/O layer like every input; their
captions come from a `captions_path` file (local or a URL): sidecars and COCO files above an
image are looked for on local disk only (on a bucket each would cost a request per image).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections import defaultdict
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict

from pipelines.ingest.readers.base import FileTask
from pipelines.ingest.readers.parquet import iter_rows, open_parquet
from pipelines.ingest.readers.source import is_remote, open_input

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp")
# A sidecar caption longer than this is cut: the file next to an image may be anything.
MAX_CAPTION_CHARS = 100_000


class ImageOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    captions: Literal["auto", "coco", "jsonl", "sidecar", "none"] = "auto"
    captions_path: str | None = None
    image_field: str = "images"
    caption_field: str = "text"
    max_image_bytes: int = 64_000_000
    max_pixels: int = 100_000_000


class ImageParquetOptions(BaseModel):
    """`bytes_column`: binary or list-of-binary column (default: the first such column);
    `caption_column`: caption text; `path_column`: original image path(s), used as uri."""

    model_config = ConfigDict(extra="forbid")
    bytes_column: str | None = None
    caption_column: str = "text"
    path_column: str | None = "images"
    max_image_bytes: int = 64_000_000
    max_pixels: int = 100_000_000


def inspect_image(data: bytes, max_pixels: int) -> tuple[str, int, int] | str:
    """(format, width, height) of a decodable image, or the quarantine reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > max_pixels:
                    return "image_too_large"
                im.verify()
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                return (im.format or "unknown").lower(), im.width, im.height
    except UnidentifiedImageError:
        return "unidentified_image"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return "image_too_large"
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError):
        return "corrupt_image"


def image_row(
    task: FileTask,
    position: str | int,
    data: bytes,
    caption: str | None,
    max_pixels: int,
    uri: str | None = None,
) -> dict[str, Any]:
    info = inspect_image(data, max_pixels)
    if isinstance(info, str):
        return task.quarantine(position, info, repr(data[:120]))
    fmt, width, height = info
    return {
        "kind": "image",
        "id": task.record_id(position),
        "source": task.source,
        "uri": uri or task.relpath,
        "locator": task.locator(position),
        "bytes": data,
        "format": fmt,
        "width": width,
        "height": height,
        "caption": caption,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


@lru_cache(maxsize=16)
def _coco_captions(path: str) -> dict[str, str]:
    with io.TextIOWrapper(open_input(path), encoding="utf-8") as fh:
        data = json.load(fh)
    names = {img["id"]: img["file_name"] for img in data.get("images", [])}
    captions: dict[str, list[str]] = defaultdict(list)
    for ann in data.get("annotations", []):
        if ann.get("image_id") in names and isinstance(ann.get("caption"), str):
            captions[names[ann["image_id"]]].append(ann["caption"].strip())
    return {name: "\n".join(caps) for name, caps in captions.items()}


@lru_cache(maxsize=16)
def _jsonl_captions(path: str, image_field: str, caption_field: str) -> dict[str, str]:
    found: dict[str, list[str]] = defaultdict(list)
    with io.TextIOWrapper(open_input(path), encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            images = obj.get(image_field) if isinstance(obj, dict) else None
            caption = obj.get(caption_field) if isinstance(obj, dict) else None
            if isinstance(caption, str):
                for image in [images] if isinstance(images, str) else images or []:
                    found[os.path.basename(str(image))].append(caption)
    return {name: "\n".join(caps) for name, caps in found.items()}


@lru_cache(maxsize=256)
def _coco_files_above(folder: str, root: str) -> tuple[str, ...]:
    """COCO caption files in `folder`/annotations or the same place in any folder up to `root`."""
    here, top = Path(folder), Path(root)
    while True:
        hits = sorted(str(p) for p in (here / "annotations").glob("captions_*.json"))
        if hits or here == top or top not in here.parents:
            return tuple(hits)
        here = here.parent


def _resolve(task: FileTask, path: str | None) -> str:
    if not path:
        raise ValueError(f"input {task.source!r}: captions need option captions_path")
    return path if os.path.isabs(path) or is_remote(path) else os.path.join(task.root, path)


def find_caption(task: FileTask, opts: ImageOptions) -> str | None:
    name = os.path.basename(task.path)
    sidecar = os.path.splitext(task.path)[0] + ".txt"
    if opts.captions in ("auto", "sidecar") and not task.remote and os.path.isfile(sidecar):
        with open(sidecar, encoding="utf-8", errors="replace") as fh:
            return fh.read(MAX_CAPTION_CHARS).strip() or None  # a sidecar is a caption, not a corpus
    if opts.captions == "auto" and not task.remote:
        for path in _coco_files_above(os.path.dirname(task.path), task.root):
            if (caption := _coco_captions(path).get(name)) is not None:
                return caption
    if opts.captions == "coco":
        return _coco_captions(_resolve(task, opts.captions_path)).get(name)
    if opts.captions == "jsonl":
        return _jsonl_captions(_resolve(task, opts.captions_path), opts.image_field, opts.caption_field).get(
            name
        )
    return None


def read_image_file(task: FileTask) -> Iterator[dict[str, Any]]:
    opts = ImageOptions(**task.options)
    with task.open_raw() as fh:
        data = fh.read(opts.max_image_bytes + 1)
    if len(data) > opts.max_image_bytes:
        yield task.quarantine(0, "oversize", repr(data[:120]))
        return
    yield image_row(task, 0, data, find_caption(task, opts), opts.max_pixels)


def _bytes_column(pf: Any, wanted: str | None) -> str | None:
    import pyarrow as pa

    for field in pf.schema_arrow:
        if wanted is not None:
            if field.name == wanted:
                return field.name
            continue
        kind = field.type.value_type if pa.types.is_list(field.type) else field.type
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            return field.name
    return None


def read_image_parquet(task: FileTask) -> Iterator[dict[str, Any]]:
    opts = ImageParquetOptions(**task.options)
    pf, problem = open_parquet(task)
    if pf is None:
        yield problem  # type: ignore[misc]
        return
    column = _bytes_column(pf, opts.bytes_column)
    if column is None:
        yield task.quarantine(0, "missing_column", f"no image bytes column; columns: {pf.schema_arrow.names}")
        return
    for index, row, error in iter_rows(task, pf):
        if row is None:
            yield task.quarantine(index, "corrupt_parquet", error)
            return
        yield from _row_images(task, opts, index, row, column)


def _row_images(
    task: FileTask, opts: ImageParquetOptions, index: int, row: dict[str, Any], column: str
) -> Iterator[dict[str, Any]]:
    images = row.get(column)
    images = [images] if isinstance(images, bytes) else list(images or [])
    paths = row.get(opts.path_column) if opts.path_column else None
    paths = [paths] if isinstance(paths, str) else list(paths or [])
    caption = row.get(opts.caption_column)
    caption = caption if isinstance(caption, str) else None
    if not images:
        yield task.quarantine(index, "no_image", repr(row)[:200])
    for k, data in enumerate(images):
        position = f"{index}.{k}"
        if not data:
            yield task.quarantine(position, "empty_image", "")
        elif len(data) > opts.max_image_bytes:
            yield task.quarantine(position, "oversize", repr(data[:120]))
        else:
            uri = paths[k] if k < len(paths) and isinstance(paths[k], str) else None
            yield image_row(task, position, data, caption, opts.max_pixels, uri=uri)
