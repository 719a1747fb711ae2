# ruff: noqa: F811  (fixtures imported from the fixtures module are re-bound as arguments)
"""The trainer: bit-exact resume, accumulation, DDP under torchrun, clear errors, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from tests.training.test_stream_fixtures import web_shards, web_texts, web_tokenizer  # noqa: F401
from training.trainer import checkpoint
from training.trainer.cli import app
from training.trainer.config import TrainConfig, load_config
from training.trainer.train import train

REPO = Path(__file__).resolve().parents[2]


def _config(shards: Path, out: Path, **overrides) -> TrainConfig:
    raw = {
        "model": "tiny",
        "model_overrides": {"dropout": 0.1},  # dropout draws random numbers: resume must restore the RNG
        "data": {"train": [str(shards)], "seq_len": 32, "batch_size": 4},
        "optim": {"lr": 3e-3, "warmup_steps": 2},
        "steps": 6,
        "eval_every": 3,
        "eval_batches": 2,
        "checkpoint_every": 3,
        "out_dir": str(out),
        "device": "cpu",
        "deterministic": True,
        "cpu_threads": 1,
        "progress": False,
    }
    for key, value in overrides.items():
        node = raw
        *parents, leaf = key.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return TrainConfig.model_validate(raw)


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _losses(out: Path) -> dict[int, float]:
    return {m["step"]: m["loss"] for m in _metrics(out) if "loss" in m}


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_resume_after_a_kill_is_bit_exact(web_shards, tmp_path):
    straight = tmp_path / "straight"
    last = train(_config(web_shards, straight))
    assert last["step"] == 6 and "val_loss" in last
    resumed = tmp_path / "resumed"
    train(_config(web_shards, resumed), stop_after=4)  # killed after step 4 (checkpoints at 3 and 4)
    shutil.copytree(resumed / "checkpoints" / "step_00000004", resumed / "checkpoints" / ".tmp-step_00000005")
    (resumed / "checkpoints" / ".tmp-step_00000005" / "trainer.pt").unlink()  # a half-written save
    assert checkpoint.latest(resumed / "checkpoints").name == "step_00000004"
    train(_config(web_shards, resumed))
    a, b = _losses(straight), _losses(resumed)
    assert [a[s] for s in (5, 6)] == [b[s] for s in (5, 6)]  # float equality: bit for bit
    state_a = torch.load(straight / "checkpoints" / "step_00000006" / "model.pt", weights_only=True)
    state_b = torch.load(resumed / "checkpoints" / "step_00000006" / "model.pt", weights_only=True)
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    trainer_state = torch.load(resumed / "checkpoints" / "step_00000006" / "trainer.pt", weights_only=False)
    assert trainer_state["loader"]["samples_consumed"] == 6 * 4
    assert sorted(p.name for p in (resumed / "checkpoints").iterdir()) == [
        "latest",
        "step_00000004",
        "step_00000006",
    ]
    record = _metrics(straight)[0]
    assert {"loss", "lr", "tokens_per_s", "mfu", "data_wait", "grad_norm"} <= set(record)


def test_sigkill_between_checkpoints_resumes_bit_exact_without_duplicate_steps(web_shards, tmp_path):
    """A real SIGKILL after step 5 (checkpoint at 3): steps 4-5 are trained again, logged once."""
    straight = tmp_path / "straight"
    train(_config(web_shards, straight))
    killed = tmp_path / "killed"
    cfg = tmp_path / "killed.yaml"
    cfg.write_text(yaml.safe_dump(_config(web_shards, killed).model_dump(mode="json")))
    env = {**os.environ, "PYTHONPATH": str(REPO), "REFINERY_TRAIN_FAULT": "after_step:5"}
    proc = subprocess.run(
        [sys.executable, "-m", "training.trainer.train", str(cfg)],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=240,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert checkpoint.latest(killed / "checkpoints").name == "step_00000003"
    assert [m["step"] for m in _metrics(killed) if "loss" in m] == [
        1,
        2,
        3,
        4,
        5,
    ]  # logged past the checkpoint

    train(load_config(cfg))
    steps = [m["step"] for m in _metrics(killed) if "loss" in m]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert [m["step"] for m in _metrics(killed) if "val_loss" in m] == [3, 6]
    assert _losses(killed) == _losses(straight)  # float equality: bit for bit
    state_a = torch.load(straight / "checkpoints" / "step_00000006" / "model.pt", weights_only=True)
    state_b = torch.load(killed / "checkpoints" / "step_00000006" / "model.pt", weights_only=True)
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_accumulation_matches_a_larger_batch(web_shards, tmp_path):
    """2 micro-batches of 4 read the same 8 samples as one batch of 8, so the first loss is the same."""
    one = train(_config(web_shards, tmp_path / "one", data__batch_size=8, steps=1, model_overrides={}))
    two = train(
        _config(
            web_shards, tmp_path / "two", optim__grad_accum=2, steps=1, model_overrides={}, eval_batches=0
        )
    )
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)


def test_clear_errors_for_tokenizer_mismatch_and_missing_shard(web_shards, tmp_path, web_tokenizer):
    other = tmp_path / "other.json"
    other.write_text(web_tokenizer.read_text().replace("<|endoftext|>", "<|eos|>"))
    with pytest.raises(ValueError, match="tokenizer mismatch"):
        train(_config(web_shards, tmp_path / "a", data__tokenizer=str(other)))
    train(_config(web_shards, tmp_path / "b", data__tokenizer=str(web_tokenizer), steps=1, eval_batches=0))
    broken = tmp_path / "broken"
    shutil.copytree(web_shards, broken)
    (broken / "train" / "part-00001.ds").unlink()
    with pytest.raises(Exception, match="part-00001.ds is missing"):
        train(_config(broken, tmp_path / "c", data__batch_size=32))
    with pytest.raises(ValueError, match="steps"):
        cfg = tmp_path / "bad.yaml"
        cfg.write_text(yaml.safe_dump({"data": {"train": ["x"]}, "steps": -1}))
        load_config(cfg)


def test_cli_trains_the_demo_config(web_shards, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            str(REPO / "training" / "configs" / "demo_tiny.yaml"),
            "--shards",
            str(web_shards),
            "--steps",
            "3",
            "--out",
            str(tmp_path / "demo"),
            "--set",
            "progress=false",
            "--set",
            "data.seq_len=32",
            "--set",
            "data.tokenizer=null",  # the demo config checks samples/tokenizer.json; these shards use another
            "--fresh",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "loss" in result.output
    assert sorted(_losses(tmp_path / "demo")) == [3]


def _torchrun(cfg: Path, nproc: int) -> subprocess.CompletedProcess:
    """The trainer launched as users launch it on a node: torchrun, `nproc` processes (gloo on CPU)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    proc = subprocess.run(
        [*cmd, "-m", "training.trainer.train", str(cfg)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _config_file(shards: Path, out: Path, **overrides) -> Path:
    """A three-step config without evaluation, as a YAML file for torchrun."""
    raw = _config(shards, out, steps=3, eval_every=0, checkpoint_every=0, model_overrides={}, **overrides)
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(raw.model_dump(mode="json")))
    return path


def test_ddp_two_processes_on_gloo_then_resume_on_one(web_shards, tmp_path):
    cfg = _config_file(web_shards, tmp_path / "ddp")
    _torchrun(cfg, 2)
    state = torch.load(tmp_path / "ddp" / "checkpoints" / "step_00000003" / "trainer.pt", weights_only=False)
    assert state["loader"]["samples_consumed"] == 3 * 2 * 4  # steps x ranks x batch
    assert (tmp_path / "ddp" / "checkpoints" / "step_00000003" / "rng_rank1.pt").is_file()
    # Two ranks of 4 with averaged gradients train on the same 8 samples per step as one process with 8.
    single = tmp_path / "single"
    train(_config(web_shards, single, steps=3, eval_every=0, data__batch_size=8, model_overrides={}))
    ddp_losses, single_losses = _losses(tmp_path / "ddp"), _losses(single)
    assert sorted(ddp_losses) == sorted(single_losses) == [1, 2, 3]
    assert [ddp_losses[s] for s in (1, 2, 3)] == pytest.approx(
        [single_losses[s] for s in (1, 2, 3)], rel=1e-4
    )
    state_ddp = torch.load(tmp_path / "ddp" / "checkpoints" / "step_00000003" / "model.pt", weights_only=True)
    state_one = torch.load(single / "checkpoints" / "step_00000003" / "model.pt", weights_only=True)
    assert state_ddp.keys() == state_one.keys()
    assert all(torch.allclose(state_ddp[k], state_one[k], rtol=1e-4, atol=1e-6) for k in state_one)
    last = train(load_config(cfg, ["steps=5"]))  # elastic: continue on one process
    assert last["step"] == 5
    state = torch.load(tmp_path / "ddp" / "checkpoints" / "step_00000005" / "trainer.pt", weights_only=False)
    assert state["loader"]["samples_consumed"] == 3 * 2 * 4 + 2 * 4
    assert sorted(_losses(tmp_path / "ddp")) == [1, 2, 3, 4, 5]


def test_fsdp_under_torchrun_with_one_process_matches_a_plain_run_and_resumes_without_torchrun(
    web_shards, tmp_path
):
    """torchrun at any size runs the distributed path (here FSDP2), and its checkpoint resumes anywhere."""
    cfg = _config_file(web_shards, tmp_path / "fsdp", parallel="fsdp")
    proc = _torchrun(cfg, 1)
    assert "world 1 (fsdp)" in proc.stdout
    single = tmp_path / "single"
    train(_config(web_shards, single, steps=3, eval_every=0, model_overrides={}))
    fsdp_losses, single_losses = _losses(tmp_path / "fsdp"), _losses(single)
    assert sorted(fsdp_losses) == [1, 2, 3]
    assert [fsdp_losses[s] for s in (1, 2, 3)] == pytest.approx(
        [single_losses[s] for s in (1, 2, 3)], rel=1e-4
    )
    state_fsdp = torch.load(
        tmp_path / "fsdp" / "checkpoints" / "step_00000003" / "model.pt", weights_only=True
    )
    state_one = torch.load(single / "checkpoints" / "step_00000003" / "model.pt", weights_only=True)
    assert state_fsdp.keys() == state_one.keys()
    assert all(torch.allclose(state_fsdp[k], state_one[k], rtol=1e-4, atol=1e-6) for k in state_one)
    last = train(load_config(cfg, ["steps=5"]))
    assert last["step"] == 5 and sorted(_losses(tmp_path / "fsdp")) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("path", sorted((REPO / "training" / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    cfg = load_config(path)
    assert cfg.data.train and cfg.steps > 0


def test_compile_on_and_off_survive_yaml_booleans():
    """YAML 1.1 reads a bare on/off as true/false: `--set compile=off` must still mean off."""
    path = REPO / "training" / "configs" / "demo_tiny.yaml"
    assert load_config(path, ["compile=off"]).compile == "off"
    assert load_config(path, ["compile=on"]).compile == "on"
    with pytest.raises(ValueError, match="compile"):
        load_config(path, ["compile=sometimes"])


def test_evaluation_and_checkpoints_are_left_out_of_the_throughput_window(monkeypatch):
    """tokens/s and MFU measure training: the seconds spent in a pause do not count."""
    from training.trainer import train as train_module

    clock = iter([12.0, 17.0, 18.0, 18.5])  # pause in/out, pause in/out
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: next(clock))
    window = train_module.Window(wait_start=0.0, start=10.0)
    with window.pause():
        pass
    with pytest.raises(RuntimeError), window.pause():
        raise RuntimeError("a failed checkpoint still ends its pause")
    assert window.paused == 5.5
