"""`refinery dedup files PATH...`: run the Spark dedup code on files and print the clusters.

For users to check their settings on a handful of their own documents before a
job (how similar must two pages be to go?), and for us to evaluate. Text files
are one document each, JSONL files (.jsonl, .ndjson, also compressed) one
document per line (its `text` field), image files one image each; folders are
walked. The same functions as the stages run (`near_duplicates`,
`image_clusters`), on a local Spark session.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.ingest.readers.compressed import COMPRESSED_SUFFIXES
from pipelines.ingest.readers.jsonl import JsonLinesError, json_lines

app = typer.Typer(help="Deduplication tools: find duplicate clusters in files with the pipeline's own code.")


@app.callback()
def dedup() -> None:
    """Deduplication tools (a group, so that `files` stays a subcommand)."""


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}


def _walk(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise typer.BadParameter(f"{path} does not exist", param_hint="PATH")
        if path.is_dir():
            files.extend(p for p in sorted(path.rglob("*")) if p.is_file() and not p.name.startswith("."))
        else:
            files.append(path)
    return files


def _is_jsonl(path: Path) -> bool:
    """`.jsonl`/`.ndjson`, also compressed (`.jsonl.gz`, `.ndjson.zst`, ...)."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in JSONL_SUFFIXES


def _jsonl_documents(path: Path, docs: list[dict[str, str]], problems: list[str]) -> None:
    """One document per line with a `text` field; a line without one is reported and skipped, and
    a line that is not JSON ends the file's read, reported with what was read before it kept."""
    try:
        for number, obj in json_lines(path):
            if "text" not in obj:
                problems.append(f"{path}:{number}: a JSON object without a text field")
                continue
            docs.append({"doc_id": f"{path}:{number}", "text": str(obj["text"])})
    except JsonLinesError as exc:
        problems.append(f"{exc}; the rest of the file was not read")


def _documents(files: list[Path]) -> tuple[list[dict[str, str]], list[str]]:
    """(text documents, problems); a bad JSONL line is reported, never fatal."""
    docs: list[dict[str, str]] = []
    problems: list[str] = []
    for path in files:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            continue
        if _is_jsonl(path):
            _jsonl_documents(path, docs, problems)
        else:
            docs.append({"doc_id": str(path), "text": path.read_text(errors="replace")})
    return docs, problems


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


def _image_clusters(
    spark: Any, files: list[Path], max_distance: int
) -> tuple[list[dict[str, Any]], list[str]]:
    from dedup.image_clusters import image_clusters

    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    rows = [
        {"image_id": str(p), "source": "cli", "uri": str(p), "locator": str(p), "bytes": p.read_bytes()}
        for p in images
    ]
    frame = spark.createDataFrame(
        rows, "image_id string, source string, uri string, locator string, bytes binary"
    )
    out, bad, _ = image_clusters(frame, max_distance, True, False)
    found = out.where("dup_cluster IS NOT NULL").select("image_id", "dup_cluster").collect()
    problems = [
        f"{r['uri']}: corrupt image ({r['decode_error']})"
        for r in bad.select("uri", "decode_error").collect()
    ]
    return _clusters([(r["image_id"], r["dup_cluster"]) for r in found]), problems


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
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Print the duplicate clusters (representative and members) among PATHs."""
    from pydantic import ValidationError

    from dedup.config import MinHashDedupConfig
    from pipelines.framework.spark import get_spark

    try:
        config = MinHashDedupConfig(
            threshold=threshold, bands=bands, rows=rows, ngram=ngram, num_perm=num_perm, verify=verify
        )
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(e["msg"] for e in exc.errors())) from None
    found = _walk(paths)
    docs, problems = _documents(found)
    spark = get_spark(conf={"spark.sql.shuffle.partitions": "4"}, ui=False, app_name="refinery-dedup-files")
    spec = config.spec()
    text = _text_clusters(spark, docs, spec, threshold if verify else None) if docs else []
    images, image_problems = (
        _image_clusters(spark, found, max_distance)
        if any(p.suffix.lower() in IMAGE_SUFFIXES for p in found)
        else ([], [])
    )
    report = {
        "documents": len(docs),
        "images": sum(p.suffix.lower() in IMAGE_SUFFIXES for p in found),
        "bands": spec.bands,
        "rows": spec.rows,
        "text_clusters": text,
        "image_clusters": images,
        "problems": problems + image_problems,
    }
    if as_json:
        typer.echo(json.dumps(report))
        return
    _print_report(report)


def _print_report(report: dict[str, Any]) -> None:
    """The clusters for a terminal: member names and problems come from the user's files (names, JSON
    error excerpts), so every one goes through `for_terminal`."""
    from pipelines.framework.terminal_text import for_terminal

    typer.echo(
        f"{report['documents']} documents, {report['images']} images; "
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
