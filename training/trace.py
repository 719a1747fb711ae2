"""The documents behind one optimizer step: from a step number back to shards, documents and source rows.

Why: a loss spike, a memorised string or a bad batch is seen as a step in metrics.jsonl.
The loader's order is a pure function of the data, the seed and a sample's position
(training/loader/sample_order.py), so the samples of any step can be recomputed from
the training config alone: nothing was logged during training and nothing needs to be.
Optimizer step S (1-based, as the trainer counts) is made of micro-batches
(S-1)*grad_accum ... S*grad_accum-1; micro-batch m gives rank r the positions
m*W*B + r*B + 0..B-1 (W ranks, B sequences per rank). Each position is a window of
seq_len + 1 tokens in one shard; the shard's index and `.docs.parquet` name every
document the window touches, and the manifest's source table version holds each
document's row (uri, locator, the run that ingested it): the last links of the
chain in docs/architecture.md, "Tracing a token back to its source".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.loader.stream import TokenStream
from training.shards.format import shard_paths
from training.shards.reader import ShardReader, doc_span, open_index, read_docs
from training.shards.verify import SourceTable
from training.trainer.config import TrainConfig

# The `.docs.parquet` columns each document is shown with.
PROVENANCE = ("doc_id", "source", "lang", "quality_score")


@dataclass
class WindowDocument:
    """One document a window touches: its provenance row and which of its tokens the window holds."""

    doc_id: str
    source: str | None
    lang: str | None
    quality_score: float | None
    shard_span: tuple[int, int]  # the document's tokens in the shard, EOS included
    window_span: tuple[int, int]  # the window's tokens that are this document's (0 = the window's first)
    source_row: dict[str, Any] | None = None


@dataclass
class SampleTrace:
    """One sequence of one micro-batch: where the loader took its seq_len + 1 tokens from."""

    step: int
    micro_batch: int
    rank: int
    row: int
    position: int
    shard_set: str
    shard: str
    token_offset: int
    tokens: int
    documents: list[WindowDocument] = field(default_factory=list)
    text: str | None = None  # the window decoded, when asked for

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def step_positions(
    step: int, world_size: int, batch_size: int, grad_accum: int, rank: int | None = None
) -> list[tuple[int, int, int, int]]:
    """(micro-batch, rank, row, stream position) of every sequence of optimizer step `step` (1-based)."""
    if step < 1:
        raise ValueError(f"step {step}: steps are counted from 1, as in metrics.jsonl")
    if rank is not None and not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not one of the {world_size} ranks")
    span = world_size * batch_size
    ranks = range(world_size) if rank is None else (rank,)
    return [
        (micro, r, row, micro * span + r * batch_size + row)
        for micro in range((step - 1) * grad_accum, step * grad_accum)
        for r in ranks
        for row in range(batch_size)
    ]


def world_size_from_metrics(cfg: TrainConfig) -> int | None:
    """The ranks of the run that wrote out_dir/metrics.jsonl (each record's tokens over one rank's share).

    The order formula holds for a run that kept one world size; an elastic resume changes the positions
    of every later step, so a log that shows two world sizes is refused with what can still be traced.
    """
    path = Path(cfg.out_dir) / "metrics.jsonl"
    per_rank = cfg.data.batch_size * cfg.data.seq_len * cfg.optim.grad_accum
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    first, last_step, other = None, 0, None  # the first world size, its last step before a change, the next
    for line in lines:
        record = json.loads(line)
        if record.get("step") and record.get("tokens"):
            ranks, left = divmod(int(record["tokens"]), int(record["step"]) * per_rank)
            if left or not ranks:
                return None  # another config's log: no inference
            first = first or ranks
            if ranks != first:
                other = other or ranks
            elif other is None:
                last_step = int(record["step"])
    if other is not None:
        raise ValueError(
            f"{path} shows world size {first} then {other} (an elastic resume): steps up to {last_step} trace "
            f"with --world-size {first}; the positions of steps after the change are not traced"
        )
    return first


def trace_step(
    cfg: TrainConfig,
    stream: TokenStream,
    step: int,
    world_size: int,
    rank: int | None = None,
    row: int | None = None,
) -> list[SampleTrace]:
    """Every sequence of `step` (or one rank's, or one row's), with the documents each window holds."""
    d = cfg.data
    picked = [
        p
        for p in step_positions(step, world_size, d.batch_size, cfg.optim.grad_accum, rank)
        if row in (None, p[2])
    ]
    if not picked:
        raise ValueError(f"row {row} is not one of the {d.batch_size} rows of a micro-batch")
    sets, windows = stream.windows_at(np.array([p[3] for p in picked], dtype=np.int64))
    traces, readers = [], {}
    for (micro, r, i, position), s, window in zip(picked, sets, windows, strict=True):
        shard_set = stream.sets[int(s)]
        shard_idx, offset = (int(v[0]) for v in shard_set.locate(np.array([window])))
        name = shard_set.entries[shard_idx].name
        key = (int(s), name)
        if key not in readers:  # the index and provenance only: a remote shard's tokens are never fetched
            _, index_path, docs_path = shard_paths(shard_set.location, name)
            readers[key] = (open_index(index_path), read_docs(docs_path, list(PROVENANCE)).to_pylist())
        trace = SampleTrace(step, micro, r, i, position, str(shard_set.location), name, offset, d.seq_len + 1)
        trace.documents = _window_documents(*readers[key], offset, d.seq_len + 1)
        traces.append(trace)
    return traces


def _window_documents(
    ends: np.ndarray, docs: list[dict[str, Any]], offset: int, length: int
) -> list[WindowDocument]:
    """The documents whose spans meet [offset, offset + length) of the shard, in order."""
    out = []
    for i in range(int(np.searchsorted(ends, offset, side="right")), len(ends)):
        start, end = doc_span(ends, i)
        if start >= offset + length:
            break
        window = (max(start, offset) - offset, min(end, offset + length) - offset)
        out.append(
            WindowDocument(**{k: docs[i][k] for k in PROVENANCE}, shard_span=(start, end), window_span=window)
        )
    return out


def attach_texts(traces: list[SampleTrace], stream: TokenStream, tokenizer: str | None = None) -> None:
    """Each window decoded with the run's tokenizer (the config's, else the manifest's): what the model read.

    Unlike the rest of a trace this reads the windows' tokens, so a shard on object storage is fetched.
    """
    from training.tokenizer.load import load_tokenizer

    decode = load_tokenizer(tokenizer or stream.manifest.tokenizer_path).decode
    shards: dict[tuple[str, str], np.ndarray] = {}
    for t in traces:
        key = (t.shard_set, t.shard)
        if key not in shards:
            shard_set = next(s for s in stream.sets if str(s.location) == t.shard_set)
            shards[key] = ShardReader.from_manifest(shard_set.location, shard_set.manifest, t.shard).tokens
        ids = shards[key][t.token_offset : t.token_offset + t.tokens]
        t.text = decode([int(i) for i in ids], skip_special_tokens=False)


def attach_source_rows(traces: list[SampleTrace], stream: TokenStream, lake: str | None = None) -> None:
    """Each document's row in its shard set's source table version (uri, locator, ingest run, ...)."""
    by_set: dict[str, list[WindowDocument]] = {}
    for trace in traces:
        by_set.setdefault(trace.shard_set, []).extend(trace.documents)
    for shard_set in stream.sets:
        documents = by_set.get(str(shard_set.location), [])
        if not documents:
            continue
        rows = SourceTable(shard_set.manifest, lake).provenance(sorted({doc.doc_id for doc in documents}))
        for doc in documents:
            doc.source_row = rows.get(doc.doc_id)
