"""Batch encoders for the shard writer: tokie where it reproduces HF tokenizers exactly, else HF tokenizers.

Why two: HF `tokenizers` is the reference (every tokenizer.json means what it
says there), but most of its time goes to bookkeeping shards never use
(normalized-string alignments, per-token strings). tokie reads the same
tokenizer.json and returns every document's ids as one numpy buffer, more than ten
times faster here (BENCHMARKS.md). Shards must hold exactly the reference ids, so
tokie is trusted only after it agrees with HF on a check set for this run (the
job's own documents plus probes for special tokens, whitespace and long runs), and
`refinery shards verify` re-tokenizes a sample with HF afterwards. `auto` falls
back to HF, with the reason in the stage metrics, when tokie is missing, cannot
load the file or disagrees anywhere.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from training.tokenizer.load import tokenizer_from_json

EncoderChoice = Literal["auto", "tokie", "hf"]
# Inputs where tokenizers tend to differ: special tokens inside text, whitespace runs,
# control characters, combining marks, emoji sequences, very long words and lines.
PROBES = (
    "",
    " ",
    "\n\n\t  \r\n",
    "a\u0000b\u0007c",
    "e\u0301 \u00c5 A\u030a \ufb01 \u2126",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 \U0001f4a9\U0001f4a9 \U0001f1eb\U0001f1f7",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3001\u4e2d\u6587\u3002 \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0939\u093f\u0928\u094d\u0926\u0940",
    "it's we'll they've I'd 12345 3.14 $100 -- ... !!! ???",
    "x" * 5000,
    " word" * 2000,
    "    indented\n        code()\n",
)


class BatchEncoder(Protocol):
    """Encodes texts without special tokens; returns all ids concatenated and each document's length."""

    name: str

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class HfEncoder:
    """The reference: `tokenizers.Tokenizer.encode_batch_fast` (ids identical to `encode_batch`)."""

    payload: str

    @property
    def name(self) -> str:
        return f"tokenizers {metadata.version('tokenizers')}"

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = tokenizer_from_json(self.payload).encode_batch_fast(list(texts), add_special_tokens=False)
        arrays = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        return (np.concatenate(arrays) if arrays else np.zeros(0, np.int64)), lengths


@dataclass
class TokieEncoder:
    """tokie over the same tokenizer.json text (written to a file once per worker: tokie loads paths)."""

    payload: str

    @property
    def name(self) -> str:
        return f"tokie {metadata.version('tokie')}"

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        ids, lengths = _tokie(self.payload).encode_batch_flat(list(texts), add_special_tokens=False)
        return ids, lengths.astype(np.int64)


_TOKIE: dict[str, object] = {}


def _tokie(payload: str):  # type: ignore[no-untyped-def]
    import tokie

    key = hashlib.sha256(payload.encode()).hexdigest()
    if key not in _TOKIE:
        path = Path(tempfile.gettempdir()) / f"refinery-tokenizer-{key}.json"
        if not path.is_file():
            tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
            tmp.write_text(payload, encoding="utf-8")
            tmp.replace(path)
        _TOKIE[key] = tokie.Tokenizer.from_json(str(path))
    return _TOKIE[key]


def encoder(name: str, payload: str) -> BatchEncoder:
    """The encoder a resolved choice names ("tokie" or "hf")."""
    if name == "tokie":
        return TokieEncoder(payload)
    if name == "hf":
        return HfEncoder(payload)
    raise ValueError(f"encoder must be 'tokie' or 'hf' once resolved, not {name!r}")


def first_disagreement(payload: str, texts: Sequence[str]) -> str | None:
    """Where tokie's ids differ from HF's on `texts` (None when they agree on all)."""
    reference = HfEncoder(payload)
    candidate = TokieEncoder(payload)
    want_ids, want_lengths = reference.encode_flat(texts)
    got_ids, got_lengths = candidate.encode_flat(texts)
    want_ends, got_ends = np.cumsum(want_lengths), np.cumsum(got_lengths)
    for i, text in enumerate(texts):
        want = want_ids[want_ends[i] - want_lengths[i] : want_ends[i]]
        got = got_ids[got_ends[i] - got_lengths[i] : got_ends[i]]
        if len(want) != len(got) or not np.array_equal(want, got):
            diff = np.flatnonzero(want[: len(got)] != got[: len(want)])
            k = int(diff[0]) if diff.size else min(len(want), len(got))
            return (
                f"text #{i} ({text[:40]!r}...): token {k} differs ({len(want)} HF ids, {len(got)} tokie ids)"
            )
    return None


def check_texts(payload: str, sample: Sequence[str]) -> list[str]:
    """The run's check set: its sampled documents, the probes, and each added token inside text."""
    added = [t.content for t in tokenizer_from_json(payload).get_added_tokens_decoder().values()]
    return [*sample, *PROBES, *(f"before {t} after{t}{t}end" for t in added)]


@dataclass(frozen=True)
class Resolution:
    """What a shards run encodes with, and why."""

    encoder: str
    reason: str


def resolve(choice: EncoderChoice, payload: str, sample: Sequence[str]) -> Resolution:
    """Pick the encoder for a run: `tokie` must agree with HF on the check set, `auto` falls back to HF."""
    if choice == "hf":
        return Resolution("hf", "configured")
    try:
        problem = first_disagreement(payload, check_texts(payload, sample))
    except Exception as exc:  # noqa: BLE001 - tokie absent or unable to read this tokenizer.json
        problem = f"tokie cannot encode with this tokenizer: {type(exc).__name__}: {exc}"
    if problem is None:
        return Resolution("tokie", f"agrees with HF tokenizers on {len(sample)} documents and the probes")
    if choice == "tokie":
        raise ValueError(
            f"encoder: tokie does not reproduce HF tokenizers for this tokenizer.json ({problem}); "
            "set `encoder: hf` (or `auto`, which falls back by itself)"
        )
    return Resolution("hf", f"tokie fallback: {problem}")
