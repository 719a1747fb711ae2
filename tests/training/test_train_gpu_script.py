"""benchmarks.train_gpu on CPU with the tiny config: the same one-command path the GPU run takes."""

from __future__ import annotations

import json

import torch

from benchmarks import train_gpu


def test_train_gpu_script_runs_on_cpu_and_reports_json(shared_data, capsys):
    threads = torch.get_num_threads()
    try:
        result = train_gpu.main(
            ["--config", "tiny", "--steps", "4", "--workers", "0"]
        )  # builds its own shards
    finally:
        torch.set_num_threads(threads)
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last_line) == result
    assert {"benchmark", "ours", "anchor", "unit", "ratio", "target", "pass"} <= set(result)
    details = result["details"]
    assert details["tokens_per_s"] > 0 and 0 <= details["data_wait_fraction"] <= 1
    if not torch.cuda.is_available():
        assert result["ours"] is None and result["pass"] is False  # no MFU without a known device peak
