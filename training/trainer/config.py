"""The training run's configuration: data, optimizer and run settings, validated; YAML with overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.framework.validation import field_problems
from training.trainer.model import CONFIGS


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="shard folder (with manifest.json) or URL (s3://, gs://, az://, https://)")
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

    @field_validator("compile", mode="before")
    @classmethod
    def _yaml_switch(cls, value: Any) -> Any:
        """YAML reads a bare `on`/`off` (in a file or a `--set`) as a boolean; take it as the word meant."""
        if isinstance(value, bool):
            return "on" if value else "off"
        return value

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in CONFIGS:
            raise ValueError(f"unknown model {value!r}; choose one of {sorted(CONFIGS)}")
        return value

    def stream_options(self) -> dict[str, Any]:
        """TokenStream's settings for this run, shared by the train and validation streams."""
        d = self.data
        return {
            "seq_len": d.seq_len,
            "batch_size": d.batch_size,
            "seed": self.seed,
            "boundaries": d.boundaries != "none",
            "verify": d.verify,
            "cache_dir": d.cache_dir,
            "cache_max_bytes": int(d.cache_max_gb * 2**30),
        }


def cli_settings(shards: list[str] | None, overrides: list[str] | None) -> list[str]:
    """`--set` overrides plus `--shards` (which replace both data.train and data.validation)."""
    sets = list(overrides or [])
    if shards:
        sets += [f"data.train={list(shards)}", f"data.validation={list(shards)}"]
    return sets


def load_config(path: str | os.PathLike[str], overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config and apply `a.b=value` overrides (values parsed as YAML)."""
    raw = _yaml(Path(path).read_text(encoding="utf-8"), str(path)) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a training config is a mapping of settings, not a {type(raw).__name__}")
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not of the form key.sub=value")
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ValueError(f"override {item!r}: {key.rsplit('.', 1)[0]} is a value, not a section")
        node[leaf] = _yaml(value, f"override {item!r}")
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"invalid training config {path}: {field_problems(exc)}") from exc


def _yaml(text: str, source: str) -> Any:
    """YAML, with a syntax error (or nesting past the parser's stack) as a ValueError naming `source`."""
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        raise ValueError(f"{source}: not valid YAML: {exc}") from None
