"""Build small shard sets without Spark: real web text -> a BPE tokenizer -> shards + manifest.

Why it exists: the loader's tests, the benchmarks and the self-contained GPU script need
real shards on a machine where the curation pipeline has not run. It uses only the shard
format's own writer (`training.shards.writer.ShardWriter`, `training.shards.format.Manifest`), so what it writes is
exactly what the `shards` stage writes. Text comes from the real web samples in
../shared/data (or any folder of .jsonl / .jsonl.gz / .json.gz files with a `text` field).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from pipelines.framework.storage import Location
from pipelines.ingest.readers.jsonl import json_lines
from training.shards.format import Manifest, ShardEntry, dtype_for_vocab, sha256_file
from training.shards.writer import DocMeta, ShardWriter
from training.tokenizer.build import train_bpe
from training.tokenizer.load import save_tokenizer

EOS_TOKEN = "<|endoftext|>"
WEB_TEXT_DIRS = ("web/datajuicer_pretrain_source_samples", "web/dolma_cc_samples")


def iter_texts(root: str | os.PathLike[str]) -> Iterator[tuple[str, str]]:
    """(source file name, text) of every JSON line with a `text` field under the web sample folders of root.

    `root` is either the shared data folder (its web samples are read) or any folder of JSON lines.
    """
    root = Path(root)
    folders = [root / d for d in WEB_TEXT_DIRS if (root / d).is_dir()] or [root]
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or not path.name.endswith((".jsonl", ".jsonl.gz", ".json.gz")):
                continue
            for _, record in json_lines(path):
                if text := record.get("text"):
                    yield path.name, text


def train_tokenizer(texts: Iterable[str], vocab_size: int, path: str | os.PathLike[str]) -> Path:
    """Train the pipeline's byte-level BPE with an EOS special token and save tokenizer.json.

    Every pair may merge (min_frequency 0): the sample texts are few, and the fixtures' and
    benchmarks' tokenizers stay the ones they were built with.
    """
    return save_tokenizer(train_bpe(iter(texts), vocab_size, EOS_TOKEN, min_frequency=0), path)


def write_shard_set(
    directory: str | os.PathLike[str] | Location,
    shards: dict[str, Sequence[Sequence[int] | np.ndarray]],
    *,
    vocab_size: int,
    eos_id: int,
    tokenizer_path: str = "",
    tokenizer_sha256: str = "none",
    eos_token: str = EOS_TOKEN,
    splits: dict[str, str] | None = None,
    source: str = "sample",
) -> Manifest:
    """Write one shard per key of `shards` (name -> list of documents' token ids) and the manifest last,
    to a folder or a URL (s3://...).

    `splits` maps shard name to split; names under "validation/" default to validation, others to train.
    """
    dtype = dtype_for_vocab(vocab_size)
    entries: list[ShardEntry] = []
    for name, documents in shards.items():
        split = (splits or {}).get(name, "validation" if name.startswith("validation/") else "train")
        writer = ShardWriter(directory, name, split, dtype, eos_id)
        for i, doc in enumerate(documents):
            writer.add(doc, DocMeta(doc_id=f"{name}#{i}", source=source))
        entries.append(writer.close())
    config = {"shards": sorted(shards), "vocab": vocab_size, "tok": tokenizer_sha256}
    manifest = Manifest(
        tokenizer_path=tokenizer_path,
        tokenizer_sha256=tokenizer_sha256,
        vocab_size=vocab_size,
        dtype=dtype,
        eos_token=eos_token,
        eos_id=eos_id,
        source_lake="",
        source_table=source,
        source_version=0,
        config_hash=hashlib.sha256(json.dumps(config).encode()).hexdigest()[:16],
        shard_tokens=max(1, max(sum(len(d) + 1 for d in docs) for docs in shards.values())),
        validation_fraction=sum(e.split == "validation" for e in entries) / max(1, len(entries)),
        shards=entries,
    )
    manifest.summarize()
    manifest.save(directory)
    return manifest


def build_text_shards(
    directory: str | os.PathLike[str] | Location,
    texts: Iterable[str],
    tokenizer_path: str | os.PathLike[str],
    *,
    train_shards: int = 4,
    validation_shards: int = 1,
    repeat: int = 1,
) -> Manifest:
    """Tokenize texts with a tokenizer.json and deal the documents round-robin into train/validation shards.

    `repeat` cycles the corpus (for benchmarks that need more tokens than the real sample holds).
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    eos_id = tok.token_to_id(EOS_TOKEN)
    if eos_id is None:
        raise ValueError(f"{tokenizer_path} has no {EOS_TOKEN} token")
    docs = [
        np.asarray(e.ids, dtype=np.uint32) for e in tok.encode_batch(list(texts), add_special_tokens=False)
    ]
    names = [f"train/part-{i:05d}" for i in range(train_shards)]
    names += [f"validation/part-{i:05d}" for i in range(validation_shards)]
    shards: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for i, doc in enumerate(docs * repeat):
        shards[names[i % len(names)]].append(doc)
    return write_shard_set(
        directory,
        shards,
        vocab_size=tok.get_vocab_size(),
        eos_id=eos_id,
        tokenizer_path=str(tokenizer_path),
        tokenizer_sha256=sha256_file(tokenizer_path),
    )


def build_web_shards(
    directory: str | os.PathLike[str],
    data_root: str | os.PathLike[str],
    *,
    vocab_size: int = 512,
    train_shards: int = 4,
    validation_shards: int = 1,
    repeat: int = 1,
) -> Manifest:
    """The one-call path: real web text -> tokenizer trained on it (in directory/tokenizer.json) -> shards."""
    texts = [text for _, text in iter_texts(data_root)]
    if not texts:
        raise FileNotFoundError(f"no JSON-lines text found under {data_root}")
    tokenizer = train_tokenizer(texts, vocab_size, Path(directory) / "tokenizer.json")
    return build_text_shards(
        directory,
        texts,
        tokenizer,
        train_shards=train_shards,
        validation_shards=validation_shards,
        repeat=repeat,
    )
