"""TokenStream vs a nanoGPT-style `np.memmap` random-window loader, over the same real shards.

    python -m benchmarks.loader [--quick]

Corpus: every document of the web samples in ../shared/data (data-juicer's RedPajama/Pile
JSON lines and dolma's Common Crawl documents), tokenized with a byte-level BPE trained on
them (vocab 4,096), cycled to the target size and written with the shard format's writer
into 16 train shards. Both loaders deliver batches of 16 x 1,024 int64 input and label
tensors. The anchor is nanoGPT's `get_batch` (a fresh `np.memmap` per batch, random
offsets, `torch.stack` of per-row `astype(int64)` copies), picking a shard per batch in
proportion to its tokens; it has no determinism across restarts and no resume, which
TokenStream keeps. Each side runs three times, interleaved, best run counted (the machine
is shared). Also measured: time to the first batch over 10,000 shards (from nothing but
the manifest), and resident memory while reading them.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from training.loader.stream import StreamLoader, TokenStream
from training.shards.format import INDEX_DTYPE, Manifest, ShardEntry
from training.shards.sample import iter_texts, train_tokenizer, write_shard_set

SHARED = Path(os.environ.get("REFINERY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SEQ, BATCH = 1024, 16


def build_corpus(directory: Path, target_tokens: int, shards: int = 16) -> Path:
    from tokenizers import Tokenizer

    texts = [t for _, t in iter_texts(SHARED)]
    tok = Tokenizer.from_file(str(train_tokenizer(texts, 4096, directory / "tokenizer.json")))
    docs = [np.asarray(e.ids, np.uint32) for e in tok.encode_batch(texts, add_special_tokens=False)]
    per_pass = sum(len(d) + 1 for d in docs)
    cycled = docs * max(1, target_tokens // per_pass)
    parts = {f"train/part-{i:05d}": cycled[i::shards] for i in range(shards)}
    write_shard_set(
        directory, parts, vocab_size=tok.get_vocab_size(), eos_id=tok.token_to_id("<|endoftext|>")
    )
    return directory


def nanogpt_batches(directory: Path, steps: int, seed: int = 0):
    """nanoGPT's get_batch, extended to several shard files (one random shard per batch)."""
    manifest = Manifest.load(directory)
    entries = manifest.shard_entries("train")
    sizes = np.array([e.tokens for e in entries], dtype=np.float64)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        entry = entries[rng.choice(len(entries), p=sizes / sizes.sum())]
        data = np.memmap(
            directory / f"{entry.name}.ds", dtype=np.uint16, mode="r"
        )  # new map per batch, as nanoGPT
        ix = torch.randint(len(data) - SEQ, (BATCH,))
        x = torch.stack([torch.from_numpy(data[i : i + SEQ].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1 : i + 1 + SEQ].astype(np.int64)) for i in ix])
        yield x, y


def rate(batches, steps: int) -> float:
    """Steady-state tokens per second delivered (input tokens), from the first batch on.

    The first batch is excluded on both sides: its time is start-up (worker processes), measured
    separately as time to first batch.
    """
    it = iter(batches)
    next(it)
    t0 = time.perf_counter()
    n = 0
    for batch in it:
        n += batch["input_ids"].numel()
        if n >= steps * BATCH * SEQ:
            break
    return n / (time.perf_counter() - t0)


def ours(directory: Path, steps: int, workers: int) -> float:
    stream = TokenStream([directory], SEQ, BATCH, max_samples=(steps + 8) * BATCH)
    return rate(StreamLoader(stream, num_workers=workers), steps)


