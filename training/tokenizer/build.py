"""Training a byte-level BPE from a lake table, and measuring a tokenizer's fertility on one.

Training streams a deterministic sample of a Delta snapshot through a pyarrow
dataset (batches of the `text` column, never the whole table in memory), so
`refinery tokenizer train` needs no Spark session and works on tables larger
than memory. The sample is chosen by a hash of the document id, so the same
table version and seed always train on the same documents.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from pipelines.framework.drop_reason import DROP_REASON, arrow_kept
from training.tokenizer.load import DEFAULT_EOS, TokenizerInfo

SAMPLE_RESOLUTION = 1 << 32
MAX_VOCAB = 2**32  # ids 0 .. 2**32 - 1: the largest shard dtype, uint32
WORD_RE = re.compile(r"\S+")


def build_byte_level_bpe(vocab_size: int, eos_token: str = DEFAULT_EOS, min_frequency: int = 2):
    """An untrained byte-level BPE (GPT-2 style: no unknown tokens, every byte representable) and its trainer."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[eos_token],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    return tokenizer, trainer


def train_bpe(
    texts: Iterator[str], vocab_size: int, eos_token: str = DEFAULT_EOS, min_frequency: int = 2
) -> Tokenizer:
    """Train a byte-level BPE from an iterator of texts (consumed once, in order).

    BPE stops when no pair occurs `min_frequency` times, so a small sample gives fewer tokens than
    asked; that is said on stderr (a note, not an error: the tokenizer is usable), because the
    shard dtype and the model size follow the vocabulary actually trained.
    """
    if not 256 + 1 <= vocab_size <= MAX_VOCAB:
        raise ValueError(
            f"vocab_size {vocab_size} is outside [257, {MAX_VOCAB}]: the 256 byte symbols plus EOS at least, "
            "and at most the ids a uint32 shard can hold"
        )
    tokenizer, trainer = build_byte_level_bpe(vocab_size, eos_token, min_frequency)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    trained = tokenizer.get_vocab_size(with_added_tokens=True)
    if trained < vocab_size:
        print(
            f"note: trained a vocabulary of {trained} tokens, fewer than the {vocab_size} asked for: no other "
            f"pair occurs {min_frequency} times in the sample (more documents would give more)",
            file=sys.stderr,
        )
    return tokenizer


def in_sample(doc_ids: pa.Array, fraction: float, seed: int) -> pa.Array:
    """Boolean mask: documents whose seeded id hash falls under `fraction` (stable per id)."""
    if fraction >= 1.0:
        return pa.array([True] * len(doc_ids))
    limit = int(fraction * SAMPLE_RESOLUTION)
    seed_bytes = str(seed).encode()
    hashes = [
        xxhash.xxh64_intdigest(seed_bytes + b":" + (d or "").encode()) % SAMPLE_RESOLUTION
        for d in doc_ids.to_pylist()
    ]
    return pa.array([h < limit for h in hashes])


@dataclass
class TableSample:
    """A streamed, deterministic sample of a table's kept rows."""

    dataset: Any  # pyarrow.dataset.Dataset over one Delta snapshot
    fraction: float = 1.0
    max_documents: int | None = None
    seed: int = 0
    text_column: str = "text"
    id_column: str = "doc_id"
    lang_column: str = "lang"
    batch_rows: int = 1024
    documents: int = field(default=0, init=False)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Batches of (text, lang) for sampled kept rows; stops after `max_documents`."""
        self._check_options()
        names = set(self.dataset.schema.names)
        if self.text_column not in names:
            raise ValueError(f"the table has no {self.text_column!r} column (columns: {sorted(names)})")
        columns = [c for c in (self.text_column, self.id_column, self.lang_column, DROP_REASON) if c in names]
        self.documents = 0
        for batch in self.dataset.to_batches(columns=columns, batch_size=self.batch_rows):
            mask = pc.is_valid(batch.column(self.text_column))
            if DROP_REASON in names:
                mask = pc.and_(mask, arrow_kept(batch))
            if self.id_column in names and self.fraction < 1.0:
                mask = pc.and_(mask, in_sample(batch.column(self.id_column), self.fraction, self.seed))
            kept = batch.filter(mask)
            if self.max_documents is not None:
                kept = kept.slice(0, max(0, self.max_documents - self.documents))
            if kept.num_rows:
                self.documents += kept.num_rows
                yield kept
            if self.max_documents is not None and self.documents >= self.max_documents:
                return

    def _check_options(self) -> None:
        """Out-of-range options used to select no row, reported as "no kept rows" of a full table.

        Checked as streaming starts, so the error reaches the caller through whatever consumes the
        texts (training), where its ValueError is reported, rather than where the sample is built.
        """
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"sample fraction (--sample-fraction) must be in (0, 1], got {self.fraction}")
        if self.max_documents is not None and self.max_documents < 1:
            raise ValueError(f"max documents (--max-documents) must be at least 1, got {self.max_documents}")

    def texts(self) -> Iterator[str]:
        for batch in self.batches():
            yield from batch.column(self.text_column).to_pylist()


@dataclass
class Fertility:
    """Tokens per whitespace-separated word for one language (CJK text has few spaces: read with care)."""

    documents: int = 0
    words: int = 0
    tokens: int = 0

    @property
    def tokens_per_word(self) -> float:
        return self.tokens / self.words if self.words else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "documents": self.documents,
            "words": self.words,
            "tokens": self.tokens,
            "tokens_per_word": round(self.tokens_per_word, 4),
        }


def fertility(tokenizer: Tokenizer, sample: TableSample) -> dict[str, Fertility]:
    """Per-language fertility over a streamed sample (language from `lang`, else "unknown")."""
    out: dict[str, Fertility] = {}
    for batch in sample.batches():
        texts = batch.column(sample.text_column).to_pylist()
        names = batch.schema.names
        langs = (
            batch.column(sample.lang_column).to_pylist()
            if sample.lang_column in names
            else [None] * len(texts)
        )
        encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
        for text, lang, enc in zip(texts, langs, encodings, strict=True):
            entry = out.setdefault(lang or "unknown", Fertility())
            entry.documents += 1
            entry.words += len(WORD_RE.findall(text))
            entry.tokens += len(enc.ids)
    return dict(sorted(out.items(), key=lambda kv: -kv[1].documents))


def write_report(
    path: Path, info: TokenizerInfo, table: str, version: int, stats: dict[str, Fertility]
) -> Path:
    """A JSON report beside the tokenizer: which table version it learned from and its fertility."""
    report = path.with_name(path.name + ".report.json")
    report.write_text(
        json.dumps(
            {
                "tokenizer": info.path,
                "sha256": info.sha256,
                "vocab_size": info.vocab_size,
                "eos_token": info.eos_token,
                "eos_id": info.eos_id,
                "table": table,
                "table_version": version,
                "fertility": {lang: f.as_dict() for lang, f in stats.items()},
            },
            indent=2,
        )
        + "\n"
    )
    return report
