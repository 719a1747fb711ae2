"""The scaling benchmark's JSONL corpus: real English web text that every stage works on, at any size.

Why not the near-dedup benchmark's corpus: its one-line 200-word segments are two thirds
non-English and lose most of the rest to Gopher, and its copies are exact, so exact_dedup
onwards saw 2-8% of the rows and their per-document cost was measured on a thousand rows.

Here the base pool is windows of consecutive lines (>= WINDOW_WORDS words, real line structure)
of the 1,030 trafilatura pages (`load_web_texts`), kept only where the benchmark's own decide
(langid + Gopher, English) keeps them, computed in-process with the annotate kernel and cached.
Each document is then, by a seeded roll per document (so the mix does not change with size):
- `distinct` (80%): a pool window with DISTINCT_EDIT of its words replaced by words of the same
  window, which keeps it English and Gopher-clean while two such documents of one window share
  ~2% of their 5-word shingles (no near-duplicate, whatever the size);
- `near` (15%): an earlier document with 1-3 words replaced (Jaccard ~0.95: minhash removes it);
- `copy` (5%): an earlier document verbatim (exact_dedup removes it).
Files hold DOCS_PER_FILE documents each (at least 2), as a real corpus comes in many files.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import random
import tempfile
from pathlib import Path

from benchmarks.minhash_kernel import SHARED, load_web_texts

WINDOW_WORDS = 150
DISTINCT_EDIT = 0.25
NEAR_SHARE = 0.15
COPY_SHARE = 0.05
DOCS_PER_FILE = 10_000
DECIDE = {"languages": ["en"], "presets": ["gopher"]}


def _windows(pages: list[str]) -> list[str]:
    """Consecutive non-empty lines of each page, cut into windows of at least WINDOW_WORDS words."""
    windows = []
    for text in pages:
        window: list[str] = []
        words = 0
        for line in (raw.strip() for raw in text.splitlines()):
            if not line:
                continue
            window.append(line)
            words += len(line.split())
            if words >= WINDOW_WORDS:
                windows.append("\n".join(window))
                window, words = [], 0
    return windows


def _kept_by_decide(texts: list[str]) -> list[str]:
    """The texts the benchmark's annotate + decide keeps (langid, Gopher, English), run without Spark."""
    import pyarrow as pa

    from curation.annotate.stage import AnnotateConfig
    from pipelines.framework.drop_reason import DROP_REASON

    config = AnnotateConfig(annotators=["langid", "gopher"], signal_languages=["en"], decide=DECIDE)
    kernel = config.kernel()
    batch = pa.record_batch(
        {
            "id": pa.array([str(i) for i in range(len(texts))]),
            "text": pa.array(texts),
            "uri": pa.array([None] * len(texts), pa.string()),
        }
    )
    kernel.rules = config.decide.rule_list([*batch.schema.names, *(f.name for f in kernel.fields())])
    reasons = kernel(batch).column(DROP_REASON).to_pylist()
    return [text for text, reason in zip(texts, reasons, strict=True) if reason is None]


def window_pool(shared: Path = SHARED) -> list[str]:
    """Decide-kept windows of the real pages (cached in the temp folder: the scan takes ~30 s)."""
    key = f"{(shared / 'web/trafilatura_eval/trafilatura_tests.tar.xz').stat().st_size}-{WINDOW_WORDS}"
    cache = Path(tempfile.gettempdir()) / f"refinery-scaling-pool-{key}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    pool = _kept_by_decide(_windows(load_web_texts(shared)))
    if not pool:
        raise RuntimeError(f"no window of {shared} passes decide {DECIDE}: the corpus would be empty")
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(pickle.dumps(pool))
    os.replace(tmp, cache)
    return pool


def _replace_words(text: str, count: int, rng: random.Random) -> str:
    """`count` words of `text` replaced by words of the same text, its lines kept."""
    lines = [line.split() for line in text.split("\n")]
    words = [word for line in lines for word in line]
    places = [(i, j) for i, line in enumerate(lines) for j in range(len(line))]
    for i, j in rng.sample(places, min(count, len(places))):
        lines[i][j] = rng.choice(words)
    return "\n".join(" ".join(line) for line in lines)


def _document(i: int, pool: list[str], earlier: list[str], seed: int) -> tuple[str, str]:
    """Document i's (kind, text): a per-document rng, so document i is the same at every size."""
    rng = random.Random(f"{seed}-{i}")
    roll = rng.random()
    if earlier and roll < COPY_SHARE:
        return "copy", earlier[rng.randrange(len(earlier))]
    if earlier and roll < COPY_SHARE + NEAR_SHARE:
        return "near", _replace_words(earlier[rng.randrange(len(earlier))], rng.randint(1, 3), rng)
    window = pool[rng.randrange(len(pool))]
    return "distinct", _replace_words(window, int(len(window.split()) * DISTINCT_EDIT), rng)


def build_corpus(num_docs: int, folder: Path, seed: int = 0) -> dict[str, int]:
    """Write num_docs documents as JSONL under folder/jsonl; return how many of each kind."""
    pool = window_pool()
    (folder / "jsonl").mkdir(parents=True)
    files = max(2, -(-num_docs // DOCS_PER_FILE))
    per_file = -(-num_docs // files)
    texts: list[str] = []
    kinds = {"distinct": 0, "near": 0, "copy": 0}
    for f in range(files):
        with gzip.open(folder / "jsonl" / f"part-{f:04d}.jsonl.gz", "wt", encoding="utf-8") as out:
            for i in range(f * per_file, min(num_docs, (f + 1) * per_file)):
                kind, text = _document(i, pool, texts, seed)
                texts.append(text)
                kinds[kind] += 1
                out.write(json.dumps({"id": f"d{i:07d}", "text": text}) + "\n")
    return kinds
