"""docs/quickstart.md works as written: its `bash` blocks run in order in an empty folder.

Blocks fenced as `sh` (install, serve) are for the reader only; every `bash` block is run,
as one script, with `refinery` on PATH as after `source .venv/bin/activate`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "quickstart.md"


def doc_commands() -> str:
    return "\n".join(re.findall(r"```bash\n(.*?)```", DOC.read_text(), re.S))


@pytest.mark.slow
def test_quickstart_commands_run_and_rerun_only_decide_onwards(tmp_path):
    script = "set -euo pipefail\n" + doc_commands()
    env = {
        **os.environ,
        "REFINERY_HOME": str(REPO),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "COLUMNS": "80",
        "REFINERY_SPARK_UI": "0",
        # The resume key holds a hash of the source tree; pin it so that edits made elsewhere in a
        # shared working tree while this test runs cannot make the second run recompute everything.
        "REFINERY_CODE_VERSION": "quickstart-test",
    }
    env.pop("REFINERY_LAKE", None)
    ran = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "skipped" in ran.stdout and "exact_dedup" in ran.stdout  # the second `show latest`

    corpus = tmp_path / "my-corpus"
    assert (corpus / "report.html").is_file()
    listed = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "runs", "--json", "--lake", str(corpus / "lake")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    first, second = sorted(json.loads(listed.stdout), key=lambda r: r["created_at"])
    records = {}
    for run in (first, second):
        shown = subprocess.run(
            [
                sys.executable,
                "-m",
                "jobs.cli",
                "show",
                run["run_id"],
                "--json",
                "--lake",
                str(corpus / "lake"),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        records[run["run_id"]] = {s["id"]: s for s in json.loads(shown.stdout)["stages"]}
    before, after = records[first["run_id"]], records[second["run_id"]]
    assert {s["status"] for s in before.values()} == {"succeeded"}
    assert {k: s["status"] for k, s in after.items()} == {
        "ingest": "skipped",
        "annotate": "skipped",
        "decide": "succeeded",
        "exact_dedup": "succeeded",
    }
    assert after["annotate"]["outputs"] == before["annotate"]["outputs"]  # the same committed signals
    assert after["decide"]["outputs"]["decided"] == before["decide"]["outputs"]["decided"] + 1
    assert after["decide"]["dropped"]["gopher_short_doc"] > before["decide"]["dropped"].get(
        "gopher_short_doc", 0
    )
    assert after["decide"]["kept"] < before["decide"]["kept"]
