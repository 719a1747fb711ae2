"""The tokenized shard format (DESIGN decision 6), in one module: constants, manifest, writer, readers.

A shard set is a folder::

    <dir>/manifest.json                     the commit point, written last and atomically
    <dir>/<split>/<name>.ds                 token ids, little-endian uint16 or uint32, no header
    <dir>/<split>/<name>.ds.index           uint64 little-endian document END offsets (in tokens)
    <dir>/<split>/<name>.docs.parquet       one row per document: doc_id, source, lang, quality_score,
                                            token_start, token_end

Why this layout: the `.ds` / `.ds.index` pair is byte for byte what datatrove's
`DocumentTokenizer` writes (its `TokenizedFile`: raw tokens, no header; the index
is the cumulative end offset of every document, exclusive, counting the EOS
token), so `datatrove.utils.dataset.DatatroveFolderDataset(<dir>/train, seq_len,
filename_pattern="*.ds", token_size=2|4)` (or `<dir>` with `"**/*.ds"`) reads our
shards unchanged, positions from the index included. datatrove's optional
`.ds.metadata` text file is not written: its readers do not need it. The
Parquet side file adds the provenance that datatrove does not keep: which table
row every token span came from.

Every document is stored as its tokens followed by one EOS token; document i
occupies tokens ``[ends[i-1], ends[i])`` (``ends[-1] == 0``), EOS included, and
``docs.parquet`` row i has ``token_start = ends[i-1]`` and ``token_end = ends[i]``.
Shard names (`Manifest.shards[*].name`) are paths relative to the folder without
suffix, e.g. ``train/part-00003-00001``.

Readers (the streaming loader) should use `Manifest.load`, `Manifest.shard_entries`
and `ShardReader`; those names and signatures are stable.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

FORMAT_NAME = "refinery-shards"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
TOKENS_SUFFIX = ".ds"
INDEX_SUFFIX = ".ds.index"
DOCS_SUFFIX = ".docs.parquet"
SPLITS: tuple[str, ...] = ("train", "validation")
UINT16_VOCAB_LIMIT = 65_536  # ids 0..65535 fit in uint16; datatrove uses the same rule
INDEX_DTYPE = np.dtype("<u8")
HASH_CHUNK = 1 << 20

TokenDType = Literal["uint16", "uint32"]

DOCS_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("lang", pa.string()),
        pa.field("quality_score", pa.float64()),
        pa.field("token_start", pa.int64(), nullable=False),
        pa.field("token_end", pa.int64(), nullable=False),
    ]
)


def dtype_for_vocab(vocab_size: int) -> TokenDType:
    """uint16 when every id fits (vocab <= 65,536), else uint32: the same rule as datatrove's token_size."""
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    return "uint16" if vocab_size <= UINT16_VOCAB_LIMIT else "uint32"


def numpy_dtype(dtype: TokenDType) -> np.dtype:
    """The explicit little-endian numpy dtype of a token dtype name."""
    return np.dtype("<u2") if dtype == "uint16" else np.dtype("<u4")


