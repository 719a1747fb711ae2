"""benchmarks/gpu_checks.sh on CPU with the tiny model: the one command a lent GPU machine runs.

A GPU is lent for minutes, rarely; a script broken since its last run would waste the loan. Here the
same script runs every check on CPU: train_gpu's JSON line, FSDP2 under torchrun with a checkpoint,
and the second launch resuming from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.training.test_stream_fixtures import web_shards, web_texts, web_tokenizer  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


def test_gpu_checks_script_runs_every_check_on_cpu(web_shards, tmp_path):  # noqa: F811
    config = tmp_path / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": "tiny",
                "data": {"train": [str(web_shards)], "seq_len": 32, "batch_size": 4},
                "optim": {"lr": 3e-3},
                "steps": 1,
                "device": "cpu",
                "cpu_threads": 1,
            }
        )
    )
    out = tmp_path / "out"
    env = {
        **os.environ,
        "OUT": str(out),
        "PYTHON": sys.executable,
        "SHARDS": str(web_shards),
        "MODELS": "tiny",
        "FSDP_CONFIG": str(config),
        "FSDP_STEPS": "2",
        "RUN_DIR": str(tmp_path / "fsdp"),
        "WHEELS": str(tmp_path / "no-wheels"),
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_checks.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((out / "train_tiny.log").read_text().splitlines()[-1])
    assert result["benchmark"] == "train_gpu" and result["details"]["config"] == "tiny"
    assert "world 1 (fsdp)" in (out / "fsdp_first.log").read_text()
    assert "resumed from" in (out / "fsdp_resume.log").read_text()
    steps = [
        r["step"]
        for r in map(json.loads, (out / "fsdp_metrics.jsonl").read_text().splitlines())
        if "loss" in r
    ]
    assert steps == [2, 5, 10, 12]


def test_gpu_checks_script_names_a_failed_check(tmp_path):
    out = tmp_path / "out"
    env = {
        **os.environ,
        "OUT": str(out),
        "PYTHON": sys.executable,
        "SHARDS": str(tmp_path / "none"),
        "WHEELS": "",
    }
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_checks.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1 and "no shard set at" in proc.stdout


def test_gpu_checks_script_runs_on_past_a_failed_check_and_names_it(web_shards, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    env = {
        **os.environ,
        "OUT": str(out),
        "PYTHON": sys.executable,
        "SHARDS": str(web_shards),
        "MODELS": "",
        "FSDP_CONFIG": str(tmp_path / "missing.yaml"),
        "RUN_DIR": str(tmp_path / "fsdp"),
        "WHEELS": str(tmp_path / "no-wheels"),
    }
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_checks.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1 and "failed: fsdp_first fsdp_resume" in proc.stderr
    assert "missing.yaml" in (out / "fsdp_first.log").read_text()
