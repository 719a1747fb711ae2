"""GPT pretraining on refinery shards; one process per device, launched directly or by torchrun.

    python -m training.trainer.train training/configs/demo_tiny.yaml
    torchrun --nproc-per-node 8 -m training.trainer.train training/configs/gpt2_124m.yaml --set steps=5000

The loop is nanoGPT's (a function, not a framework): micro-batches with gradient
accumulation, clipping, AdamW, warmup + cosine learning rate, periodic evaluation on the
validation split, atomic checkpoints and `metrics.jsonl`. Under torchrun it runs DDP
(NCCL on GPU, gloo on CPU) or FSDP2; on CUDA it adds bf16 autocast, torch.compile and fused
AdamW. The data comes from `TokenStream`, whose state is saved with the checkpoint, so a
resumed run continues with the very next sample, also on another number of ranks.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.loader.stream import Source, StreamLoader, TokenStream
from training.shards.format import MANIFEST_NAME, sha256_file
from training.trainer import checkpoint
from training.trainer.config import TrainConfig, load_config
from training.trainer.distributed import Dist, grad_sync, wrap_model
from training.trainer.metrics import Metrics, ProgressBar, peak_flops
from training.trainer.model import GPT, model_config


# ------------------------------------------------------------------------------------------------ setup
def train_stream(cfg: TrainConfig) -> TokenStream:
    """The training stream as the trainer builds it (`refinery trace` rebuilds it to replay a step's order)."""
    return TokenStream(
        [Source(s.path, s.weight) for s in cfg.data.train], split="train", **cfg.stream_options()
    )


def build_streams(cfg: TrainConfig, world_size: int) -> tuple[TokenStream, TokenStream | None]:
    d, common = cfg.data, cfg.stream_options()
    train = train_stream(cfg)
    val = None
    if cfg.eval_batches:
        val_paths = d.validation or [s.path for s in d.train]
        try:
            val = TokenStream(
                val_paths,
                split="validation",
                max_samples=cfg.eval_batches * world_size * d.batch_size,
                **common,
            )
        except ValueError as exc:  # no validation split, or too short for one window
            from pipelines.framework.terminal_text import for_terminal  # the message quotes manifest paths

            print(for_terminal(f"warning: evaluation disabled: {exc}"), file=sys.stderr)
            val = None
        if val is not None and val.manifest.tokenizer_sha256 != train.manifest.tokenizer_sha256:
            raise ValueError("the validation shards were built with another tokenizer than the train shards")
    return train, val


def check_tokenizer(cfg: TrainConfig, stream: TokenStream) -> None:
    """A tokenizer named in the config must be the one the shards were built with, and no manifest may
    claim fewer ids than it has: the model is sized from the manifest, so an edited vocab_size would put
    the tokenizer's ids past the embedding."""
    from training.tokenizer.load import load_tokenizer  # only with data.tokenizer: keeps start-up light

    if cfg.data.tokenizer is None:
        return
    path = Path(cfg.data.tokenizer)
    vocab = load_tokenizer(path).get_vocab_size(with_added_tokens=True)  # says what is wrong with the path
    digest = sha256_file(path)
    for s in stream.sets:
        if s.manifest.tokenizer_sha256 != digest:
            raise ValueError(
                f"tokenizer mismatch: {path} (sha256 {digest[:12]}) is not the tokenizer the shards in "
                f"{s.location} were built with ({s.manifest.tokenizer_path}, sha256 "
                f"{s.manifest.tokenizer_sha256[:12]}); use that tokenizer or rebuild the shards"
            )
        if s.manifest.vocab_size < vocab:
            raise ValueError(
                f"{s.location / MANIFEST_NAME} says vocab_size {s.manifest.vocab_size}, but its tokenizer {path} "
                f"has {vocab} ids; run `refinery shards verify {s.location}`, then restore or rebuild the set"
            )


def build_model(cfg: TrainConfig, manifest_vocab: int) -> GPT:
    overrides = {"block_size": cfg.data.seq_len, **cfg.model_overrides}
    vocab = overrides.setdefault("vocab_size", 64 * math.ceil(manifest_vocab / 64))
    if vocab < manifest_vocab:
        raise ValueError(
            f"model_overrides.vocab_size {vocab} is smaller than the shards' vocabulary ({manifest_vocab} ids)"
        )
    if overrides["block_size"] < cfg.data.seq_len:
        raise ValueError(f"model block_size {overrides['block_size']} < data.seq_len {cfg.data.seq_len}")
    return GPT(model_config(cfg.model, **overrides))


def lr_lambda(cfg: TrainConfig):
    """Multiplier of the peak lr: linear warmup, then cosine decay to min_lr at the last step."""
    o = cfg.optim

    def factor(step: int) -> float:
        if step < o.warmup_steps:
            return (step + 1) / (o.warmup_steps + 1)
        progress = min(1.0, (step - o.warmup_steps) / max(1, cfg.steps - o.warmup_steps))
        floor = o.min_lr / o.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


# ------------------------------------------------------------------------------------------- the loop
def forward_loss(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], cfg: TrainConfig, env: Dist, amp
) -> Any:
    x = batch["input_ids"].to(env.device, non_blocking=True)
    y = batch["labels"].to(env.device, non_blocking=True)
    extra = {}
    if cfg.data.boundaries != "none":
        extra["position_ids"] = batch["position_ids"].to(env.device, non_blocking=True)
    if cfg.data.boundaries == "mask":
        extra["doc_ids"] = batch["doc_ids"].to(env.device, non_blocking=True)
    with amp():
        _, loss = model(x, y, **extra)
    return loss


