"""GPT pretraining on refinery shards; one process per device, launched directly or by torchrun.

    python -m training.train training/configs/demo_tiny.yaml
    torchrun --nproc-per-node 8 -m training.train training/configs/gpt2_124m.yaml --set steps=5000

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
import json
import math
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from training import checkpoint
from training.model import CONFIGS, GPT, model_config
from training.shard_format import sha256_file
from training.stream import Source, StreamLoader, TokenStream

# Dense bf16 tensor-core peaks (FLOP/s) for MFU; the first name fragment found in the device name wins.
PEAK_BF16_FLOPS: dict[str, float] = {
    "H200": 989.5e12,
    "H100": 989.5e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
}


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="shard folder (with manifest.json) or fsspec URL")
    weight: float = Field(1.0, gt=0)


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train: list[SourceConfig] = Field(min_length=1)
    validation: list[str] | None = Field(None, description="shard sets for eval; default: the train sets")
    seq_len: int = Field(256, gt=0)
    batch_size: int = Field(8, gt=0, description="sequences per rank per micro-step")
    num_workers: int = Field(0, ge=0)
    boundaries: Literal["none", "positions", "mask"] = Field(
        "none",
        description="positions: position ids restart per document; mask: also no cross-document attention",
    )
    tokenizer: str | None = Field(None, description="tokenizer.json to check against the manifests")
    verify: Literal["size", "sha256"] = "size"
    cache_dir: str | None = None
    cache_max_gb: float = Field(20.0, gt=0)

    @field_validator("train", mode="before")
    @classmethod
    def _plain_paths(cls, value: Any) -> Any:
        """Allow `train: [path, ...]` as well as `train: [{path, weight}, ...]`."""
        if isinstance(value, str):
            value = [value]
        return [{"path": v} if isinstance(v, str) else v for v in value]


class OptimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lr: float = Field(6e-4, gt=0)
    min_lr: float = Field(6e-5, ge=0)
    warmup_steps: int = Field(10, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = Field(1.0, ge=0, description="0 disables clipping")
    grad_accum: int = Field(1, gt=0)


class TrainConfig(BaseModel):
    """A training run. Relative paths are relative to the working directory."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("tiny", description=f"one of {sorted(CONFIGS)}")
    model_overrides: dict[str, Any] = Field(default_factory=dict)
    data: DataConfig
    optim: OptimConfig = OptimConfig()
    steps: int = Field(100, gt=0, description="optimizer steps; also the length of the cosine schedule")
    eval_every: int = Field(50, ge=0, description="0: evaluate only at the end")
    eval_batches: int = Field(
        4, ge=0, description="validation batches per rank per evaluation; 0 disables eval"
    )
    checkpoint_every: int = Field(100, ge=0, description="0: only at the end")
    keep_checkpoints: int = Field(2, gt=0)
    log_every: int = Field(1, gt=0)
    out_dir: str = "runs/train"
    seed: int = 1337
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 autocast on CUDA")
    compile: Literal["auto", "on", "off"] = Field("auto", description="auto: torch.compile on CUDA only")
    parallel: Literal["ddp", "fsdp"] = "ddp"
    deterministic: bool = Field(False, description="deterministic kernels (bit-exact resume tests)")
    cpu_threads: int = Field(0, ge=0, description="torch intra-op threads on CPU; 0 keeps torch's default")
    progress: bool = True
    peak_flops: float | None = Field(
        None, gt=0, description="device peak FLOP/s for MFU; default from a table"
    )

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in CONFIGS:
            raise ValueError(f"unknown model {value!r}; choose one of {sorted(CONFIGS)}")
        return value


def load_config(path: str | os.PathLike[str], overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config and apply `a.b=value` overrides (values parsed as YAML)."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not of the form key.sub=value")
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"invalid training config {path}:\n{exc}") from exc


