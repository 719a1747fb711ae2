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
from collections import Counter
from pathlib import Path
from typing import Annotated, BinaryIO, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from pipelines.framework.storage import Location
from pipelines.framework.validation import field_problems

FORMAT_NAME = "refinery-shards"
FORMAT_VERSION = 1
READABLE_VERSIONS: tuple[int, ...] = (1,)  # format versions this code reads
MANIFEST_NAME = "manifest.json"
TOKENS_SUFFIX = ".ds"
INDEX_SUFFIX = ".ds.index"
DOCS_SUFFIX = ".docs.parquet"
SPLITS: tuple[str, ...] = ("train", "validation")
UINT16_VOCAB_LIMIT = 65_536  # ids 0..65535 fit in uint16; datatrove uses the same rule
INDEX_DTYPE = np.dtype("<u8")
HASH_CHUNK = 1 << 20

TokenDType = Literal["uint16", "uint32"]
# Ids a token dtype can hold: a vocabulary (and its EOS id) must fit the dtype its shards are stored in.
DTYPE_IDS: dict[str, int] = {"uint16": 1 << 16, "uint32": 1 << 32}
COUNT_LIMIT = 1 << 63  # counts are int64 in numpy, Parquet and the loader: past this they wrap
# A count or offset of the manifest: a whole number (no 1.0, no "1") that int64 holds.
Count = Annotated[int, Field(ge=0, lt=COUNT_LIMIT)]
# Mixture weights are repeat factors: finite and not negative. Finite also keeps the manifest JSON
# (json.dumps would write NaN / Infinity, which no JSON parser accepts).
MixtureWeights = dict[str, Annotated[float, Field(ge=0.0, allow_inf_nan=False)]]

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
    split: str = Field(description="one of SPLITS, and the first folder of `name`")
    tokens: Count = Field(description="tokens in .ds, EOS included")
    documents: Count
    ds_sha256: str
    index_sha256: str
    docs_sha256: str
    ds_bytes: Count

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

    @field_validator("split")
    @classmethod
    def _split_of_the_name(cls, split: str, info: ValidationInfo) -> str:
        """The loader picks shards by `split`: a train shard labelled validation would leak into evaluation."""
        if split not in SPLITS:
            raise ValueError(f"{split!r} is not a split (splits: {', '.join(SPLITS)})")
        name = info.data.get("name")
        if name is not None and name.split("/", 1)[0] != split:
            raise ValueError(f"{split!r} is not the folder of shard {name!r}: a shard's split is its folder")
        return split


class SplitSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: Count = 0
    documents: Count = 0
    shards: Count = 0


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
    vocab_size: int = Field(gt=0, le=DTYPE_IDS["uint32"])
    dtype: TokenDType
    eos_token: str
    eos_id: Count
    source_lake: str = Field(description="lake root the source table lives in")
    source_table: str
    source_version: Count
    id_column: str = Field(
        "doc_id", description="source table column holding the doc_id stored in .docs.parquet"
    )
    text_column: str = Field("text", description="source table column that was tokenized")
    config_hash: str
    run_id: str = ""
    shard_tokens: Count = Field(gt=0, description="target tokens per shard")
    validation_fraction: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    split_seed: int = Field(0, ge=-COUNT_LIMIT, lt=2 * COUNT_LIMIT, description="an xxh64 seed")
    mixture_weights: MixtureWeights = Field(default_factory=dict)
    encoder: str = Field(
        "", description="library and version that produced the ids (HF tokenizers' ids either way)"
    )
    splits: dict[str, SplitSummary] = Field(default_factory=dict)
    total_tokens: Count = 0
    total_documents: Count = 0
    shards: list[ShardEntry] = Field(default_factory=list)

    @field_validator("format_version")
    @classmethod
    def _readable_version(cls, version: int) -> int:
        """A later format may change what the bytes mean: reading it as version 1 would be silently wrong."""
        if version not in READABLE_VERSIONS:
            readable = ", ".join(map(str, READABLE_VERSIONS))
            raise ValueError(
                f"format version {version} is not one this code reads (it reads {readable}); "
                "read it with the refinery that wrote it"
            )
        return version

    @field_validator("dtype")
    @classmethod
    def _vocab_fits(cls, dtype: TokenDType, info: ValidationInfo) -> TokenDType:
        """Ids at or past the dtype's range cannot be stored, so such a vocabulary means a wrong manifest."""
        vocab_size = info.data.get("vocab_size")
        if vocab_size is not None and vocab_size > DTYPE_IDS[dtype]:
            raise ValueError(f"vocab_size {vocab_size} does not fit {dtype} (at most {DTYPE_IDS[dtype]} ids)")
        return dtype

    @field_validator("eos_id")
    @classmethod
    def _eos_fits(cls, eos_id: int, info: ValidationInfo) -> int:
        """Every document ends with this id: one the dtype cannot hold never matches a stored token."""
        dtype = info.data.get("dtype")
        if dtype is not None and eos_id >= DTYPE_IDS[dtype]:
            raise ValueError(f"{eos_id} is not a {dtype} id (below {DTYPE_IDS[dtype]})")
        return eos_id

    @field_validator("splits")
    @classmethod
    def _known_splits(cls, splits: dict[str, SplitSummary]) -> dict[str, SplitSummary]:
        """The summary a reader prints per split: a split no shard can have is a hand-edited manifest."""
        unknown = sorted(set(splits) - set(SPLITS))
        if unknown:
            raise ValueError(f"{unknown} are not splits (splits: {', '.join(SPLITS)})")
        return splits

    @field_validator("shards")
    @classmethod
    def _each_shard_once(cls, shards: list[ShardEntry]) -> list[ShardEntry]:
        """A shard listed twice is read twice (trained on twice, counted twice), and sums past int64 wrap."""
        repeated = sorted(name for name, n in Counter(e.name for e in shards).items() if n > 1)
        if repeated:
            raise ValueError(f"shard {repeated[0]!r} is listed more than once")
        for what in ("tokens", "documents"):
            if sum(getattr(e, what) for e in shards) >= COUNT_LIMIT:
                raise ValueError(f"the shards hold {COUNT_LIMIT} {what} or more, more than int64 counts")
        return shards

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
        # allow_nan=False: NaN or Infinity would make the manifest invalid JSON for every other reader
        fields = self.model_dump(mode="json")
        payload = (json.dumps(fields, indent=2, sort_keys=False, allow_nan=False) + "\n").encode()
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
            # strict: a count written as 1.0 or "1" was not written by this format's writer
            return cls.model_validate_json(text, strict=True)
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
