"""Tokenize to shards: our `shards` stage vs datatrove's DocumentTokenizer, same tokenizer, documents and cores.

Corpus: as benchmarks/tokenize.py (trafilatura evaluation pages, resiliparse text,
cycled and perturbed), committed as a Delta table of 8 Parquet files.

ours:   `Shards.run` on Spark local[cores] over the table snapshot (warm session).
anchor: datatrove 0.10.1 `LocalPipelineExecutor(tasks=cores, workers=cores)` running
        `ParquetReader` over the same Parquet files and `DocumentTokenizer` with the same
        tokenizer.json and EOS, `shuffle_documents=False` (its fastest setting: no second
        copy of every file), writing the same .ds/.ds.index format.
Both count tokens on disk (EOS included) and must agree. Target: ours/anchor >= 1.5.
Each side runs `--repeat` times (default 3), alternating; the best run of each counts.

Run: `python -m benchmarks.tokenize_vs_datatrove [--quick]`; the last stdout line is the JSON result.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.tokenize import TABLE, compare, parse


def datatrove_tokens_per_s(lake, tokenizer: Path, cores: int, work: Path) -> tuple[float, int]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.tokens import DocumentTokenizer

    output = work / "datatrove"
    pipeline = [
        ParquetReader(str(lake.path(TABLE)), glob_pattern="part-*.parquet", text_key="text", id_key="doc_id"),
        DocumentTokenizer(
            output_folder=str(output),
            tokenizer_name_or_path=str(tokenizer),
            eos_token="<|endoftext|>",
            shuffle_documents=False,
        ),
    ]
    executor = LocalPipelineExecutor(
        pipeline=pipeline,
        tasks=cores,
        workers=cores,
        logging_dir=str(work / "datatrove-logs"),
        skip_completed=False,
    )
    started = time.perf_counter()
    executor.run()
    seconds = time.perf_counter() - started
    tokens = sum(p.stat().st_size for p in output.glob("*.ds")) // 2
    return tokens / seconds, tokens


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    compare(
        "tokenize_vs_datatrove",
        1.5,
        args,
        "datatrove DocumentTokenizer",
        lambda _texts, lake, work: datatrove_tokens_per_s(lake, args.tokenizer, args.cores, work),
    )


if __name__ == "__main__":
    main()
