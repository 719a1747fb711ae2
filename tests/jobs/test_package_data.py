"""Package data read from the `--py-files` zip that `refinery submit` ships, as a cluster imports it.

Why: on a cluster the driver and the executors import our packages from code.zip, where a path
built from `__file__` names nothing on disk; the demo job's decide stage died there with "no such
file (packaged tables: [])". This runs a fresh interpreter with only the zip holding our code and
loads every piece of package data the stages read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from jobs.submit import PROJECT_ROOT, package_code
from pipelines.framework.codeversion import PACKAGES

PROBE = """
import json, sys
from pathlib import Path

root = Path(sys.argv[1]).resolve()
assert all(Path(p or ".").resolve() != root for p in sys.path), sys.path
import curation.thresholds, curation.langid.ensemble as ensemble
from curation.decide import DecideConfig

table = curation.thresholds.language_table("fineweb2")
try:
    curation.thresholds.language_table("no-such-table")
    missing = ""
except ValueError as exc:
    missing = str(exc)
json.dump({
    "files": [curation.thresholds.__file__, ensemble.__file__],
    "languages": sorted(table.languages),
    "es_stop_words": len(table.stop_words("es") or ()),
    "missing": missing,
    "routes": len(ensemble.Calibration.load().routes),
    "calibrated": ensemble.LangIdConfig().calibrated().threshold,
    "decide": DecideConfig(input="a", output="b", languages=["en", "es", "ru"]).language_thresholds,
}, sys.stdout)
"""


def test_package_data_loads_from_the_submitted_zip(tmp_path: Path) -> None:
    code_zip = package_code(tmp_path / "code.zip", list(PACKAGES))
    env = {**os.environ, "PYTHONPATH": str(code_zip)}
    ran = subprocess.run(
        [sys.executable, "-c", PROBE, str(PROJECT_ROOT)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    found = json.loads(ran.stdout)
    # The probe really imported the zip's code, not the checkout's.
    assert all(file.startswith(f"{code_zip}{os.sep}") for file in found["files"]), found["files"]
    assert {"en", "es", "ru"} <= set(found["languages"]) and found["es_stop_words"] > 0
    assert "packaged tables: ['fineweb2']" in found["missing"], found["missing"]
    assert found["routes"] > 0 and 0 < found["calibrated"] < 1
    assert found["decide"] == "fineweb2"