@torch.no_grad()
def evaluate(model: torch.nn.Module, val: TokenStream, cfg: TrainConfig, env: Dist, amp) -> float:
    """Mean loss over the same fixed validation batches every time (the first ones of the val order)."""
    model.eval()
    val.samples_consumed = 0
    losses = [forward_loss(model, b, cfg, env, amp).item() for b in StreamLoader(val)]
    model.train()
    return env.mean(sum(losses) / max(1, len(losses)))


def _fault_after_step(step: int) -> None:
    """Fault injection for the kill-resume test: REFINERY_TRAIN_FAULT=after_step:N SIGKILLs the
    process once step N is logged, a real kill between checkpoints rather than a clean stop."""
    if os.environ.get("REFINERY_TRAIN_FAULT") == f"after_step:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Run:
    """Everything one training process holds: the model (raw and wrapped), optimizer, schedule and data."""

    cfg: TrainConfig
    env: Dist
    raw: GPT
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    loader: StreamLoader
    val: TokenStream | None
    amp: Callable[[], Any]
    bf16: bool
    use_compile: bool

    @property
    def ckpt_dir(self) -> Path:
        return Path(self.cfg.out_dir) / "checkpoints"

    @property
    def tokens_per_step(self) -> int:
        d = self.cfg.data
        return self.env.world_size * d.batch_size * d.seq_len * self.cfg.optim.grad_accum


