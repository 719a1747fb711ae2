"""`refinery dedup files PATH...`: run the Spark dedup code on files and print the clusters.

For users to check their settings on a handful of their own documents before a
job (how similar must two pages be to go?), and for us to evaluate. Text files
are one document each, JSONL files (.jsonl, .ndjson, also compressed) one
document per line (its `text` field), image files one image each; folders are
walked. Text and JSONL go through ingest's own readers (`read_file`), so a file
or line ingest would quarantine is skipped here with the same reason, counted,
never turned into a wrong document. The same functions as the stages run
(`near_duplicates`, `image_clusters`), on a local Spark session.

Everything is read on the driver, so every read is bounded: a text file or JSONL
line over `--max-doc-bytes`, an image over `--max-image-bytes`, is skipped unread
past that size, and only regular files are opened (a FIFO would block, /dev/zero
never end).
"""

from __future__ import annotations

import json
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.framework.terminal_text import path_for_display
from pipelines.ingest.readers.base import DEFAULT_MAX_DOC_BYTES
from pipelines.ingest.readers.compressed import COMPRESSED_SUFFIXES

app = typer.Typer(help="Deduplication tools: find duplicate clusters in files with the pipeline's own code.")


@app.callback()
def dedup() -> None:
    """Deduplication tools (a group, so that `files` stays a subcommand)."""


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
# ingest's limit for one image file (ImageOptions.max_image_bytes).
DEFAULT_MAX_IMAGE_BYTES = 64_000_000
# How a skip reason reads in a problem line; a reason not listed reads as its name.
REASONS = {
    "missing_text_field": "no text field (or a null one)",
    "text_not_a_string": "the text field is not a string",
    "not_an_object": "a JSON value that is not an object",
    "malformed_json": "not valid JSON",
    "invalid_utf8": "not UTF-8",
    "invalid_unicode": "text with lone surrogate escapes",
    "binary_file": "a binary file, not text",
    "undecodable_text": "too many undecodable bytes to be text",
    "empty_text": "no text",
    "empty_file": "an empty file",
    "truncated_stream": "damaged compressed stream",
    "not_a_regular_file": "not a regular file",
    "link_to_folder": "a link to a folder, not followed",
    "unreadable_file": "cannot be read",
}
# Reasons whose excerpt is the error message (what is wrong), not the user's text.
EXPLAINED = {"malformed_json", "truncated_stream", "reader_error", "read_failed", "unreadable_file"}