def write_many_shards(directory: Path, count: int, tokens_each: int) -> Path:
    """`count` shards of real-looking size, written straight as .ds/.ds.index plus the manifest.

    The provenance Parquet files are left out (the loader never reads them) so that building
    10,000 shards takes seconds; the manifest is the format's own model.
    """
    rng = np.random.default_rng(0)
    entries = []
    for i in range(count):
        name = f"train/part-{i:05d}"
        tokens = rng.integers(0, 4095, tokens_each, dtype=np.uint16)
        path = directory / f"{name}.ds"
        path.parent.mkdir(parents=True, exist_ok=True)
        tokens.tofile(path)
        np.array([tokens_each], dtype=INDEX_DTYPE).tofile(directory / f"{name}.ds.index")
        entries.append(
            ShardEntry(
                name=name,
                split="train",
                tokens=tokens_each,
                documents=1,
                ds_sha256="-",
                index_sha256="-",
                docs_sha256="-",
                ds_bytes=2 * tokens_each,
            )
        )
    manifest = Manifest(
        tokenizer_path="",
        tokenizer_sha256="-",
        vocab_size=4096,
        dtype="uint16",
        eos_token="<|endoftext|>",
        eos_id=4095,
        source_lake="",
        source_table="benchmark",
        source_version=0,
        config_hash="-",
        shard_tokens=tokens_each,
        validation_fraction=0.0,
        shards=entries,
    )
    manifest.summarize()
    manifest.save(directory)
    return directory


def first_batch_seconds(directory: Path, workers: int) -> float:
    t0 = time.perf_counter()
    next(iter(StreamLoader(TokenStream([directory], SEQ, BATCH), num_workers=workers)))
    return time.perf_counter() - t0


def many_shards(directory: Path, batches: int) -> dict[str, float]:
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    stream = TokenStream([directory], SEQ, BATCH, max_open_shards=64)
    first = next(iter(stream))
    ttfb = time.perf_counter() - t0
    assert first["input_ids"].shape == (BATCH, SEQ)
    rss_after_first = proc.memory_info().rss
    for _, _batch in zip(range(batches), stream, strict=False):
        pass
    rss_end = proc.memory_info().rss
    return {
        "shards": len(stream.sets[0].entries),
        "time_to_first_batch_s": ttfb,
        "time_to_first_batch_2_workers_s": first_batch_seconds(directory, workers=2),
        "rss_growth_first_batch_mb": (rss_after_first - rss0) / 2**20,
        "rss_growth_after_batches_mb": (rss_end - rss0) / 2**20,
        "batches_read": batches,
        "open_shards_max": stream.max_open_shards,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smaller corpus and fewer batches (< 1 minute)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps = 40 if args.quick else 300
    with tempfile.TemporaryDirectory(prefix="loader-bench-") as tmp:
        tmp = Path(tmp)
        corpus = build_corpus(tmp / "corpus", 2_000_000 if args.quick else 32_000_000)
        total = Manifest.load(corpus).total_tokens
        print(f"corpus: {total:,} tokens in 16 shards (real web text, cycled)")
        runs: dict[str, list[float]] = {"ours": [], "ours_2_workers": [], "anchor": []}
        for _ in range(3):
            runs["anchor"].append(
                rate(({"input_ids": x} for x, _ in nanogpt_batches(corpus, steps + 1)), steps)
            )
            runs["ours"].append(ours(corpus, steps, workers=0))
            runs["ours_2_workers"].append(ours(corpus, steps, workers=2))
            print({k: f"{v[-1]:,.0f} tok/s" for k, v in runs.items()})
        best = {k: max(v) for k, v in runs.items()}
        startup_16 = {w: first_batch_seconds(corpus, w) for w in (0, 2)}
        many = many_shards(write_many_shards(tmp / "many", 10_000, 2_100), 50 if args.quick else 200)
        print(json.dumps(many))
    ratio = best["ours"] / best["anchor"]
    result = {
        "benchmark": "loader",
        "ours": round(best["ours"]),
        "anchor": round(best["anchor"]),
        "unit": "tokens/s",
        "ratio": round(ratio, 3),
        "target": 1.0,
        "pass": ratio >= 1.0 and many["time_to_first_batch_s"] < 2.0,
        "details": {
            "ours_2_workers_tokens_per_s": round(best["ours_2_workers"]),
            "ratio_2_workers": round(best["ours_2_workers"] / best["anchor"], 3),
            "batch": [BATCH, SEQ],
            "corpus_tokens": total,
            "time_to_first_batch_16_shards_s": {f"{w}_workers": round(v, 3) for w, v in startup_16.items()},
            "runs": {k: [round(x) for x in v] for k, v in runs.items()},
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in many.items()},
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