def token_size(dtype: TokenDType) -> int:
    """Bytes per token: the `token_size` argument datatrove's readers take."""
    return numpy_dtype(dtype).itemsize


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (shards can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def shard_paths(directory: str | os.PathLike[str], name: str) -> tuple[Path, Path, Path]:
    """(.ds, .ds.index, .docs.parquet) paths of shard `name` under `directory`."""
    base = Path(directory) / name
    return (
        base.with_name(base.name + TOKENS_SUFFIX),
        base.with_name(base.name + INDEX_SUFFIX),
        base.with_name(base.name + DOCS_SUFFIX),
    )


# --------------------------------------------------------------------------- manifest
class ShardEntry(BaseModel):
    """One shard: its counts and the sha256 of each of its three files."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="path relative to the shard folder, without suffix")
    split: str
    tokens: int = Field(ge=0, description="tokens in .ds, EOS included")
    documents: int = Field(ge=0)
    ds_sha256: str
    index_sha256: str
    docs_sha256: str
    ds_bytes: int = Field(ge=0)


class SplitSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: int = 0
    documents: int = 0
    shards: int = 0


class Manifest(BaseModel):
    """manifest.json: what the shards are, where they came from, and how to check them.

    `tokenizer_sha256` + `source_table`/`source_version` + `config_hash` identify
    the build: a rerun with the same three is skipped by the `shards` stage.
    `mixture_weights` records the source/quality weights the table was mixed with
    (declared in the job spec) so a reader can tell what distribution it trains on.
    """

    model_config = ConfigDict(extra="forbid")

    format: Literal["refinery-shards"] = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    tokenizer_path: str
    tokenizer_sha256: str
    vocab_size: int = Field(gt=0)
    dtype: TokenDType
    eos_token: str
    eos_id: int = Field(ge=0)
    source_lake: str = Field(description="lake root the source table lives in")
    source_table: str
    source_version: int = Field(ge=0)
    id_column: str = Field(
        "doc_id", description="source table column holding the doc_id stored in .docs.parquet"
    )
    text_column: str = Field("text", description="source table column that was tokenized")
    config_hash: str
    run_id: str = ""
    shard_tokens: int = Field(gt=0, description="target tokens per shard")
    validation_fraction: float = Field(ge=0.0, le=1.0)
    split_seed: int = 0
    mixture_weights: dict[str, float] = Field(default_factory=dict)
    encoder: str = Field(
        "", description="library and version that produced the ids (HF tokenizers' ids either way)"
    )
    splits: dict[str, SplitSummary] = Field(default_factory=dict)
    total_tokens: int = 0
    total_documents: int = 0
    shards: list[ShardEntry] = Field(default_factory=list)

    @property
    def numpy_dtype(self) -> np.dtype:
        return numpy_dtype(self.dtype)

    def shard_entries(self, split: str | None = None) -> list[ShardEntry]:
        """Shards in manifest order (the order the writer produced, sorted by name), optionally one split."""
        return [s for s in self.shards if split is None or s.split == split]

    def summarize(self) -> None:
        """Recompute `splits` and the totals from `shards` (the writer calls it before saving)."""
        splits: dict[str, SplitSummary] = {}
        for entry in self.shards:
            summary = splits.setdefault(entry.split, SplitSummary())
            summary.tokens += entry.tokens
            summary.documents += entry.documents
            summary.shards += 1
        self.splits = dict(sorted(splits.items()))
        self.total_tokens = sum(s.tokens for s in self.shards)
        self.total_documents = sum(s.documents for s in self.shards)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write manifest.json atomically (temp file, fsync, rename): it is the commit point of the set."""
        target = Path(directory) / MANIFEST_NAME
        payload = json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"
        atomic_write_bytes(target, payload.encode())
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Manifest:
        """Read manifest.json; a missing one means the set was never committed."""
        path = Path(directory) / MANIFEST_NAME
        if not path.is_file():
            raise FileNotFoundError(
                f"no {MANIFEST_NAME} in {directory}: not a shard folder, or its build never finished "
                "(rerun the `shards` stage)"
            )
        return cls.model_validate_json(path.read_text())


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write `data` to `target` so readers see the old file or the whole new one, never a part."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- writer
@dataclass(frozen=True)
class DocMeta:
    """Provenance of one document, stored in the shard's .docs.parquet."""

    doc_id: str
    source: str | None = None
    lang: str | None = None
    quality_score: float | None = None


class ShardWriter:
    """Write one shard: append documents' token ids, then `close()` for its `ShardEntry`.

    EOS is appended after every document by the writer (tokenize without special
    tokens). Files are written under temporary names and renamed on close, so a
    retried Spark task overwrites a half-written shard of the same name cleanly.
    """

    def __init__(
        self, directory: str | os.PathLike[str], name: str, split: str, dtype: TokenDType, eos_id: int
    ):
        self.directory = Path(directory)
        self.name = name
        self.split = split
        self.dtype = numpy_dtype(dtype)
        if not 0 <= eos_id <= np.iinfo(self.dtype).max:
            raise ValueError(f"eos_id {eos_id} does not fit in {dtype}")
        self.eos = np.array([eos_id], dtype=self.dtype)
        self.paths = shard_paths(self.directory, name)
        self.paths[0].parent.mkdir(parents=True, exist_ok=True)
        self._tmp = [p.with_name(f".{p.name}.tmp") for p in self.paths]
        self._tokens_file = open(self._tmp[0], "wb")  # noqa: SIM115 (closed in close())
        self._hash = hashlib.sha256()
        self._ends: list[int] = []
        self._meta: list[DocMeta] = []
        self.tokens = 0

    @property
    def documents(self) -> int:
        return len(self._ends)

    def add(self, tokens: Sequence[int] | np.ndarray, meta: DocMeta) -> None:
        """Append one document (its ids without EOS); ids must fit the shard's dtype."""
        array = np.asarray(tokens)
        if array.size and (array.min() < 0 or array.max() > np.iinfo(self.dtype).max):
            raise ValueError(f"document {meta.doc_id}: token id out of range for {self.dtype.name}")
        data = array.astype(self.dtype, copy=False).tobytes() + self.eos.tobytes()
        self._tokens_file.write(data)
        self._hash.update(data)
        self.tokens += array.size + 1
        self._ends.append(self.tokens)
        self._meta.append(meta)

    def add_many(self, documents: Iterable[tuple[Sequence[int] | np.ndarray, DocMeta]]) -> None:
        for tokens, meta in documents:
            self.add(tokens, meta)

    def close(self) -> ShardEntry:
        """Finish the three files, rename them into place, and return the shard's manifest entry."""
        self._tokens_file.close()
        ends = np.asarray(self._ends, dtype=INDEX_DTYPE)
        index_bytes = ends.tobytes()
        with open(self._tmp[1], "wb") as handle:
            handle.write(index_bytes)
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int64) if len(ends) else np.zeros(0, np.int64)
        table = pa.table(
            {
                "doc_id": pa.array([m.doc_id for m in self._meta], pa.string()),
                "source": pa.array([m.source for m in self._meta], pa.string()),
                "lang": pa.array([m.lang for m in self._meta], pa.string()),
                "quality_score": pa.array([m.quality_score for m in self._meta], pa.float64()),
                "token_start": pa.array(starts, pa.int64()),
                "token_end": pa.array(ends.astype(np.int64), pa.int64()),
            },
            schema=DOCS_SCHEMA,
        )
        # No created_by/timestamps in the footer beyond pyarrow's fixed version string: reruns are byte-identical.
        pq.write_table(table, self._tmp[2], compression="zstd", write_statistics=True)
        for tmp, final in zip(self._tmp, self.paths, strict=True):
            os.replace(tmp, final)
        return ShardEntry(
            name=self.name,
            split=self.split,
            tokens=self.tokens,
            documents=self.documents,
            ds_sha256=self._hash.hexdigest(),
            index_sha256=hashlib.sha256(index_bytes).hexdigest(),
            docs_sha256=sha256_file(self.paths[2]),
            ds_bytes=self.tokens * self.dtype.itemsize,
        )

    def abort(self) -> None:
        """Remove the temporary files of a shard that will not be finished."""
        self._tokens_file.close()
        for tmp in self._tmp:
            tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- readers