@dataclass
class Gathered:
    """What the files gave: documents and images to cluster, one line per skipped record, and the
    skips counted by reason (records read = documents + images + skipped)."""

    docs: list[dict[str, str]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def skip(self, where: str, reason: str, detail: str = "") -> None:
        """Count one skipped record and say where and why, so nothing is dropped unseen."""
        self.skipped[reason] += 1
        self.problems.append(f"{where}: {detail or REASONS.get(reason, reason.replace('_', ' '))}")


def _walk(paths: list[Path], found: Gathered) -> list[Path]:
    """The regular files named or under the folders named; anything else is a skip line, since
    opening a FIFO blocks and reading a device may never end."""
    files: list[Path] = []
    for path in paths:
        if not path.exists() and not path.is_symlink():
            raise typer.BadParameter(f"{path} does not exist", param_hint="PATH")
        if not path.is_dir():
            _add_file(path, files, found)
            continue
        for child in sorted(path.rglob("*")):
            if child.name.startswith(".") or (child.is_dir() and not child.is_symlink()):
                continue  # hidden, or a folder rglob walks itself
            _add_file(child, files, found)
    return files


def _add_file(path: Path, files: list[Path], found: Gathered) -> None:
    """Keep `path` if it is a regular file (stat follows links), else say what it is."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        found.skip(str(path), "unreadable_file", f"cannot be read ({exc.strerror or exc})")
        return
    if stat.S_ISREG(mode):
        files.append(path)
    else:
        found.skip(str(path), "link_to_folder" if stat.S_ISDIR(mode) else "not_a_regular_file")


def _is_jsonl(path: Path) -> bool:
    """`.jsonl`/`.ndjson`, also compressed (`.jsonl.gz`, `.ndjson.zst`, ...)."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in JSONL_SUFFIXES


def _read_texts(path: Path, max_doc_bytes: int, found: Gathered) -> None:
    """One file through ingest's reader: documents kept, each quarantined record a skip line, the
    records past ingest's per-file cap counted by reason (never silently dropped)."""
    from pipelines.ingest.readers import CAPPED, read_file
    from pipelines.ingest.readers.base import DOCUMENT, FOLDED, QUARANTINE, FileTask

    fmt = "jsonl" if _is_jsonl(path) else "text"
    task = FileTask(source="cli", path=str(path), relpath=str(path), format=fmt, max_doc_bytes=max_doc_bytes)
    whole_file, prefix = task.locator(0), task.locator("")  # position 0: the file itself (lines from 1)
    for row in read_file(task):
        reason = row.get("reason")
        # The real name, not the locator's display form: --json names files as they are (printing escapes).
        where = str(path) if row["locator"] == whole_file else f"{path}:{row['locator'][len(prefix) :]}"
        if row["kind"] == DOCUMENT:
            found.docs.append({"doc_id": where, "text": row["text"]})
        elif row["kind"] == FOLDED:
            found.skipped[reason] += json.loads(row["meta"])["count"]
        elif row["kind"] == QUARANTINE and reason == CAPPED:
            found.problems.append(f"{where}: {row['excerpt']}")
        elif row["kind"] == QUARANTINE:
            found.skip(where, reason, _detail(reason, row["excerpt"], max_doc_bytes, fmt))


def _detail(reason: str, excerpt: str, max_doc_bytes: int, fmt: str) -> str:
    """What a problem line says: the error for a broken record, the option for an oversize one."""
    if reason == "oversize":
        what = "line" if fmt == "jsonl" else "file"
        return f"{what} larger than --max-doc-bytes ({max_doc_bytes} bytes); raise it to read it"
    if reason in EXPLAINED and excerpt:
        return f"{REASONS.get(reason, reason.replace('_', ' '))} ({excerpt})"
    return ""


def _read_image(path: Path, max_image_bytes: int, found: Gathered) -> None:
    """The image's bytes, read only up to the limit (a file may grow between stat and read)."""
    name = path_for_display(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_image_bytes + 1)
    except OSError as exc:
        found.skip(name, "unreadable_file", f"cannot be read ({exc.strerror or exc})")
        return
    if len(data) > max_image_bytes:
        detail = f"image larger than --max-image-bytes ({max_image_bytes} bytes); raise it to read it"
        found.skip(name, "oversize_image", detail)
        return
    found.images.append({"image_id": name, "source": "cli", "uri": name, "locator": name, "bytes": data})


def _gather(paths: list[Path], max_doc_bytes: int, max_image_bytes: int) -> Gathered:
    """Every file read once, each read bounded by its limit: the driver holds at most the limits'
    worth per file."""
    found = Gathered()
    for path in _walk(paths, found):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            _read_image(path, max_image_bytes, found)
        else:
            _read_texts(path, max_doc_bytes, found)
    return found


def _clusters(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    groups: dict[str, list[str]] = {}
    for member, root in pairs:
        groups.setdefault(root, []).append(member)
    return [{"representative": root, "members": sorted(m)} for root, m in sorted(groups.items())]


def _text_clusters(
    spark: Any, docs: list[dict[str, str]], spec: Any, verify: float | None
) -> list[dict[str, Any]]:
    from dedup.near_duplicates import near_duplicates

    frame = spark.createDataFrame(docs, "doc_id string, text string")
    out, _ = near_duplicates(frame, spec, verify_threshold=verify)
    rows = out.where("dup_cluster IS NOT NULL").select("doc_id", "dup_cluster").collect()
    return _clusters([(r["doc_id"], r["dup_cluster"]) for r in rows])


def _image_clusters(spark: Any, found: Gathered, max_distance: int) -> list[dict[str, Any]]:
    """Clusters of the gathered images. An image Pillow cannot decode was read (it counts among the
    images) but takes no part: it gets a problem line."""
    from dedup.image_clusters import image_clusters

    frame = spark.createDataFrame(
        found.images, "image_id string, source string, uri string, locator string, bytes binary"
    )
    out, bad, _ = image_clusters(frame, max_distance, True, False)
    clustered = out.where("dup_cluster IS NOT NULL").select("image_id", "dup_cluster").collect()
    for r in bad.select("uri", "decode_error").collect():
        found.problems.append(f"{r['uri']}: corrupt image ({r['decode_error']})")
    return _clusters([(r["image_id"], r["dup_cluster"]) for r in clustered])


def _config(**options: Any) -> Any:
    """The stage's own config, its errors naming the option each is about (`--num-perm`), once each."""
    from pydantic import ValidationError

    from dedup.config import MinHashDedupConfig

    try:
        return MinHashDedupConfig(**options)
    except ValidationError as exc:
        lines = [
            f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}"
            if e["loc"]
            else e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        ]
        raise typer.BadParameter("; ".join(dict.fromkeys(lines))) from None


@app.command("files")
def files_command(
    paths: Annotated[list[Path], typer.Argument(help="text files, JSONL files, image files or folders")],
    threshold: Annotated[
        float | None, typer.Option(help="Jaccard threshold; bands x rows derived from it")
    ] = None,
    bands: Annotated[int | None, typer.Option(help="LSH bands (with --rows)")] = None,
    rows: Annotated[int | None, typer.Option(help="rows per band (with --bands)")] = None,
    ngram: Annotated[int, typer.Option(help="words per shingle")] = 5,
    num_perm: Annotated[int, typer.Option(help="MinHash permutations")] = 112,
    verify: Annotated[
        bool, typer.Option(help="keep only pairs whose estimated Jaccard >= threshold")
    ] = False,
    max_distance: Annotated[
        int, typer.Option(min=0, max=15, help="image pHash/dHash Hamming distance (as the stage: 0-15)")
    ] = 4,
    max_doc_bytes: Annotated[
        int, typer.Option(min=1, help="largest text file or JSONL line read; larger ones are skipped")
    ] = DEFAULT_MAX_DOC_BYTES,
    max_image_bytes: Annotated[
        int, typer.Option(min=1, help="largest image file read; larger ones are skipped")
    ] = DEFAULT_MAX_IMAGE_BYTES,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Print the duplicate clusters (representative and members) among PATHs."""
    from pipelines.framework.spark import get_spark

    config = _config(
        threshold=threshold, bands=bands, rows=rows, ngram=ngram, num_perm=num_perm, verify=verify
    )
    found = _gather(paths, max_doc_bytes, max_image_bytes)
    spec = config.spec()
    text: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    if found.docs or found.images:
        spark = get_spark(
            conf={"spark.sql.shuffle.partitions": "4"}, ui=False, app_name="refinery-dedup-files"
        )
        text = _text_clusters(spark, found.docs, spec, threshold if verify else None) if found.docs else []
        images = _image_clusters(spark, found, max_distance) if found.images else []
    report = {
        "documents": len(found.docs),
        "images": len(found.images),
        "skipped": dict(sorted(found.skipped.items())),
        "bands": spec.bands,
        "rows": spec.rows,
        "text_clusters": text,
        "image_clusters": images,
        "problems": found.problems,
    }
    if as_json:
        typer.echo(json.dumps(report))
        return
    _print_report(report)


def _print_report(report: dict[str, Any]) -> None:
    """The clusters for a terminal: member names and problems come from the user's files (names, JSON
    error excerpts), so every one goes through `for_terminal`."""
    from pipelines.framework.terminal_text import for_terminal

    skipped = report["skipped"]
    why = ", ".join(f"{n} {reason}" for reason, n in skipped.items())
    typer.echo(
        f"{report['documents']} documents, {report['images']} images, "
        f"{sum(skipped.values())} skipped{f' ({why})' if why else ''}; "
        f"LSH {report['bands']} bands x {report['rows']} rows"
    )
    for kind in ("text_clusters", "image_clusters"):
        for cluster in report[kind]:
            kept = for_terminal(cluster["representative"])
            typer.echo(f"{kind[:-9]} cluster of {len(cluster['members'])}, kept {kept}:")
            for member in cluster["members"]:
                typer.echo(f"  {'*' if member == cluster['representative'] else ' '} {for_terminal(member)}")
    for problem in report["problems"]:
        typer.echo(f"skipped: {for_terminal(problem)}", err=True)
