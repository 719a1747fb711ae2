"""`refinery submit` refuses an executor no alive standalone worker could host, before recording a run.

Why: the master would keep such an application waiting for ever, the run `running`, with nothing in
`refinery logs` to say why. The master's state comes from a real HTTP server serving the JSON a
standalone master's web UI serves at /json/ (workers and their memory in MiB and cores).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.cluster import free_port
from jobs.submit import SubmitError, SubmitOptions, check_cluster_fits, memory_mb, submit

MASTER = "spark://127.0.0.1:7077"
LOAD = "tests.pipelines.stages_for_tests:LoadJsonl"


def _worker(state: str, memory: int, cores: int) -> dict[str, Any]:
    return {"state": state, "memory": memory, "memoryfree": memory, "cores": cores, "coresfree": cores}


def _serve(state: Any) -> Iterator[str]:
    body = json.dumps(state).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/json/" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            """Quiet: the test's output is its assertions."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def master_ui() -> Iterator[str]:
    """A master with a dead 8g worker and two alive ones, the larger with 1 GiB and 2 cores."""
    workers = [_worker("DEAD", 8192, 8), _worker("ALIVE", 1024, 2), _worker("ALIVE", 512, 1)]
    yield from _serve({"url": MASTER, "workers": workers})


def _spec(tmp_path: Path, shared_data: Path, conf: dict[str, str] | None = None) -> Path:
    source = shared_data / "web" / "datajuicer_pretrain_source_samples" / "redpajama-cc-2023-06-refined.jsonl"
    spec = {
        "name": "preflight",
        "lake": str(tmp_path / "lake"),
        "spark": {"conf": conf or {}},
        "stages": [{"stage": LOAD, "params": {"path": str(source)}}],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_an_executor_bigger_than_every_worker_is_refused_before_a_run_is_recorded(
    master_ui: str, tmp_path: Path, shared_data: Path
) -> None:
    opts = SubmitOptions(master=MASTER, master_ui=master_ui, executor_memory="2g")
    with pytest.raises(SubmitError) as caught:
        submit(_spec(tmp_path, shared_data), opts, run_id="too-big", wait=False)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("--executor-memory 2g"), message
    assert "1024 MiB and 2 core(s)" in message, message  # the largest alive worker, not the dead one
    assert not (tmp_path / "lake" / "_runs" / "too-big").exists()


@pytest.mark.parametrize(
    ("opts", "spec_conf", "named"),
    [
        ({"executor_cores": 4}, {}, "--executor-cores 4"),
        (
            {"conf": {"spark.executor.memory": "1500m"}, "executor_memory": "512m"},
            {},
            "--conf spark.executor.memory",
        ),
        ({}, {"spark.executor.memory": "4g"}, "the spec's spark.conf spark.executor.memory 4g"),
        ({"executor_memory": "1025"}, {}, "--executor-memory 1025"),  # a bare number is MiB, as for Spark
    ],
)
def test_each_source_of_the_size_is_named(master_ui: str, opts: dict, spec_conf: dict, named: str) -> None:
    with pytest.raises(SubmitError, match=named):
        check_cluster_fits(SubmitOptions(master=MASTER, master_ui=master_ui, **opts), spec_conf, master_ui)


@pytest.mark.parametrize(
    "opts", [{}, {"executor_memory": "1g", "executor_cores": 2}, {"executor_memory": "1024m"}]
)
def test_an_executor_that_fits_the_largest_worker_passes(master_ui: str, opts: dict) -> None:
    check_cluster_fits(SubmitOptions(master=MASTER, master_ui=master_ui, **opts), {}, master_ui)


def test_no_alive_worker_is_refused() -> None:
    for ui in _serve({"url": MASTER, "workers": [_worker("DEAD", 8192, 8)]}):
        with pytest.raises(SubmitError, match="no alive worker"):
            check_cluster_fits(SubmitOptions(master=MASTER, master_ui=ui), {}, ui)


def test_a_ui_that_does_not_answer_or_is_another_masters_skips_the_check() -> None:
    silent = f"http://127.0.0.1:{free_port()}"
    opts = SubmitOptions(master=MASTER, master_ui=silent, executor_memory="64g")
    check_cluster_fits(opts, {}, silent)
    for ui in _serve({"url": "spark://10.0.0.9:7077", "workers": [_worker("ALIVE", 512, 1)]}):
        check_cluster_fits(opts, {}, ui)
    for ui in _serve(["not", "a", "master"]):
        check_cluster_fits(opts, {}, ui)


def test_memory_sizes_read_as_spark_reads_them() -> None:
    assert [memory_mb(v) for v in ("512m", "2g", "2G", "1024", "1t", "2gb", "1048576k", "x", "1.5g")] == [
        512,
        2048,
        2048,
        1024,
        1024 * 1024,
        2048,
        1024,
        None,
        None,
    ]
