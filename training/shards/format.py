"""The tokenized shard format (docs/architecture.md, "The shard format"): constants, names, the manifest.

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

The writer of one shard is `training.shards.writer.ShardWriter`, random access to one is
`training.shards.reader.ShardReader`, and the training loader reads windows through
`training.loader.shard_sets`. Other readers should use `Manifest.load`, `Manifest.shard_entries`
and `ShardReader`; those names and signatures are stable.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.framework.storage import Location
from pipelines.framework.validation import field_problems

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


class ShardError(RuntimeError):
    """A shard that is missing, truncated or does not match its manifest; the message names the file."""


REBUILD = "rebuild the set with the `shards` stage, or restore its files"


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


def sha256_file(path: str | os.PathLike[str] | Location) -> str:
    """Hex sha256 of a file (local or object storage), streamed in 1 MiB chunks (shards can be large)."""
    with Location.parse(path).open_read() as handle:
        return sha256_stream(handle)


def sha256_stream(handle: BinaryIO) -> str:
    """Hex sha256 of what is left to read in `handle`, in 1 MiB chunks."""
    digest = hashlib.sha256()
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def shard_paths(
    directory: str | os.PathLike[str] | Location, name: str
) -> tuple[Location, Location, Location]:
    """(.ds, .ds.index, .docs.parquet) locations of shard `name` under `directory` (a path or a URL)."""
    base = Location.parse(directory) / name
    return (
        base.parent / (base.name + TOKENS_SUFFIX),
        base.parent / (base.name + INDEX_SUFFIX),
        base.parent / (base.name + DOCS_SUFFIX),
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

    @field_validator("name")
    @classmethod
    def _inside_the_set(cls, name: str) -> str:
        """A manifest is read from wherever a set was copied: its names must not reach outside it."""
        parts = name.split("/")
        if name.startswith("/") or "\\" in name or any(part in ("", ".", "..") for part in parts):
            raise ValueError(
                f"{name!r} is not a path inside the shard folder (no '..', '.', '//' or leading '/')"
            )
        return name


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

    def save(self, directory: str | os.PathLike[str] | Location) -> Location:
        """Write manifest.json, the commit point of the set, so readers see the old one or the whole new one.

        Locally: temp file, fsync, rename. On object storage: one PUT, and an object appears only
        when its upload completes, so the shard files (uploaded before) are all there first.
        """
        target = Location.parse(directory) / MANIFEST_NAME
        payload = (json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=False) + "\n").encode()
        if target.is_local:
            atomic_write_bytes(target.local_path(), payload)
        else:
            target.write_bytes(payload)
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str] | Location) -> Manifest:
        """Read manifest.json (local or object storage); a missing one means the set was never committed."""
        folder = Location.parse(directory)
        try:
            text = (folder / MANIFEST_NAME).read_text()
        except (FileNotFoundError, IsADirectoryError):
            folder.require_reachable()  # a missing bucket or a wrong endpoint is named as such, not as "no set"
            raise FileNotFoundError(
                f"no {MANIFEST_NAME} in {directory}: not a shard folder, or its build never finished "
                "(rerun the `shards` stage)"
            ) from None
        except UnicodeDecodeError as exc:
            raise ShardError(f"{folder / MANIFEST_NAME}: not UTF-8 text ({exc.reason}); {REBUILD}") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ShardError(
                f"{folder / MANIFEST_NAME}: not a shard manifest: {field_problems(exc)}; {REBUILD}"
            ) from None


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