@dataclass
class Window:
    """The steps since the last log line: their summed loss and when they began (wall and data wait)."""

    wait_start: float
    steps: int = 0
    loss_sum: Any = 0.0  # a tensor on the device once a step has run (no sync per step)
    start: float = field(default_factory=time.perf_counter)
    paused: float = 0.0  # seconds of evaluation and checkpointing, which are not training throughput

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        """Leave the enclosed work out of this window's tokens/s, MFU and data-wait fraction."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self.paused += time.perf_counter() - began


def train(cfg: TrainConfig, stop_after: int | None = None, fresh: bool = False) -> dict[str, Any]:
    """Run (or resume) training; returns the last logged metrics.

    `stop_after` ends early (as if killed; rerun to resume); `fresh` discards the checkpoints and
    metrics of an earlier run in out_dir instead of resuming from them.
    """
    if fresh and int(os.environ.get("RANK", 0)) == 0:
        shutil.rmtree(Path(cfg.out_dir) / "checkpoints", ignore_errors=True)
        (Path(cfg.out_dir) / "metrics.jsonl").unlink(missing_ok=True)
    env = Dist(cfg.device)
    try:
        return _train(cfg, env, stop_after)
    finally:
        env.close()


def _train(cfg: TrainConfig, env: Dist, stop_after: int | None) -> dict[str, Any]:
    _seed(cfg, env)
    run = _setup(cfg, env)
    step = _resume(run)
    metrics = Metrics(Path(cfg.out_dir) / "metrics.jsonl", env.is_main)
    metrics.rewind(step)
    if env.is_main:
        print(
            f"model {cfg.model}: {run.raw.num_params() / 1e6:.2f}M params | world {env.world_size} "
            f"({cfg.parallel if env.distributed else 'one process'}) | "
            f"{run.tokens_per_step:,} tokens/step | device {env.device} | bf16 {run.bf16} | "
            f"compile {run.use_compile}"
        )
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    return _loop(run, metrics, step, end)


def _seed(cfg: TrainConfig, env: Dist) -> None:
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
    if cfg.cpu_threads and not env.cuda:
        torch.set_num_threads(cfg.cpu_threads)


def _setup(cfg: TrainConfig, env: Dist) -> Run:
    """Streams, model, optimizer and schedule, built in a fixed order (the RNG draws must not move)."""
    stream, val_stream = build_streams(cfg, env.world_size)
    check_tokenizer(cfg, stream)
    raw = build_model(cfg, stream.manifest.vocab_size).to(env.device)
    use_compile = cfg.compile == "on" or (cfg.compile == "auto" and env.cuda)
    model = wrap_model(raw, cfg, env, use_compile)
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and env.cuda)
    amp = (lambda: torch.autocast(env.device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    o = cfg.optim
    optimizer = raw.configure_optimizer(o.lr, o.weight_decay, o.betas, fused=env.cuda)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    loader = StreamLoader(stream, num_workers=cfg.data.num_workers, pin_memory=env.cuda)
    return Run(cfg, env, raw, model, optimizer, scheduler, loader, val_stream, amp, bf16, use_compile)


def _resume(run: Run) -> int:
    """The step of the latest checkpoint, with model, optimizer, schedule and loader restored; 0 if none."""
    found = checkpoint.latest(run.ckpt_dir)
    if found is None:
        return 0
    state = checkpoint.load(found, run.model, run.optimizer)
    run.scheduler.load_state_dict(state["scheduler"])
    run.loader.load_state_dict(state["loader"])
    step = state["step"]
    if run.env.is_main:
        consumed = state["loader"]["samples_consumed"]
        print(f"resumed from {found} at step {step}, {consumed} samples consumed")
        if step >= run.cfg.steps:
            print(
                f"already at step {step} of {run.cfg.steps}: nothing to do (raise steps, or start over with --fresh)"
            )
    return step


def _loop(run: Run, metrics: Metrics, step: int, end: int) -> dict[str, Any]:
    """Optimizer steps from `step` to `end`, logging, evaluating and checkpointing as configured."""
    cfg = run.cfg
    last: dict[str, Any] = {}
    batches: Iterator[dict[str, torch.Tensor]] = iter(run.loader)
    window = Window(run.loader.wait_seconds)
    with ProgressBar(cfg.progress and run.env.is_main, cfg.steps, step) as bar:
        while step < end:
            grad_norm, lr = _optimizer_step(run, batches, window)
            step += 1
            bar.update(completed=step)
            if step % cfg.log_every == 0 or step == end:
                last = _log_step(run, metrics, bar, window, step, lr, grad_norm)
                window = Window(run.loader.wait_seconds)
            with window.pause():
                if run.val is not None and (
                    step == cfg.steps or (cfg.eval_every and step % cfg.eval_every == 0)
                ):
                    last["val_loss"] = _evaluate_step(run, metrics, bar, step)
                if step == end or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
                    _save(run, step)
    return last


def _optimizer_step(
    run: Run, batches: Iterator[dict[str, torch.Tensor]], window: Window
) -> tuple[torch.Tensor | None, float]:
    """One optimizer step over `grad_accum` micro-batches; returns the gradient norm and the lr it used."""
    model, o = run.model, run.cfg.optim
    for micro in range(o.grad_accum):
        with grad_sync(model, micro == o.grad_accum - 1):
            loss = forward_loss(model, next(batches), run.cfg, run.env, run.amp)
            (loss / o.grad_accum).backward()
        window.loss_sum += loss.detach().float() / o.grad_accum
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip) if o.grad_clip > 0 else None
    lr = run.scheduler.get_last_lr()[0]  # the rate this step used
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    window.steps += 1
    return grad_norm, lr


def _log_step(
    run: Run,
    metrics: Metrics,
    bar: ProgressBar,
    window: Window,
    step: int,
    lr: float,
    grad_norm: torch.Tensor | None,
) -> dict[str, Any]:
    """The metrics record of the steps since the last one: written, printed on rank 0, and returned."""
    env = run.env
    loss_value = env.mean(window.loss_sum.item() / window.steps)
    if env.cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - window.start - window.paused
    tok_s = run.tokens_per_step * window.steps / elapsed
    peak = peak_flops(run.cfg.peak_flops, env.device)
    record = {
        "step": step,
        "loss": loss_value,
        "lr": lr,
        "grad_norm": float(grad_norm) if grad_norm is not None else None,
        "tokens_per_s": tok_s,
        "mfu": run.raw.flops_per_token(run.cfg.data.seq_len) * tok_s / (peak * env.world_size)
        if peak
        else None,
        "data_wait": (run.loader.wait_seconds - window.wait_start) / elapsed,
        "tokens": step * run.tokens_per_step,
        "time": time.time(),
    }
    metrics.write(record)
    _fault_after_step(step)
    bar.update(info=f"loss {loss_value:.4f}")
    if env.is_main:
        mfu = f" | mfu {record['mfu']:.1%}" if record["mfu"] is not None else ""
        bar.print(
            f"step {step:>6}/{run.cfg.steps} | loss {loss_value:.4f} | lr {lr:.2e} | "
            f"{tok_s:,.0f} tok/s{mfu} | data wait {record['data_wait']:.1%}"
        )
    return record


def _evaluate_step(run: Run, metrics: Metrics, bar: ProgressBar, step: int) -> float:
    """Validation loss at `step`, written to the metrics and printed on rank 0."""
    val_loss = evaluate(run.model, run.val, run.cfg, run.env, run.amp)
    metrics.write({"step": step, "val_loss": val_loss, "time": time.time()})
    if run.env.is_main:
        bar.print(f"step {step:>6}/{run.cfg.steps} | val loss {val_loss:.4f}")
    return val_loss


def _save(run: Run, step: int) -> None:
    extra = {
        "scheduler": run.scheduler.state_dict(),
        "loader": run.loader.state_dict(),
        "config": run.cfg.model_dump(mode="json"),
    }
    checkpoint.save(run.ckpt_dir, step, run.model, run.optimizer, extra, keep=run.cfg.keep_checkpoints)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.trainer.train", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("config", help="training config YAML")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override key.sub=value")
    parser.add_argument("--stop-after", type=int, default=None, help="stop after this step (resume later)")
    parser.add_argument("--fresh", action="store_true", help="discard earlier checkpoints in out_dir")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    train(cfg, stop_after=args.stop_after, fresh=args.fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
