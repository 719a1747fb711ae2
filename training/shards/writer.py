"""Writing one shard of the format (training.shards.format): tokens, document index and provenance.

Used by the `shards` stage on Spark workers and by `training.shards.sample` without Spark,
so both write byte-identical shards, to a local folder or to object storage.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.framework.storage import Location, with_retries
from training.shards.format import (
    DOCS_SCHEMA,
    INDEX_DTYPE,
    ShardEntry,
    TokenDType,
    numpy_dtype,
    sha256_file,
    shard_paths,
)


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
    tokens). Files are written under temporary names and published on close, so a
    retried Spark task overwrites a half-written shard of the same name cleanly: locally
    the temporary files sit beside the shard and are renamed; for object storage they sit
    in a local scratch folder and are uploaded on close (an object appears only whole, and
    an aborted shard leaves nothing behind, not even an unfinished upload).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | Location,
        name: str,
        split: str,
        dtype: TokenDType,
        eos_id: int,
    ):
        self.directory = Location.parse(directory)
        self.name = name
        self.split = split
        self.dtype = numpy_dtype(dtype)
        if not 0 <= eos_id <= np.iinfo(self.dtype).max:
            raise ValueError(f"eos_id {eos_id} does not fit in {dtype}")
        self.eos = np.array([eos_id], dtype=self.dtype)
        self.paths = shard_paths(self.directory, name)
        self._scratch: Path | None = None
        if self.directory.is_local:
            self.paths[0].parent.make_dirs()
            self._tmp = [p.local_path().with_name(f".{p.name}.tmp") for p in self.paths]
        else:
            self._scratch = Path(tempfile.mkdtemp(prefix="refinery-shard-"))
            self._tmp = [self._scratch / p.name for p in self.paths]
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
        docs_sha256 = sha256_file(self._tmp[2])
        self._publish()
        return ShardEntry(
            name=self.name,
            split=self.split,
            tokens=self.tokens,
            documents=self.documents,
            ds_sha256=self._hash.hexdigest(),
            index_sha256=hashlib.sha256(index_bytes).hexdigest(),
            docs_sha256=docs_sha256,
            ds_bytes=self.tokens * self.dtype.itemsize,
        )

    def _publish(self) -> None:
        """Move the finished files into place: a rename locally, an upload (retried) to object storage."""
        for tmp, final in zip(self._tmp, self.paths, strict=True):
            if final.is_local:
                os.replace(tmp, final.local_path())
            else:
                with_retries(lambda tmp=tmp, final=final: _upload(tmp, final), f"upload {final}")
        self._drop_scratch()

    def abort(self) -> None:
        """Remove the temporary files of a shard that will not be finished."""
        self._tokens_file.close()
        for tmp in self._tmp:
            tmp.unlink(missing_ok=True)
        self._drop_scratch()

    def _drop_scratch(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)


def _upload(source: Path, target: Location) -> None:
    """Stream a local file to object storage; the object appears when the stream closes."""
    with open(source, "rb") as data, target.open_write() as out:
        shutil.copyfileobj(data, out, 1 << 20)