# ------------------------------------------------------------------------------------------------ setup
class Dist:
    """This process's place in the job: rank, world size, device; torchrun's environment when present."""

    def __init__(self, device_pref: str) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", 1))
        self.rank = int(os.environ.get("RANK", 0))
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        use_cuda = device_pref == "cuda" or (device_pref == "auto" and torch.cuda.is_available())
        if use_cuda and not torch.cuda.is_available():
            raise RuntimeError("device: cuda was asked for but CUDA is not available")
        self.device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
        if use_cuda:
            torch.cuda.set_device(self.device)
        if self.world_size > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=timedelta(minutes=10))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def mean(self, value: float) -> float:
        if self.world_size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.item() / self.world_size

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def build_streams(cfg: TrainConfig, world_size: int) -> tuple[TokenStream, TokenStream | None]:
    d = cfg.data
    common = {
        "seq_len": d.seq_len,
        "batch_size": d.batch_size,
        "seed": cfg.seed,
        "boundaries": d.boundaries != "none",
        "verify": d.verify,
        "cache_dir": d.cache_dir,
        "cache_max_bytes": int(d.cache_max_gb * 2**30),
    }
    train = TokenStream([Source(s.path, s.weight) for s in d.train], split="train", **common)
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
            print(f"warning: evaluation disabled: {exc}", file=sys.stderr)
            val = None
        if val is not None and val.manifest.tokenizer_sha256 != train.manifest.tokenizer_sha256:
            raise ValueError("the validation shards were built with another tokenizer than the train shards")
    return train, val


def check_tokenizer(cfg: TrainConfig, stream: TokenStream) -> None:
    """A tokenizer named in the config must be the one the shards were built with."""
    if cfg.data.tokenizer is None:
        return
    path = Path(cfg.data.tokenizer)
    if not path.is_file():
        raise FileNotFoundError(f"data.tokenizer: {path} does not exist")
    digest = sha256_file(path)
    for s in stream.sets:
        if s.manifest.tokenizer_sha256 != digest:
            raise ValueError(
                f"tokenizer mismatch: {path} (sha256 {digest[:12]}) is not the tokenizer the shards in "
                f"{s.location} were built with ({s.manifest.tokenizer_path}, sha256 "
                f"{s.manifest.tokenizer_sha256[:12]}); use that tokenizer or rebuild the shards"
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


def wrap_model(model: GPT, cfg: TrainConfig, env: Dist, use_compile: bool) -> torch.nn.Module:
    """FSDP2 (shard each block, then the root) or DDP across ranks; compile in place so state keys stay clean."""
    if use_compile:
        model.compile()
    if env.world_size == 1:
        return model
    if cfg.parallel == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mp = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if env.cuda else None
        )
        kwargs = {"mp_policy": mp} if mp else {}
        for block in model.blocks:
            fully_shard(block, **kwargs)
        return fully_shard(model, **kwargs)
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[env.device.index] if env.cuda else None)


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


def grad_sync(model: torch.nn.Module, enabled: bool):
    """Skip the gradient all-reduce on accumulation micro-steps (DDP no_sync, FSDP2 requires_gradient_sync)."""
    if hasattr(model, "set_requires_gradient_sync"):
        model.set_requires_gradient_sync(enabled)
        return contextlib.nullcontext()
    if not enabled and hasattr(model, "no_sync"):
        return model.no_sync()
    return contextlib.nullcontext()


