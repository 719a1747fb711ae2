"""The demo end to end: `make demo` on a bare clone, and the demo job's every stage, counts and shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections import Counter
from pathlib import Path

import deltalake
import pytest
import yaml

from jobs.report import load_run_report
from pipelines.framework.drop_reason import DROP_REASON
from tests.cli_run import refinery
from tests.pipelines.table_hashes import lake_hashes

REPO = Path(__file__).resolve().parents[2]


# The resume key holds a hash of the source tree; pinned, so that edits made elsewhere in a shared
# working tree while the test runs cannot make its rerun recompute what it should skip.
PINNED_CODE = {**os.environ, "REFINERY_CODE_VERSION": "demo-test"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return refinery(*args, env=PINNED_CODE, timeout=1800)


@pytest.mark.slow
def test_demo_job_runs_every_stage(tmp_path):
    lake = tmp_path / "lake"
    model = lake / "models" / "quality.bin"
    trained = _cli(
        "quality",
        "train",
        "--data",
        str(REPO / "samples/quality/dclm/majority_minus_agreement.jsonl"),
        "-o",
        str(model),
    )
    assert trained.returncode == 0, trained.stderr[-2000:]

    demo = yaml.safe_load((REPO / "jobs/examples/demo.yaml").read_text())
    demo["lake"] = str(lake)
    demo["spark"]["master"] = "local[2]"
    for stage in demo["stages"]:
        if stage["stage"] == "quality_classifier":
            stage["params"]["model"] = str(model)
    spec = tmp_path / "demo.yaml"
    spec.write_text(yaml.safe_dump(demo))

    ran = _cli("run", str(spec), "--quiet")
    assert ran.returncode == 0, ran.stderr[-3000:]
    record = json.loads(_cli("show", "latest", "--lake", str(lake), "--json").stdout)
    assert record["status"] == "succeeded"
    assert [s["stage"] for s in record["stages"]] == [s["stage"] for s in demo["stages"]]
    for stage in record["stages"]:
        assert stage["status"] == "succeeded"
        assert stage["reconciled"] is not False, stage
    ingest = record["stages"][0]
    assert ingest["rows_out"]["quarantine"] >= 4
    # Every record read is a row, folded past a file's quarantine cap, or skipped (and shown).
    metrics = ingest["metrics"]
    assert ingest["skipped"] == metrics["skipped_records"] and ingest["skipped"]["warc_request"] > 0
    assert sum(metrics["quarantined"].values()) == ingest["rows_out"]["quarantine"]
    assert metrics["records_read"] == (
        sum(ingest["rows_out"].values())
        - metrics["quarantined"].get("quarantine_capped", 0)
        + sum(metrics["quarantine_folded"].values())
        + sum(ingest["skipped"].values())
    )
    # The funnel explains itself: ingest's rows in are the records it read (kept + quarantined), and the
    # counts a table cannot show (skipped WARC records, augmentation's copies, tokens written) are notes.
    steps = {step["id"]: step for step in record["funnel"]}
    assert steps["ingest"]["rows_in"] == metrics["records_in"]
    assert steps["ingest"]["kept"] == metrics["records_in"] - ingest["rows_out"]["quarantine"]
    assert any(n.startswith("not documents, skipped: warc_request") for n in steps["ingest"]["notes"])
    assert any(n.startswith("rows added: repeat") for n in steps["augment"]["notes"])
    assert any(n.endswith(str(lake / "shards" / "default")) for n in steps["shards"]["notes"])
    # Every table holds the rows recorded with tests/pipelines/table_hashes.py, value for value: first
    # before the architecture change (issue 15, main at 1811e36^), again for issue 16 (see the file's log).
    recorded = json.loads((REPO / "tests/data/demo_table_hashes.json").read_text())
    assert lake_hashes(lake / "demo") == recorded

    _assert_kept_languages(demo, lake, record["run_id"], tmp_path / "report.html")

    final = record["stages"][-2]  # augment: every curated row is still there, dropped or kept
    assert final["kept"] > 0 and final["dropped"]

    shards = lake / "shards" / "default"
    verified = _cli("shards", "verify", str(shards), "--lake", str(lake))
    assert verified.returncode == 0, verified.stdout[-2000:] + verified.stderr[-2000:]
    manifest = json.loads((shards / "manifest.json").read_text())
    assert sum(s["documents"] for s in manifest["shards"]) == final["kept"]

    again = _cli("run", str(spec), "--quiet")
    assert again.returncode == 0
    rerun = json.loads(_cli("show", "latest", "--lake", str(lake), "--json").stdout)
    assert {s["status"] for s in rerun["stages"]} == {"skipped"}


def _kept_and_dropped(table: Path, version: int | None = None) -> dict[str | None, Counter[bool]]:
    rows = deltalake.DeltaTable(table, version=version).to_pyarrow_table(columns=["lang", DROP_REASON])
    counts: dict[str | None, Counter[bool]] = {}
    for row in rows.to_pylist():
        counts.setdefault(row["lang"], Counter())[row[DROP_REASON] is None] += 1
    return counts


def _assert_kept_languages(demo: dict, lake: Path, run_id: str, html: Path) -> None:
    """Issue 16: the demo keeps two non-English languages (decide's list names them), both have kept
    documents in the final table, and the run's report gives each one's kept and dropped counts."""
    decide = next(stage["params"] for stage in demo["stages"] if stage["stage"] == "decide")
    others = [lang for lang in decide["languages"] if lang != "en"]
    assert len(others) == 2, decide["languages"]
    final = _kept_and_dropped(lake / "demo" / "augmented")
    assert all(final.get(lang, Counter())[True] > 0 for lang in others), final

    made = _cli("report", run_id, "--lake", str(lake), "--master", "local[2]", "-o", str(html))
    assert made.returncode == 0, made.stderr[-3000:]
    section = load_run_report(lake, run_id)["languages"]
    table, version = section["table"].rsplit("@", 1)
    counted = _kept_and_dropped(lake / table, int(version))
    shown = {entry["lang"]: entry for entry in section["languages"]}
    page = html.read_text(encoding="utf-8")
    for lang in others:
        entry = shown[lang]
        assert entry["kept"] == counted[lang][True] > 0 and entry["dropped"] == counted[lang][False], entry
        assert (
            f'<tr><td>{lang}</td><td class="num">{entry["docs"]}</td>'
            f'<td class="num">{entry["kept"]}</td><td class="num">{entry["dropped"]}</td>'
        ) in page


def _clone_venv(clone: Path) -> Path:
    """A venv in the clone that sees this environment's installed packages but not its refinery.

    Installing torch, Spark and spaCy afresh takes many minutes and needs the network, so the
    clone's venv reads the current venv's site-packages through a .pth line. Lines of a .pth
    add the folder to sys.path without running the .pth files inside it, so the current
    checkout's editable install (itself a .pth hook) stays invisible: `make demo` has to
    install the clone's own refinery, and pip leaves the outer install alone ("outside
    environment").
    """
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(clone / ".venv")], check=True, timeout=300)
    inner = subprocess.run(
        [str(clone / ".venv/bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(inner) / "zz_outer_site_packages.pth").write_text("\n".join(sorted(outer)) + "\n")
    # The venv's own bundled setuptools is older than what torch requires and would shadow ours.
    subprocess.run(
        [str(clone / ".venv/bin/python"), "-m", "pip", "uninstall", "-q", "-y", "setuptools"],
        check=True,
        timeout=300,
    )
    return Path(base_python)


@pytest.mark.slow
def test_make_demo_on_a_bare_clone(tmp_path):
    clone = tmp_path / "refinery"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)], check=True, timeout=300
    )
    assert not (tmp_path / "shared").exists()  # no sibling folder: the demo has only the clone
    base_python = _clone_venv(clone)

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "REFINERY_LAKE", "REFINERY_SHARED_DATA", "MAKEFLAGS")
    }
    outer_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != outer_bin)
    env.update(PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1")
    made = subprocess.run(
        ["make", "demo", f"PYTHON={base_python}"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert made.returncode == 0, made.stdout[-4000:] + made.stderr[-4000:]

    where = subprocess.run(
        [
            str(clone / ".venv/bin/python"),
            "-c",
            "import jobs, pipelines; print(jobs.__file__, pipelines.__file__)",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(path).is_relative_to(clone) for path in where), where
    ours = subprocess.run(
        [sys.executable, "-c", "import jobs; print(jobs.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(ours).is_relative_to(REPO), ours  # the outer editable install was left alone

    record = json.loads(
        subprocess.run(
            [str(clone / ".venv/bin/refinery"), "show", "latest", "--json"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert record["status"] == "succeeded" and len(record["stages"]) == 11
    assert (clone / "lake/report.html").is_file()
    assert (clone / "lake/shards/default/manifest.json").is_file()
    metrics = [json.loads(line) for line in (clone / "runs/demo_tiny/metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if "loss" in m]
    assert losses and losses[-1] < losses[0]  # the tiny GPT trained on the demo's shards
