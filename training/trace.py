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
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.loader.shard_sets import ShardSet
from training.loader.stream import TokenStream
from training.shards.format import ShardEntry, ShardError, sha256_file, shard_paths
from training.shards.reader import ShardReader, doc_span, open_index, read_docs
from training.shards.verify import READ_ERRORS, SourceTable
from training.trainer.config import TrainConfig

# The `.docs.parquet` columns each document is shown with.
PROVENANCE = ("doc_id", "source", "lang", "quality_score")
# The most sequences one trace lists. Every sequence is a line (or a JSON object) with its documents held in
# memory until printed, and a listing of more than some tens of thousands is of no use to read: a larger
# step is traced one rank (--rank) or one row (--row) at a time, which costs only what is asked for.
MAX_SEQUENCES = 50_000
# The loader addresses stream positions as int64: a step past this position was never read by any run.
POSITION_LIMIT = 2**63
# The largest world size metrics.jsonl may imply. The biggest runs have some 10^5 ranks; a log implying more
# is another run's (or a damaged) log, and is refused rather than traced with an absurd world size.
MAX_LOGGED_WORLD_SIZE = 2**20
LOG_HINT = "give the run's world size with --world-size"


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
    step: int,
    world_size: int,
    batch_size: int,
    grad_accum: int,
    rank: int | None = None,
    row: int | None = None,
) -> list[tuple[int, int, int, int]]:
    """(micro-batch, rank, row, stream position) of the sequences of optimizer step `step` (1-based) asked for.

    Only those are computed, after their count is checked: one rank's row of a run on a million ranks
    costs grad_accum positions, and a whole step too large to list is refused before any is built.
    """
    if step < 1:
        raise ValueError(f"step {step}: steps are counted from 1, as in metrics.jsonl")
    if rank is not None and not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not one of the {world_size} ranks")
    if row is not None and not 0 <= row < batch_size:
        raise ValueError(f"row {row} is not one of the {batch_size} rows of a micro-batch")
    _check_size(step, world_size, batch_size, grad_accum, rank, row)
    span = world_size * batch_size
    ranks = range(world_size) if rank is None else (rank,)
    rows = range(batch_size) if row is None else (row,)
    return [
        (micro, r, i, micro * span + r * batch_size + i)
        for micro in range((step - 1) * grad_accum, step * grad_accum)
        for r in ranks
        for i in rows
    ]


def _check_size(
    step: int, world_size: int, batch_size: int, grad_accum: int, rank: int | None, row: int | None
) -> None:
    """Refuse a step no run can reach (positions past int64) or a listing of more than MAX_SEQUENCES."""
    if step * grad_accum * world_size * batch_size > POSITION_LIMIT:
        raise ValueError(
            f"step {step} of a run of world size {world_size} (--world-size), {batch_size} rows and "
            f"grad_accum {grad_accum} is past stream position 2**63, the loader's limit: no run reaches it "
            "(check --step and --world-size)"
        )
    ranks, rows = (world_size if rank is None else 1), (batch_size if row is None else 1)
    count = grad_accum * ranks * rows
    if count <= MAX_SEQUENCES:
        return
    hints = []
    if rank is None and world_size > 1:
        hints.append(f"one rank with --rank R (world size {world_size}: --world-size or metrics.jsonl)")
    if row is None and batch_size > 1:
        hints.append(f"one row with --row I (of the {batch_size} rows)")
    hint = f"trace {' and '.join(hints)}" if hints else ""
    if grad_accum > MAX_SEQUENCES:
        hint += (
            f"{'; ' if hint else ''}optim.grad_accum {grad_accum} alone is more: check --set optim.grad_accum"
        )
    raise ValueError(
        f"step {step} is {count:,} sequences ({grad_accum} micro-batch(es) x {ranks} rank(s) x {rows} row(s)), "
        f"more than the {MAX_SEQUENCES:,} one trace lists (each is held with its documents until printed, "
        f"and a longer listing is no use to read): {hint}"
    )


@dataclass
class RunLog:
    """What out_dir/metrics.jsonl says of the run's world size, record by record, and what reading it skipped.

    The order formula holds for a run that kept one world size; an elastic resume changes the positions
    of every later step, so a log that shows two world sizes is refused with what can still be traced.
    """

    path: Path
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (step, world size) of each step record
    notes: list[str] = field(default_factory=list)
    foreign: bool = False  # tokens that are no whole number of this config's ranks: another config's log

    def world_size(self) -> int | None:
        """The one world size the log shows, None when it shows none (or is another config's)."""
        if self.foreign or not self.sizes:
            return None
        first = self.sizes[0][1]
        changed = next((i for i, (_, ranks) in enumerate(self.sizes) if ranks != first), None)
        if changed is None:
            return first
        raise ValueError(
            f"{self.path} shows world size {first} then {self.sizes[changed][1]} (an elastic resume): steps up "
            f"to {self.sizes[changed - 1][0]} trace with --world-size {first}; the positions of steps after "
            "the change are not traced"
        )

    def disagreement(self, world_size: int, step: int) -> str | None:
        """Why an explicit --world-size differs from the log's at `step`: a silent wrong answer otherwise."""
        if self.foreign or not self.sizes:
            return None
        logged = next((r for s, r in reversed(self.sizes) if s <= step), self.sizes[0][1])
        if logged == world_size:
            return None
        return (
            f"--world-size {world_size}, but {self.path} shows world size {logged} at step {step}: this is "
            f"what a {world_size}-rank run reads, not what that run read (leave --world-size out to use the log's)"
        )