def peak_flops(cfg: TrainConfig, env: Dist) -> float | None:
    if cfg.peak_flops:
        return cfg.peak_flops
    if not env.cuda:
        return None
    name = torch.cuda.get_device_name(env.device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


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


class Metrics:
    """metrics.jsonl on rank 0: one JSON object per logged step or evaluation."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    def rewind(self, step: int) -> None:
        """Keep only records up to `step`, the checkpoint a resumed run restarts from.

        A process killed between checkpoints has logged steps that the resumed run trains
        again; without this they would appear twice. A line cut short by the kill goes too.
        """
        if not self.enabled or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("step", 0) <= step:
                kept.append(line + "\n")
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, self.path)


def _fault_after_step(step: int) -> None:
    """Fault injection for the kill-resume test: REFINERY_TRAIN_FAULT=after_step:N SIGKILLs the
    process once step N is logged, a real kill between checkpoints rather than a clean stop."""
    if os.environ.get("REFINERY_TRAIN_FAULT") == f"after_step:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


def _progress(enabled: bool, total: int, start: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        disable=not enabled,
    )
    task = progress.add_task("train", total=total, completed=start, info="")
    return progress, task


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
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
    if cfg.cpu_threads and not env.cuda:
        torch.set_num_threads(cfg.cpu_threads)
    out = Path(cfg.out_dir)
    train_stream, val_stream = build_streams(cfg, env.world_size)
    check_tokenizer(cfg, train_stream)
    raw = build_model(cfg, train_stream.manifest.vocab_size).to(env.device)
    use_compile = cfg.compile == "on" or (cfg.compile == "auto" and env.cuda)
    model = wrap_model(raw, cfg, env, use_compile)
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and env.cuda)
    amp = (lambda: torch.autocast(env.device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    o = cfg.optim
    optimizer = raw.configure_optimizer(o.lr, o.weight_decay, o.betas, fused=env.cuda)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    loader = StreamLoader(train_stream, num_workers=cfg.data.num_workers, pin_memory=env.cuda)

    step = 0
    ckpt_dir = out / "checkpoints"
    if (found := checkpoint.latest(ckpt_dir)) is not None:
        state = checkpoint.load(found, model, optimizer)
        scheduler.load_state_dict(state["scheduler"])
        loader.load_state_dict(state["loader"])
        step = state["step"]
        if env.is_main:
            consumed = state["loader"]["samples_consumed"]
            print(f"resumed from {found} at step {step}, {consumed} samples consumed")
            if step >= cfg.steps:
                print(
                    f"already at step {step} of {cfg.steps}: nothing to do (raise steps, or start over with --fresh)"
                )

    metrics = Metrics(out / "metrics.jsonl", env.is_main)
    metrics.rewind(step)
    tokens_per_step = env.world_size * cfg.data.batch_size * cfg.data.seq_len * o.grad_accum
    flops_per_token = raw.flops_per_token(cfg.data.seq_len)
    peak = peak_flops(cfg, env)
    if env.is_main:
        print(
            f"model {cfg.model}: {raw.num_params() / 1e6:.2f}M params | world {env.world_size} | "
            f"{tokens_per_step:,} tokens/step | device {env.device} | bf16 {bf16} | compile {use_compile}"
        )
    last: dict[str, Any] = {}
    batches: Iterator[dict[str, torch.Tensor]] = iter(loader)
    progress, task = _progress(cfg.progress and env.is_main, cfg.steps, step)
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    t_log, wait_log, steps_log, loss_sum = time.perf_counter(), loader.wait_seconds, 0, 0.0
    with progress:
        while step < end:
            for micro in range(o.grad_accum):
                with grad_sync(model, micro == o.grad_accum - 1):
                    loss = forward_loss(model, next(batches), cfg, env, amp)
                    (loss / o.grad_accum).backward()
                loss_sum += loss.detach().float() / o.grad_accum
            grad_norm = (
                torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip) if o.grad_clip > 0 else None
            )
            lr = scheduler.get_last_lr()[0]  # the rate this step used
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            steps_log += 1
            progress.update(task, completed=step)
            if step % cfg.log_every == 0 or step == end:
                loss_value = env.mean(loss_sum.item() / steps_log)
                if env.cuda:
                    torch.cuda.synchronize()
                elapsed = time.perf_counter() - t_log
                tok_s = tokens_per_step * steps_log / elapsed
                last = {
                    "step": step,
                    "loss": loss_value,
                    "lr": lr,
                    "grad_norm": float(grad_norm) if grad_norm is not None else None,
                    "tokens_per_s": tok_s,
                    "mfu": flops_per_token * tok_s / (peak * env.world_size) if peak else None,
                    "data_wait": (loader.wait_seconds - wait_log) / elapsed,
                    "tokens": step * tokens_per_step,
                    "time": time.time(),
                }
                metrics.write(last)
                _fault_after_step(step)
                progress.update(task, info=f"loss {loss_value:.4f}")
                if env.is_main:
                    mfu = f" | mfu {last['mfu']:.1%}" if last["mfu"] is not None else ""
                    progress.console.print(
                        f"step {step:>6}/{cfg.steps} | loss {loss_value:.4f} | lr {last['lr']:.2e} | "
                        f"{tok_s:,.0f} tok/s{mfu} | data wait {last['data_wait']:.1%}"
                    )
                t_log, wait_log, steps_log, loss_sum = time.perf_counter(), loader.wait_seconds, 0, 0.0
            if val_stream is not None and (
                step == cfg.steps or (cfg.eval_every and step % cfg.eval_every == 0)
            ):
                val_loss = evaluate(model, val_stream, cfg, env, amp)
                last["val_loss"] = val_loss
                metrics.write({"step": step, "val_loss": val_loss, "time": time.time()})
                if env.is_main:
                    progress.console.print(f"step {step:>6}/{cfg.steps} | val loss {val_loss:.4f}")
            if step == end or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
                checkpoint.save(
                    ckpt_dir,
                    step,
                    model,
                    optimizer,
                    {
                        "scheduler": scheduler.state_dict(),
                        "loader": loader.state_dict(),
                        "config": cfg.model_dump(mode="json"),
                    },
                    keep=cfg.keep_checkpoints,
                )
    return last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
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
