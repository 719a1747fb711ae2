"""Check a shard set against its manifest and its source table version; summarize and show documents.

`verify` runs, in order: file presence and sizes, structure (index monotonic and
ending at the token count, an EOS at every document end, every id inside the
vocabulary, .docs.parquet spans equal to the index), sha256 of every file, then a
seeded random sample of documents re-tokenized from the source table version and
compared token by token. When a `.ds` hash does not match, the shard's documents
are re-tokenized from the source to name the first differing token and its byte
offset, so a flipped byte is reported as "shard S, byte offset B" rather than
just "hash differs".
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import os
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from pipelines.framework.storage import Location
from training.shards.format import DOCS_SCHEMA, Manifest, ShardEntry, sha256_file, shard_paths
from training.shards.reader import ShardReader
from training.tokenizer.load import load_tokenizer

LOOKUP_CHUNK = 256
# A source row's columns that say where its document came from (the raw record, the run, the parent).
PROVENANCE_COLUMNS = ("source", "uri", "locator", "ingest_run", "augmented_from", "operation")
# What reading a damaged shard can raise: a size that is not whole tokens, a .docs.parquet that is not
# Parquet or has other columns, an index pointing past the tokens. verify reports it as a problem of
# that shard; info and show stop with a ShardError naming the folder.
READ_ERRORS = (ValueError, IndexError, OSError, pa.ArrowException)
# Problems after which a shard's documents cannot be compared one by one with the source.
SOURCE_HINT = "give the lake that holds it with --lake, or check the shards alone with --no-source"
TOKENIZER_HINT = "give the tokenizer.json with --tokenizer, or check the shards alone with --no-source"
STRUCTURAL = frozenset({"missing", "size", "unreadable", "count", "index", "docs"})


@dataclass
class Problem:
    """One mismatch, located as precisely as the check allows."""

    shard: str
    kind: str
    detail: str
    byte_offset: int | None = None
    doc_id: str | None = None
    file: str | None = None  # the file a hash problem is about: the .ds one is localized from the source

    def __str__(self) -> str:
        where = f"{self.shard}" + (f" byte offset {self.byte_offset}" if self.byte_offset is not None else "")
        return f"[{self.kind}] {where}: {self.detail}"


@dataclass
class VerifyReport:
    folder: str
    shards: int = 0
    documents: int = 0
    tokens: int = 0
    sampled: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "ok": self.ok,
            "shards": self.shards,
            "documents": self.documents,
            "tokens": self.tokens,
            "sampled": self.sampled,
            "first_problem": str(self.problems[0]) if self.problems else None,
            "problems": [p.__dict__ for p in self.problems],
        }


class SourceTable:
    """Text of documents by id from the manifest's source table version (bounded lookups, never a full load)."""

    def __init__(self, manifest: Manifest, lake_root: str | Location | None = None):
        from pipelines.framework.lake import Lake

        if not (lake_root or manifest.source_lake):
            raise ValueError(
                f"the shard set's manifest names no source lake (table {manifest.source_table!r}: the set was "
                "not written by the shards stage)"
            )
        self.manifest = manifest
        self.lake = Lake(lake_root or manifest.source_lake)
        self.dataset: pads.Dataset = self.lake.dataset(manifest.source_table, manifest.source_version)

    @property
    def columns(self) -> list[str]:
        return list(self.dataset.schema.names)

    def rows(self, doc_ids: list[str], columns: list[str]) -> dict[str, dict[str, Any]]:
        """`columns` of the rows with these ids, by id, looked up a chunk of ids at a time."""
        out: dict[str, dict[str, Any]] = {}
        id_col = self.manifest.id_column
        for start in range(0, len(doc_ids), LOOKUP_CHUNK):
            chunk = doc_ids[start : start + LOOKUP_CHUNK]
            table = self.dataset.to_table(columns=[id_col, *columns], filter=pc.field(id_col).isin(chunk))
            out.update((row.pop(id_col), row) for row in table.to_pylist())
        return out

    def provenance(self, doc_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Where each document came from: its PROVENANCE_COLUMNS that the table has, by id."""
        return self.rows(doc_ids, [c for c in PROVENANCE_COLUMNS if c in self.columns])

    def texts(self, doc_ids: list[str]) -> dict[str, str]:
        text_col = self.manifest.text_column
        return {doc_id: row[text_col] for doc_id, row in self.rows(doc_ids, [text_col]).items()}


def _structure_problems(reader: ShardReader, entry: ShardEntry, manifest: Manifest) -> list[Problem]:
    """Cheap checks that need no hash: they locate many corruptions by themselves."""
    problems = []
    itemsize = manifest.numpy_dtype.itemsize
    ends = reader.ends.astype(np.int64)
    if len(reader.tokens) != entry.tokens or len(ends) != entry.documents:
        problems.append(
            Problem(
                entry.name,
                "count",
                f"{len(reader.tokens)} tokens / {len(ends)} documents on disk, manifest says "
                f"{entry.tokens} / {entry.documents}",
            )
        )
        return problems
    if len(ends) and (np.any(np.diff(ends) <= 0) or ends[0] <= 0 or ends[-1] != len(reader.tokens)):
        problems.append(
            Problem(entry.name, "index", "document ends are not increasing up to the token count")
        )
        return problems
    out_of_vocab = np.flatnonzero(reader.tokens >= manifest.vocab_size)
    if len(out_of_vocab):
        pos = int(out_of_vocab[0])
        problems.append(
            Problem(
                entry.name, "token", f"token {pos} = {int(reader.tokens[pos])} >= vocab size", pos * itemsize
            )
        )
    not_eos = np.flatnonzero(reader.tokens[ends - 1] != manifest.eos_id) if len(ends) else []
    if len(not_eos):
        pos = int(ends[not_eos[0]] - 1)
        problems.append(
            Problem(
                entry.name,
                "eos",
                f"document {int(not_eos[0])} does not end with EOS (token {pos})",
                pos * itemsize,
            )
        )
    docs = reader.docs()
    if docs.column_names != DOCS_SCHEMA.names:
        problems.append(Problem(entry.name, "docs", f"unexpected .docs.parquet columns {docs.column_names}"))
    elif docs.num_rows != len(ends) or docs.column("token_end").to_numpy().tolist() != ends.tolist():
        problems.append(Problem(entry.name, "docs", ".docs.parquet token spans differ from the .ds.index"))
    return problems


def _hash_problems(reader: ShardReader, entry: ShardEntry) -> list[Problem]:
    """Hashes of the bytes the reader already holds (a shard on object storage is fetched once)."""
    problems = []
    recorded = (entry.ds_sha256, entry.index_sha256, entry.docs_sha256)
    actuals = (
        hashlib.sha256(reader.tokens).hexdigest(),
        hashlib.sha256(reader.ends).hexdigest(),
        sha256_file(reader.docs_path),
    )
    paths = (reader.tokens_path, reader.index_path, reader.docs_path)
    for path, expected, actual in zip(paths, recorded, actuals, strict=True):
        if actual != expected:
            detail = f"{path.name}: sha256 {actual[:16]}… != manifest {expected[:16]}…"
            problems.append(Problem(entry.name, "sha256", detail, file=path.name))
    return problems


def _first_token_difference(expected: list[int], actual: np.ndarray) -> int | None:
    n = min(len(expected), len(actual))
    diff = np.flatnonzero(np.asarray(expected[:n], dtype=np.int64) != actual[:n].astype(np.int64))
    if len(diff):
        return int(diff[0])
    return None if len(expected) == len(actual) else n


def _compare_document(
    reader: ShardReader, i: int, doc_id: str, text: str | None, tokenizer: Any, manifest: Manifest
) -> Problem | None:
    """Re-tokenize the source text of document i and name the first token that differs."""
    start, _ = reader.span(i)
    if text is None:
        return Problem(
            reader.name,
            "source",
            f"document {doc_id} is not in {manifest.source_table} v{manifest.source_version}",
            doc_id=doc_id,
        )
    expected = tokenizer.encode(text, add_special_tokens=False).ids
    actual = np.asarray(reader.document(i))
    k = _first_token_difference(expected, actual)
    if k is None:
        return None
    offset = (start + k) * manifest.numpy_dtype.itemsize
    got = int(actual[k]) if k < len(actual) else None
    want = expected[k] if k < len(expected) else None
    context = tokenizer.decode(expected[max(0, k - 8) : k + 8]) if expected else ""
    return Problem(
        reader.name,
        "content",
        f"document {doc_id} (#{i}) token {k}: shard has {got}, source re-tokenizes to {want} near {context!r}",
        byte_offset=offset,
        doc_id=doc_id,
    )


def _localize(reader: ShardReader, source: SourceTable, tokenizer: Any, manifest: Manifest) -> Problem | None:
    """First differing document of a shard whose hash failed, by re-tokenizing all of it from the source.

    Only documents both the index and .docs.parquet hold are compared: a shard whose two disagree is
    already a `count` or `docs` problem, and reading past the index would hide it behind an IndexError.
    """
    ids = reader.docs(["doc_id"]).column("doc_id").to_pylist()[: len(reader)]
    texts = source.texts(ids)
    for i, doc_id in enumerate(ids):
        problem = _compare_document(reader, i, doc_id, texts.get(doc_id), tokenizer, manifest)
        if problem is not None:
            return problem
    return None


def verify(
    folder: str | os.PathLike[str] | Location,
    sample: int = 50,
    seed: int = 0,
    lake_root: str | Location | None = None,
    tokenizer_path: str | Path | None = None,
    check_source: bool = True,
) -> VerifyReport:
    """Verify a shard folder (a path or a URL); `report.problems[0]` is the first mismatch found."""
    folder = Location.parse(folder)
    manifest = Manifest.load(folder)
    report = VerifyReport(str(folder))
    tokenizer = None
    source = None
    if check_source:
        tokenizer, source, problem = _source_checks(manifest, lake_root, tokenizer_path)
        if problem is not None:
            report.problems.append(problem)
            return report
    on_disk = _check_shards(folder, manifest, source, tokenizer, report)
    if source is not None and sample > 0:
        # sample only shards whose index on disk holds the documents the manifest counts, and that
        # passed the structural checks: the others cannot be read document by document
        unreliable = {p.shard for p in report.problems if p.kind in STRUCTURAL}
        counts = [
            (e.name, e.documents)
            for e in manifest.shards
            if e.name not in unreliable and on_disk.get(e.name) == e.documents
        ]
        chosen = sample_positions(counts, sample, seed)
        report.sampled = len(chosen)
        report.problems.extend(_check_sample(folder, manifest, source, tokenizer, chosen))
    if report.documents != manifest.total_documents or report.tokens != manifest.total_tokens:
        report.problems.append(
            Problem(
                "-",
                "totals",
                f"{report.documents} documents / {report.tokens} tokens read, manifest says "
                f"{manifest.total_documents} / {manifest.total_tokens}",
            )
        )
    return report


def _check_shards(
    folder: Location, manifest: Manifest, source: SourceTable | None, tokenizer: Any, report: VerifyReport
) -> dict[str, int]:
    """Check every shard into `report`; returns the documents on disk (index entries) of each shard read."""
    present = {e.location.url for e in folder.list()}  # one listing, not a request per file
    on_disk: dict[str, int] = {}
    for entry in manifest.shards:
        missing = [p.name for p in shard_paths(folder, entry.name) if p.url not in present]
        if missing:
            report.problems.append(Problem(entry.name, "missing", f"files absent: {missing}"))
            continue
        try:
            reader = ShardReader.from_manifest(folder, manifest, entry.name)
        except ValueError as exc:
            report.problems.append(Problem(entry.name, "size", str(exc)))
            continue
        report.shards += 1
        report.documents += len(reader)
        report.tokens += len(reader.tokens)
        on_disk[entry.name] = len(reader)
        try:
            found = _shard_problems(reader, entry, manifest, source, tokenizer)
        except READ_ERRORS as exc:
            found = [Problem(entry.name, "unreadable", f"{type(exc).__name__}: {exc}")]
        report.problems.extend(found)
    return on_disk


def _source_checks(
    manifest: Manifest, lake_root: str | Location | None, tokenizer_path: str | Path | None
) -> tuple[Any, SourceTable | None, Problem | None]:
    """(tokenizer, source table, None), or the problem that makes comparing with the source impossible."""
    tokenizer_file = Path(tokenizer_path or manifest.tokenizer_path)
    if not tokenizer_file.is_file():  # hashing /dev/zero never ends, and a FIFO blocks until a writer comes
        detail = f"{tokenizer_file} is missing or not a regular file; {TOKENIZER_HINT}"
        return None, None, Problem("-", "tokenizer", detail)
    if sha256_file(tokenizer_file) != manifest.tokenizer_sha256:
        return None, None, Problem("-", "tokenizer", f"{tokenizer_file} is not the tokenizer in the manifest")
    try:
        source = SourceTable(manifest, lake_root)
    except (LookupError, ValueError, OSError) as exc:  # no such table or lake, or a name outside it
        return None, None, Problem("-", "source", f"{exc}; {SOURCE_HINT}")
    return load_tokenizer(tokenizer_file), source, None


def _shard_problems(
    reader: ShardReader, entry: ShardEntry, manifest: Manifest, source: SourceTable | None, tokenizer: Any
) -> list[Problem]:
    """Structure and hashes of one shard; a `.ds` whose hash fails is re-tokenized from the source to
    name its first differing token."""
    found = _structure_problems(reader, entry, manifest) + _hash_problems(reader, entry)
    ds_hash_failed = any(p.kind == "sha256" and p.file == reader.tokens_path.name for p in found)
    if ds_hash_failed and source is not None and not any(p.byte_offset is not None for p in found):
        try:
            located = _localize(reader, source, tokenizer, manifest)
        except READ_ERRORS:  # the problems found so far say more than why the comparison failed
            located = None
        if located is not None:
            found.insert(0, located)
    return found


def sample_positions(counts: list[tuple[str, int]], sample: int, seed: int) -> list[tuple[str, int]]:
    """`sample` distinct seeded-random (shard, position) pairs over shards with these document counts.

    Drawn as indices into the cumulative counts, so memory is the sample's size whatever the set's
    (a list of every (shard, position) of a 100M-document set is gigabytes). The draw is the one
    `random.sample` makes over that list, so a seed keeps picking the same documents. Sorted.
    """
    ends = list(itertools.accumulate(n for _, n in counts))
    total = ends[-1] if ends else 0
    chosen = []
    for flat in sorted(random.Random(seed).sample(range(total), min(sample, total))):
        shard = bisect.bisect_right(ends, flat)
        chosen.append((counts[shard][0], flat - (ends[shard - 1] if shard else 0)))
    return chosen


def _check_sample(
    folder: Location, manifest: Manifest, source: SourceTable, tokenizer: Any, chosen: list[tuple[str, int]]
) -> list[Problem]:
    """Compare the `chosen` (shard, position) documents with the source table, decoded text included."""
    by_shard: dict[str, list[int]] = defaultdict(list)
    for name, i in chosen:
        by_shard[name].append(i)
    problems = []
    for name, positions in by_shard.items():
        reader = ShardReader.from_manifest(folder, manifest, name)
        ids = reader.docs(["doc_id"]).column("doc_id").to_pylist()
        texts = source.texts([ids[i] for i in positions])
        for i in positions:
            text = texts.get(ids[i])
            problem = _compare_document(reader, i, ids[i], text, tokenizer, manifest)
            if problem is None and tokenizer.decode(reader.document(i).tolist()) != text:
                problem = Problem(
                    name, "decode", f"document {ids[i]} decodes to different text", doc_id=ids[i]
                )
            if problem is not None:
                problems.append(problem)
    return problems
