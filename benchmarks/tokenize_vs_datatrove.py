"""Tokenize to shards: our `shards` stage vs datatrove's DocumentTokenizer, same tokenizer, documents and cores.

Corpus: as benchmarks/tokenize.py (trafilatura evaluation pages, resiliparse text,
cycled and perturbed), committed as a Delta table of 8 Parquet files.

ours:   `Shards.run` on Spark local[cores] over the table snapshot (warm session).
anchor: datatrove 0.10.1 `LocalPipelineExecutor(tasks=cores, workers=cores)` running
        `ParquetReader` over the same Parquet files and `DocumentTokenizer` with the same
        tokenizer.json and EOS, `shuffle_documents=False` (its fastest setting: no second
        copy of every file), writing the same .ds/.ds.index format.
Both count tokens on disk (EOS included) and must agree. Target: ours/anchor >= 1.5.

Run: `python -m benchmarks.tokenize_vs_datatrove [--quick]`; the last stdout line is the JSON result.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from benchmarks.tokenize import TABLE, ours_tokens_per_s, parse, prepare


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
    with tempfile.TemporaryDirectory(prefix="bench-tok-dt-") as tmp:
        work = Path(tmp)
        texts, lake = prepare(args, work)
        print(f"corpus: {len(texts)} documents, {sum(map(len, texts))} characters, {args.cores} cores")
        anchor, anchor_tokens = datatrove_tokens_per_s(lake, args.tokenizer, args.cores, work)
        print(f"anchor datatrove DocumentTokenizer: {anchor:,.0f} tokens/s ({anchor_tokens} tokens)")
        ours, our_tokens = ours_tokens_per_s(lake, args.cores, work, args.tokenizer)
        print(f"ours shards stage: {ours:,.0f} tokens/s ({our_tokens} tokens)")
        if our_tokens != anchor_tokens:
            raise SystemExit(f"token counts differ: ours {our_tokens}, datatrove {anchor_tokens}")
    ratio = ours / anchor
    result = {
        "benchmark": "tokenize_vs_datatrove",
        "ours": round(ours, 1),
        "anchor": round(anchor, 1),
        "unit": "tokens/s",
        "ratio": round(ratio, 3),
        "target": 1.5,
        "pass": ratio >= 1.5,
        "details": {"documents": len(texts), "tokens": our_tokens, "cores": args.cores, "quick": args.quick},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