def open_tokens(path: str | os.PathLike[str], dtype: TokenDType) -> np.ndarray:
    """The .ds file as a read-only memory map (an empty array for an empty file, which mmap refuses)."""
    np_dtype = numpy_dtype(dtype)
    size = os.path.getsize(path)
    if size % np_dtype.itemsize:
        raise ValueError(f"{path}: {size} bytes is not a whole number of {dtype} tokens (truncated shard?)")
    if size == 0:
        return np.zeros(0, dtype=np_dtype)
    return np.memmap(path, dtype=np_dtype, mode="r")


def open_index(path: str | os.PathLike[str]) -> np.ndarray:
    """The .ds.index file (uint64 document end offsets) as a read-only memory map."""
    size = os.path.getsize(path)
    if size % INDEX_DTYPE.itemsize:
        raise ValueError(f"{path}: {size} bytes is not a whole number of uint64 offsets (truncated index?)")
    if size == 0:
        return np.zeros(0, dtype=INDEX_DTYPE)
    return np.memmap(path, dtype=INDEX_DTYPE, mode="r")


def doc_span(ends: np.ndarray, i: int) -> tuple[int, int]:
    """[start, end) token span of document i given the index; the span ends with the EOS token."""
    if not 0 <= i < len(ends):
        raise IndexError(f"document {i} out of range (shard has {len(ends)})")
    return (int(ends[i - 1]) if i else 0), int(ends[i])


class ShardReader:
    """Random access to one shard: memory-mapped tokens and index, and its provenance table."""

    def __init__(self, directory: str | os.PathLike[str], name: str, dtype: TokenDType):
        self.directory = Path(directory)
        self.name = name
        self.dtype = dtype
        self.tokens_path, self.index_path, self.docs_path = shard_paths(directory, name)
        self.tokens = open_tokens(self.tokens_path, dtype)
        self.ends = open_index(self.index_path)

    @classmethod
    def from_manifest(cls, directory: str | os.PathLike[str], manifest: Manifest, name: str) -> ShardReader:
        return cls(directory, name, manifest.dtype)

    def __len__(self) -> int:
        return len(self.ends)

    def span(self, i: int) -> tuple[int, int]:
        return doc_span(self.ends, i)

    def document(self, i: int, with_eos: bool = False) -> np.ndarray:
        """Token ids of document i (a view into the memory map), EOS excluded unless asked."""
        start, end = self.span(i)
        return self.tokens[start : end if with_eos else end - 1]

    def iter_documents(self, with_eos: bool = False) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.document(i, with_eos)

    def docs(self, columns: list[str] | None = None) -> pa.Table:
        """The .docs.parquet table (row i describes document i)."""
        return pq.read_table(self.docs_path, columns=columns)

    def find(self, doc_id: str) -> int | None:
        """Position of `doc_id` in this shard, or None (reads only the doc_id column)."""
        return _position_in_docs(self.docs_path, doc_id)


def _position_in_docs(docs_path: Path, doc_id: str) -> int | None:
    ids = pq.read_table(docs_path, columns=["doc_id"]).column("doc_id")
    matches = np.flatnonzero(pc.equal(ids, doc_id).to_numpy(zero_copy_only=False))
    return int(matches[0]) if len(matches) else None


def locate_document(
    directory: str | os.PathLike[str], manifest: Manifest, doc_id: str
) -> tuple[str, int] | None:
    """(shard name, position) of a document id across the set, scanning each shard's doc_id column."""
    for entry in manifest.shards:
        position = _position_in_docs(shard_paths(directory, entry.name)[2], doc_id)
        if position is not None:
            return entry.name, position
    return None