def read_run_log(cfg: TrainConfig) -> RunLog | None:
    """out_dir/metrics.jsonl read for the run's world size (each record's tokens over one rank's share).

    A cut-short last line is what a run killed while writing leaves, so it is skipped with a note;
    any other line that is not a step record stops the trace with its file and line number.
    """
    path = Path(cfg.out_dir) / "metrics.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text, not a metrics log; {LOG_HINT}") from None
    except OSError:
        return None
    log, per_rank = RunLog(path), cfg.data.batch_size * cfg.data.seq_len * cfg.optim.grad_accum
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    for n, line in numbered:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            if n == numbered[-1][0]:
                log.notes.append(
                    f"note: {path} line {n} is cut short (a run killed while writing it): skipped"
                )
                continue
            raise ValueError(f"{path} line {n}: not JSON ({exc}); {LOG_HINT}") from None
        ranks = _logged_ranks(record, per_rank, f"{path} line {n}")
        if ranks == 0:
            log.foreign = True
            break
        if ranks is not None:
            log.sizes.append((int(record["step"]), ranks))
    return log


def _logged_ranks(record: object, per_rank: int, where: str) -> int | None:
    """The world size one record implies: None for a record without step and tokens (an evaluation),
    0 for tokens that are no whole number of ranks (another config's log)."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: not a metrics record (a JSON object); {LOG_HINT}")
    step, tokens = record.get("step"), record.get("tokens")
    if not step or not tokens:
        return None
    if not (_whole(step) and _whole(tokens)):
        raise ValueError(
            f"{where}: step {step!r} and tokens {tokens!r} are not positive whole numbers; {LOG_HINT}"
        )
    ranks, left = divmod(int(tokens), int(step) * per_rank)
    if left or not ranks:
        return 0
    if ranks > MAX_LOGGED_WORLD_SIZE:
        raise ValueError(
            f"{where}: {int(tokens)} tokens at step {int(step)} would be a world size of {ranks:,}, more than "
            f"any run's {MAX_LOGGED_WORLD_SIZE:,}: another run's or a damaged log; {LOG_HINT}"
        )
    return ranks


def _whole(value: object) -> bool:
    """A positive whole number as JSON gives it (an int, or a finite float such as 1024.0; never a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value > 0 and math.isfinite(value) and float(value).is_integer()


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
    picked = step_positions(step, world_size, d.batch_size, cfg.optim.grad_accum, rank, row)
    sets, windows = stream.windows_at(np.array([p[3] for p in picked], dtype=np.int64))
    traces, readers = [], {}
    for (micro, r, i, position), s, window in zip(picked, sets, windows, strict=True):
        shard_set = stream.sets[int(s)]
        shard_idx, offset = (int(v[0]) for v in shard_set.locate(np.array([window])))
        entry = shard_set.entries[shard_idx]
        key = (int(s), entry.name)
        if key not in readers:  # the index and provenance only: a remote shard's tokens are never fetched
            readers[key] = _shard_documents(shard_set, entry)
        trace = SampleTrace(
            step, micro, r, i, position, str(shard_set.location), entry.name, offset, d.seq_len + 1
        )
        trace.documents = _window_documents(*readers[key], offset, d.seq_len + 1)
        traces.append(trace)
    return traces


def _damaged(location: object) -> str:
    """The end of every damaged-set error: where the whole set is checked file by file."""
    return f"the shard set is damaged (run `refinery shards verify {location}`)"


def _shard_documents(shard_set: ShardSet, entry: ShardEntry) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A shard's index and provenance rows, checked against the manifest before use.

    A damaged index maps windows to wrong documents (or to none) without any error, so its hash is
    checked (index files are small); a `.docs.parquet` must hold the manifest's count of documents.
    """
    _, index_path, docs_path = shard_paths(shard_set.location, entry.name)
    try:
        if sha256_file(index_path) != entry.index_sha256:
            raise ShardError(
                f"{index_path}: its sha256 is not the manifest's index_sha256; {_damaged(shard_set.location)}"
            )
        ends = open_index(index_path)
        docs = read_docs(docs_path, list(PROVENANCE)).to_pylist()
    except READ_ERRORS as exc:
        raise ShardError(f"{exc} (reading shard {entry.name}); {_damaged(shard_set.location)}") from None
    if len(docs) != entry.documents or len(ends) != entry.documents:
        raise ShardError(
            f"{docs_path}: {len(docs)} documents, its index and the manifest {entry.documents}; "
            f"{_damaged(shard_set.location)}"
        )
    return ends, docs


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
        if len(ids) != t.tokens:  # a truncated .ds: decoding what is left would show a wrong window
            raise ShardError(
                f"shard {t.shard} has no tokens {t.token_offset}..{t.token_offset + t.tokens}; "
                f"{_damaged(t.shard_set)}"
            )
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
