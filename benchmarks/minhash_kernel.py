"""MinHash signatures per second on one core: our Arrow kernel vs datasketch `MinHash.bulk`.

Corpus: the 1,030 real pages of trafilatura's evaluation set (../shared/data/web/
trafilatura_eval), extracted to text with resiliparse, cycled to the size asked.
Both sides start from the same texts and produce 112-permutation, seed-1,
5-word-shingle signatures (datasketch's default affine32 scheme):

- ours: `dedup.kernels.minhash.signatures` on Arrow batches of 1,000 documents;
- anchor: the same normalized shingles (`shingle_lists`, the shingling time is
  counted on the anchor's side too) given to `MinHash.bulk` with datasketch's
  default hash (sha1_hash32), which is how datasketch is used.

The run also checks that datasketch given our shingle hash (`hashfunc=shingle_hash`)
reproduces our signatures bit for bit on a sample, and reports that variant's speed.
Run: python -m benchmarks.minhash_kernel [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from dedup.kernels.minhash import MinHashSpec, from_binary, signatures
from dedup.kernels.shingles import shingle_hash, shingle_lists

SHARED = Path(os.environ.get("REFINERY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
ARCHIVE = Path("web/trafilatura_eval/trafilatura_tests.tar.xz")
BATCH = 1000


def load_web_texts(shared: Path = SHARED) -> list[str]:
    """Plain text of every HTML page in the trafilatura archive (cached in the temp folder)."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    archive = shared / ARCHIVE
    cache = Path(tempfile.gettempdir()) / f"refinery-webtexts-{archive.stat().st_size}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    pages = {}
    with tarfile.open(archive) as tar:  # sequential: random access into .xz decompresses from the start
        for member in tar:
            if member.isfile() and member.name.endswith(".html"):
                raw = tar.extractfile(member).read()
                text = extract_plain_text(bytes_to_str(raw, detect_encoding(raw)), main_content=False)
                if text.strip():
                    pages[member.name] = text
    texts = [pages[name] for name in sorted(pages)]
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(pickle.dumps(texts))
    os.replace(tmp, cache)
    return texts


def _batches(texts: list[str]) -> list[pa.Array]:
    return [pa.array(texts[i : i + BATCH], type=pa.large_string()) for i in range(0, len(texts), BATCH)]


def run(num_docs: int) -> dict:
    from datasketch import MinHash

    base = load_web_texts()
    texts = [base[i % len(base)] for i in range(num_docs)]
    spec = MinHashSpec()
    batches = _batches(texts)

    start = time.process_time()
    ours = [signatures(b, spec) for b in batches]
    ours_s = time.process_time() - start

    start = time.process_time()
    shingles = [s for b in batches for s in shingle_lists(b, spec.ngram, spec.norm)]
    shingle_s = time.process_time() - start
    start = time.process_time()
    MinHash.bulk(shingles, num_perm=spec.num_perm, seed=spec.seed)
    bulk_s = time.process_time() - start
    anchor_s = shingle_s + bulk_s

    sample = min(200, num_docs)
    start = time.process_time()
    same_hash = MinHash.bulk(shingles[:sample], num_perm=spec.num_perm, seed=spec.seed, hashfunc=shingle_hash)
    same_hash_s = (time.process_time() - start) * num_docs / sample
    matrix = from_binary(ours[0].filter(ours[0].is_valid()), spec.num_perm)
    expected = np.array([m.hashvalues for m, s in zip(same_hash, shingles[:sample], strict=True) if s])
    identical = bool(np.array_equal(matrix[: len(expected)], expected))

    ours_rate, anchor_rate = num_docs / ours_s, num_docs / anchor_s
    details = {
        "docs": num_docs,
        "mean_words": round(float(np.mean([len(t.split()) for t in texts])), 1),
        "ours_cpu_s": round(ours_s, 3),
        "anchor_cpu_s": round(anchor_s, 3),
        "anchor_shingling_cpu_s": round(shingle_s, 3),
        "anchor_bulk_cpu_s": round(bulk_s, 3),
        "anchor_with_our_hash_docs_per_s": round(num_docs / (shingle_s + same_hash_s), 1),
        "bit_identical_to_datasketch_sample": identical,
        "params": {"num_perm": spec.num_perm, "seed": spec.seed, "ngram": spec.ngram, "scheme": "affine32"},
    }
    print(json.dumps(details))
    ratio = ours_rate / anchor_rate
    return {
        "benchmark": "minhash_kernel",
        "ours": round(ours_rate, 1),
        "anchor": round(anchor_rate, 1),
        "unit": "signatures/s per core (CPU time)",
        "ratio": round(ratio, 2),
        "target": 2.0,
        "pass": bool(ratio >= 2.0 and identical),
        "details": details,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 documents (under a minute)")
    parser.add_argument("--docs", type=int, default=5000)
    args = parser.parse_args()
    print(json.dumps(run(1000 if args.quick else args.docs)))


if __name__ == "__main__":
    main()
