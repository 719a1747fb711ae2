"""An executor too big for every worker of a real standalone cluster: refused, or at least explained.

Why: such an application waits for ever, the run `running`. Where the master's UI answers, submit
refuses it at once (naming the option and the largest worker); where it does not, Spark's
"Initial job has not accepted any resources" warning must reach submit.log, where `refinery logs`
shows it, and the run must still cancel cleanly.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jobs.cluster import free_port
from jobs.registry import cancel, log_file, parse_app_id
from jobs.submit import SubmitError, submit
from tests.jobs.conftest import wait_for

pytestmark = pytest.mark.cluster

STARVED = "Initial job has not accepted any resources"


def test_submit_refuses_an_executor_larger_than_the_workers(
    cluster, options, job_spec, tmp_path: Path
) -> None:
    lake = tmp_path / "big"
    with pytest.raises(SubmitError, match=r"^--executor-memory 2g: .* 1024 MiB and 1 core\(s\)"):
        submit(job_spec(lake), options(executor_memory="2g"), run_id="big", wait=False)
    assert not (lake / "_runs" / "big").exists()


def test_without_the_ui_the_starved_job_is_explained_in_the_log(
    cluster, options, job_spec, tmp_path: Path
) -> None:
    lake = tmp_path / "starved"
    silent_ui = f"http://127.0.0.1:{free_port()}"  # no UI: the preflight is skipped, Spark decides
    submit(job_spec(lake), options(executor_memory="2g", master_ui=silent_ui), run_id="starved", wait=False)
    try:
        record = wait_for(lake, "starved", lambda r: r.status == "running", timeout=300)
        assert record.status == "running", (record.error, record.error_cause)
        log = log_file(record)
        deadline = time.monotonic() + 300
        while STARVED not in log.read_text(errors="replace") and time.monotonic() < deadline:
            time.sleep(1.0)
        text = log.read_text(errors="replace")
    finally:
        final = cancel(lake, "starved")  # the application would wait for ever
    assert STARVED in text, text[-3000:]
    # Our logging configuration, not Spark's default profile with its start-up noise.
    assert "log4j profile" not in text and "NativeCodeLoader" not in text, text[-3000:]
    assert final.status == "cancelled", (final.status, final.error)
    assert parse_app_id(text) == final.app_id, text[-3000:]  # what cancel reads before the driver says
