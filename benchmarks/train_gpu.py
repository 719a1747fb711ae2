"""GPT-2 124M pretraining throughput on real shards: tokens/s, MFU and data-wait fraction.

    python -m benchmarks.train_gpu                                # H200/H100: gpt2-124m, bf16, compile, seq 1024
    python -m benchmarks.train_gpu --config gpt2-350m             # GPT-2 medium; gpt2-774m: GPT-2 large, batch 16
    python -m benchmarks.train_gpu --config tiny --steps 4        # the CPU check of the same path
    python -m benchmarks.train_gpu --shards lake/shards/default   # train on a shard set you already have

One command, self-contained: without `--shards` it builds a shard set first, from the real
web text of ../shared/data when present, else from the repository's own samples/jsonl (so
it runs on a machine that has only this checkout), tokenized with samples/tokenizer.json
(4,096-token BPE; trained on those same samples) or a tokenizer it trains. The corpus is
cycled to hold at least one pass of the planned tokens. The model's vocabulary is 50,304
(GPT-2's, padded) whatever the tokenizer's, so FLOPs and MFU match GPT-2 as llm.c
measures it (the anchor: about 41% MFU on an H100 at this size).

It runs the real trainer (`training.trainer.train.train`: DDP-ready, bf16 autocast, torch.compile,
fused AdamW, TokenStream with 2 workers) and reads its metrics.jsonl; the first steps
(compilation, warm-up) are left out of the averages.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("REFINERY_SHARED_DATA", REPO.parent / "shared" / "data"))
LLMC_H100_MFU = 0.41
TARGET_MFU = 0.40

PRESETS = {  # per config: sequence length, per-device batch, default steps, peak learning rate (GPT-3's table)
    "gpt2-124m": {"seq_len": 1024, "batch_size": 32, "steps": 60, "lr": 6e-4},
    "gpt2-350m": {"seq_len": 1024, "batch_size": 32, "steps": 40, "lr": 3e-4},
    "gpt2-774m": {"seq_len": 1024, "batch_size": 16, "steps": 30, "lr": 2.5e-4},
    "small": {"seq_len": 512, "batch_size": 16, "steps": 40, "lr": 6e-4},
    "tiny": {"seq_len": 64, "batch_size": 4, "steps": 6, "lr": 6e-4},
}


def build_shards(out: Path, min_tokens: int) -> Path:
    """A shard set from real text; samples/tokenizer.json when it exists, else a BPE trained here."""
    from tokenizers import Tokenizer

    from training.shards.sample import build_text_shards, iter_texts, train_tokenizer

    root = SHARED if SHARED.is_dir() else REPO / "samples" / "jsonl"
    texts = [t for _, t in iter_texts(root)]
    if not texts:
        raise SystemExit(f"no text found under {root}; pass --shards")
    tokenizer = REPO / "samples" / "tokenizer.json"
    if not tokenizer.is_file():
        tokenizer = train_tokenizer(texts, 4096, out / "tokenizer.json")
    tok = Tokenizer.from_file(str(tokenizer))
    per_pass = sum(len(e.ids) + 1 for e in tok.encode_batch(texts, add_special_tokens=False))
    repeat = max(1, -(-min_tokens // per_pass))
    build_text_shards(out, texts, tokenizer, train_shards=8, validation_shards=1, repeat=repeat)
    print(f"built shards in {out} from {len(texts)} documents of {root} x {repeat}")
    return out


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line, with the preset's sequence length, batch and steps filled in where not given."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="gpt2-124m", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="sequences per device per step")
    parser.add_argument("--seq-len", type=int, default=None)
    parser.add_argument("--shards", default=None, help="shard folder; default: build one from real text")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the TokenStream")
    parser.add_argument("--compile", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    args = parser.parse_args(argv)
    preset = PRESETS[args.config]
    args.seq_len = args.seq_len or preset["seq_len"]
    args.batch_size = args.batch_size or preset["batch_size"]
    args.steps = args.steps or preset["steps"]
    args.lr = preset["lr"]
    args.warmup = min(10, args.steps // 2)
    return args


def _train_config(args: argparse.Namespace, shards: Path, out: Path) -> Any:
    """The trainer's config for this run: one log line per step, no evaluation, no checkpoint."""
    import torch

    from training.trainer.config import TrainConfig

    return TrainConfig.model_validate(
        {
            "model": args.config,
            "model_overrides": {"vocab_size": 50304} if args.config.startswith("gpt2-") else {},
            "data": {
                "train": [str(shards)],
                "seq_len": args.seq_len,
                "batch_size": args.batch_size,
                "num_workers": args.workers,
            },
            "optim": {"lr": args.lr, "min_lr": args.lr / 10, "warmup_steps": args.warmup},
            "steps": args.steps,
            "eval_every": 0,
            "eval_batches": 0,
            "checkpoint_every": 0,
            "log_every": 1,
            "out_dir": str(out),
            "compile": args.compile,
            "cpu_threads": 0 if torch.cuda.is_available() else 1,
            "progress": False,
        }
    )


def _train_records(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train as the arguments say (building shards first if none are given); the metrics.jsonl records."""
    from training.trainer.train import train

    with tempfile.TemporaryDirectory(prefix="train-gpu-") as tmp:
        min_tokens = args.steps * args.batch_size * args.seq_len
        shards = Path(args.shards) if args.shards else build_shards(Path(tmp) / "shards", min_tokens)
        out = Path(args.out) if args.out else Path(tmp) / "run"
        train(_train_config(args, shards, out), fresh=True)
        return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def main(argv: list[str] | None = None) -> dict:
    args = _arguments(argv)
    import torch

    records = _train_records(args)
    steady = [r for r in records if "loss" in r][args.warmup :] or [r for r in records if "loss" in r]
    tok_s = statistics.median(r["tokens_per_s"] for r in steady)
    mfus = [r["mfu"] for r in steady if r["mfu"] is not None]
    mfu = statistics.median(mfus) if mfus else None
    wait = statistics.mean(r["data_wait"] for r in steady)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu (no GPU: MFU not measured)"
    result = {
        "benchmark": "train_gpu",
        "ours": round(mfu, 4) if mfu is not None else None,
        "anchor": LLMC_H100_MFU,
        "unit": "MFU",
        "ratio": round(mfu / LLMC_H100_MFU, 3) if mfu is not None else None,
        "target": TARGET_MFU,
        "pass": mfu is not None and mfu >= TARGET_MFU and wait < 0.01,
        "details": {
            "device": device,
            "config": args.config,
            "seq_len": args.seq_len,
            "batch_per_device": args.batch_size,
            "steps": args.steps,
            "steps_averaged": len(steady),
            "tokens_per_s": round(tok_s),
            "data_wait_fraction": round(wait, 5),
            "first_loss": records[0].get("loss"),
            "last_loss": steady[-1]["loss"],
            "torch": torch.__version__,
        },
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
