"""Mutation check of the suite's core claims: each targeted bug must make at least one test fail.

    python -m benchmarks.mutation                 # every mutation (about half an hour on 2 cores)
    python -m benchmarks.mutation --only pii-threshold-0.75 --only shard-index-big-endian
    python -m benchmarks.mutation --list

Not part of CI. The tracked files of a commit (HEAD by default: `git archive`, so other people's
uncommitted edits never leak in) are unpacked into a temporary folder. A probe first checks that
the copy's code, not the working tree's, is what both the driver and Spark's Python workers import
(the copy is the command's cwd and first on PYTHONPATH, which Spark passes to its workers). The
chosen mutations' tests must all pass unmutated, in one pytest run (else a kill proves nothing).
Then, for each mutation: the one edit is applied (its text must occur exactly once), its tests run
with missing shared data made a failure (REFINERY_REQUIRE_SHARED_DATA=1, so a skip is not a
kill), and the file is restored. A mutation is killed when pytest reports failed tests (exit 1);
any other exit (a collection error, no test run) is reported as an error, not a kill.
Prints every result, the kill rate and every survivor, and a JSON summary as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("REFINERY_SHARED_DATA", REPO.parent / "shared" / "data"))


@dataclass(frozen=True)
class Mutation:
    """One deliberate bug: replace `old` (exactly one occurrence) by `new` in `path`."""

    name: str
    claim: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS: list[Mutation] = [
    # ---- the claims issue 21 found undefended
    Mutation(
        "runner-always-reconciled",
        "a stage that loses or invents rows fails the run",
        "pipelines/framework/runner.py",
        "srec.reconciled = srec.rows_in == produced",
        "srec.reconciled = True",
        ("tests/pipelines/test_row_accounting.py",),
    ),
    Mutation(
        "runner-expand-unchecked",
        "an augmentation stage that loses rows fails the run",
        "pipelines/framework/runner.py",
        "srec.reconciled = srec.rows_out[outputs[0]] >= srec.rows_in",
        "srec.reconciled = True",
        ("tests/pipelines/test_row_accounting.py",),
    ),
    Mutation(
        "pii-threshold-0.75",
        "labelled PII values stay below the measured survival rate",
        "pii/settings.py",
        "score_threshold: float = Field(0.4,",
        "score_threshold: float = Field(0.75,",
        ("tests/pii/test_leak.py::test_curated_table_leak_rate_per_entity_type",),
    ),
    Mutation(
        "shard-index-big-endian",
        "datatrove reads our .ds.index",
        "training/shards/format.py",
        'INDEX_DTYPE = np.dtype("<u8")',
        'INDEX_DTYPE = np.dtype(">u8")',
        ("tests/training/test_shards.py::test_datatrove_reader_reads_our_tokens",),
    ),
    Mutation(
        "lake-read-ignores-version",
        "other readers (duckdb on a pinned snapshot's files) see the same rows as ours",
        "pipelines/framework/lake.py",
        "def read(self, spark: Any, table: str, version: int | None = None) -> Any:\n",
        "def read(self, spark: Any, table: str, version: int | None = None) -> Any:\n        version = None\n",
        ("tests/pipelines/test_lake.py::test_duckdb_reads_a_pinned_snapshot",),
    ),
    Mutation(
        "cluster-kill-misses",
        "the worker-kill test proves the kill hit the running stage",
        "jobs/cluster.py",
        "os.killpg(daemon.pid, signal.SIGKILL)",
        "return",
        ("tests/jobs/test_cluster.py::test_worker_killed_mid_job",),
    ),
    Mutation(
        "submit-waits-for-each-job",
        "the two-job test proves the jobs overlapped",
        "jobs/submit.py",
        "    if not wait:\n",
        "    proc.wait()\n    if not wait:\n",
        ("tests/jobs/test_cluster.py::test_two_jobs_commit_the_same_tables",),
    ),
    Mutation(
        "train-metrics-not-rewound",
        "a trainer SIGKILLed between checkpoints logs each step once",
        "training/trainer/train.py",
        "    metrics.rewind(step)\n",
        "",
        (
            "tests/training/test_train.py::"
            "test_sigkill_between_checkpoints_resumes_bit_exact_without_duplicate_steps",
        ),
    ),
    Mutation(
        "stage-never-complete",
        "a run killed after a commit resumes by skipping (no second commit)",
        "pipelines/framework/stage.py",
        "return all(ctx.lake.find_commit(ctx.table(t), key) is not None for t in self.output_tables())",
        "return False",
        ("tests/pipelines/test_runner.py::test_run_killed_after_commit_before_run_json_resumes",),
    ),
    Mutation(
        "ddp-no-gradient-sync",
        "DDP trains the same model as one process",
        "training/trainer/train.py",
        "with grad_sync(model, micro == o.grad_accum - 1):",
        "with grad_sync(model, False):",
        ("tests/training/test_train.py::test_ddp_two_processes_on_gloo_then_resume_on_one",),
    ),
    Mutation(
        "web-run-id-unchecked",
        "the raw path /api/runs/.. is refused (the test client would have sent /api)",
        "jobs/web/data.py",
        "        if run_id not in {r.run_id for r in list_runs(self.lake.root)}:\n",
        "        if False:\n",
        ("tests/web/test_app.py::test_paths_cannot_escape_the_lake",),
    ),
    Mutation(
        "web-table-unchecked",
        "table parameters that leave the lake are refused",
        "jobs/web/data.py",
        "        if not table or table not in self.tables():\n",
        "        if not table:\n",
        ("tests/web/test_app.py::test_paths_cannot_escape_the_lake",),
    ),
    Mutation(
        "sentence-order-miscounts",
        "text noise on edge inputs is checked",
        "curation/augment/text.py",
        "changed += order != sorted(order)",
        "changed += 1",
        ("tests/curation/test_augment.py::test_text_ops_on_edge_inputs",),
    ),
    Mutation(
        "shared-data-skip-in-ci",
        "missing shared data fails CI",
        "tests/conftest.py",
        'if os.environ.get("REFINERY_REQUIRE_SHARED_DATA") == "1":',
        "if False:",
        ("tests/test_shared_data_gate.py",),
    ),
    # ---- ten more: dedup, decide, the lake, the loader, redaction
    Mutation(
        "exact-dedup-case-sensitive",
        "exact dedup matches case-folded text",
        "dedup/kernels/exact.py",
        "        if self.casefold:\n",
        "        if False:\n",
        (
            "tests/dedup/test_peers.py::test_datajuicer_document_deduplicator",
            "tests/dedup/test_stages.py::test_exact_then_near_on_datajuicer_demo",
        ),
    ),
    Mutation(
        "minhash-band-of-one-row",
        "LSH bands hash all their rows (datasketch's band test)",
        "dedup/kernels/minhash.py",
        "            for col in range(band * rows, (band + 1) * rows):\n",
        "            for col in range(band * rows, band * rows + 1):\n",
        ("tests/dedup/test_stages.py::test_minhash_agrees_exactly_with_datasketch_lsh_union_find",),
    ),
    Mutation(
        "components-one-round",
        "connected components converge (roots of long chains)",
        "dedup/components.py",
        "        if not changed:\n            break\n",
        "        break\n",
        (
            "tests/dedup/test_stages.py::test_minhash_agrees_exactly_with_datasketch_lsh_union_find",
            "tests/dedup/test_components_chain.py",
        ),
    ),
    Mutation(
        "decide-last-reason-wins",
        "the first failing rule is the drop reason",
        "curation/decide.py",
        "F.try_element_at(F.col(DROP_REASONS), F.lit(1))",
        "F.try_element_at(F.col(DROP_REASONS), F.lit(-1))",
        ("tests/curation/test_decide.py",),
    ),
    Mutation(
        "decide-overwrites-earlier-drop",
        "an earlier stage's drop reason is never overwritten by decide",
        "pipelines/framework/drop_reason.py",
        "F.coalesce(F.col(DROP_REASON), reasons)",
        "F.coalesce(reasons, F.col(DROP_REASON))",
        ("tests/curation/test_decide.py::test_decide_keeps_earlier_reason_and_overrides",),
    ),
    Mutation(
        "lake-keeps-orphans",
        "what a killed writer staged is removed before the next write",
        "pipelines/framework/delta_commit.py",
        "            if txn not in committed:\n",
        "            if False:\n",
        ("tests/pipelines/test_lake.py::test_write_killed_before_commit_is_invisible_and_cleaned",),
    ),
    Mutation(
        "loader-resume-off-by-one",
        "a resumed loader continues with the very next sample",
        "training/loader/stream.py",
        'self.samples_consumed = int(state["samples_consumed"])',
        'self.samples_consumed = int(state["samples_consumed"]) + 1',
        (
            "tests/training/test_stream.py::test_resume_in_process_continues_with_the_next_batch",
            "tests/training/test_stream.py::test_elastic_resume_loses_and_repeats_nothing",
        ),
    ),
    Mutation(
        "loader-ranks-overlap",
        "ranks read disjoint samples",
        "training/loader/stream.py",
        "positions = first + self.rank * self.batch_size + np.arange(self.batch_size, dtype=np.int64)",
        "positions = first + np.arange(self.batch_size, dtype=np.int64)",
        ("tests/training/test_stream.py::test_elastic_resume_loses_and_repeats_nothing",),
    ),
    Mutation(
        "redact-overlap-keeps-first-end",
        "overlapping detections are redacted as their union",
        "pii/redact.py",
        "                max(top.end, r.end),\n",
        "                top.end,\n",
        ("tests/pii/test_redact.py::test_overlaps_merge_to_their_union", "tests/pii/test_leak_redaction.py"),
    ),
    Mutation(
        "redact-no-propagation",
        "a name found once is redacted at every occurrence in the document",
        "pii/redact.py",
        "    return [*results, *extra]\n",
        "    return results\n",
        ("tests/pii/test_leak_redaction.py",),
    ),
    Mutation(
        "redact-single-round",
        "redacted text holds nothing the analyzer finds again (re-analysis rounds)",
        "pii/kernel.py",
        "MAX_ROUNDS = 4",
        "MAX_ROUNDS = 1",
        ("tests/pii/test_redact.py::test_no_entity_survives_reanalysis", "tests/pii/test_stage.py"),
    ),
]


@dataclass
class Outcome:
    name: str
    status: str  # killed, survived, stale (text not found once), error (pytest exit other than 0 or 1)
    seconds: float
    detail: str = ""


def unpack(commit: str, into: Path) -> None:
    """The tracked files of `commit`, exactly as committed."""
    archive = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def environment(copy: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(copy),
        "REFINERY_SHARED_DATA": str(SHARED_DATA),
        "REFINERY_REQUIRE_SHARED_DATA": "1",
        "REFINERY_SPARK_UI": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


PROBE = """
import sys
from pipelines.framework.spark import get_spark
spark = get_spark(master="local[1]", conf={}, ui=False, app_name="mutation-probe")
import pipelines
driver = pipelines.__file__
worker = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("pipelines").__file__).collect()[0]
spark.stop()
print(driver)
print(worker)
"""


def probe(copy: Path) -> tuple[str, str]:
    """Where the driver and a Spark Python worker import `pipelines` from, run as the tests run."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=copy, env=environment(copy), capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"probe failed:\n{proc.stderr[-3000:]}")
    driver, worker = proc.stdout.strip().splitlines()[-2:]
    return driver, worker


def pytest(copy: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
        cwd=copy,
        env=environment(copy),
        capture_output=True,
        text=True,
    )
    return proc.returncode, (proc.stdout + proc.stderr)[-1500:]


def run_one(copy: Path, mutation: Mutation) -> Outcome:
    started = time.perf_counter()
    path = copy / mutation.path
    original = path.read_text(encoding="utf-8")
    if original.count(mutation.old) != 1:
        found = original.count(mutation.old)
        return Outcome(mutation.name, "stale", 0.0, f"{mutation.path}: text found {found} times, not once")
    path.write_text(original.replace(mutation.old, mutation.new), encoding="utf-8")
    try:
        code, tail = pytest(copy, mutation.tests)
    finally:
        path.write_text(original, encoding="utf-8")
    status = {0: "survived", 1: "killed"}.get(code, "error")
    return Outcome(mutation.name, status, time.perf_counter() - started, "" if code == 1 else tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commit", default="HEAD", help="commit whose tracked files are mutated")
    parser.add_argument("--only", action="append", default=[], help="run only this mutation (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:32} {m.path:28} {m.claim}")
        return 0
    unknown = set(args.only) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutation(s): {', '.join(sorted(unknown))}")
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    with tempfile.TemporaryDirectory(prefix="refinery-mutation-") as tmp:
        copy = Path(tmp)
        unpack(args.commit, copy)
        driver, worker = probe(copy)
        print(f"copy of {args.commit}: driver imports {driver}, Spark worker imports {worker}")
        if not (driver.startswith(str(copy)) and worker.startswith(str(copy))):
            raise SystemExit(
                "the copy's code is not what the tests would import; mutations would prove nothing"
            )
        # Unmutated, every chosen test must pass (one pytest run, one Spark session), else a kill proves nothing.
        union = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        started = time.perf_counter()
        code, tail = pytest(copy, union)
        print(f"baseline: {len(union)} test selections, exit {code}, {time.perf_counter() - started:.0f}s")
        if code != 0:
            raise SystemExit(f"the unmutated copy fails its tests:\n{tail}")
        outcomes = []
        for mutation in chosen:
            outcome = run_one(copy, mutation)
            outcomes.append(outcome)
            print(
                f"{outcome.status:16} {outcome.seconds:7.1f}s  {mutation.name}: {mutation.claim}", flush=True
            )
            if outcome.detail:
                print("    " + outcome.detail.replace("\n", "\n    "), flush=True)
    killed = [o for o in outcomes if o.status == "killed"]
    survivors = [o for o in outcomes if o.status != "killed"]
    print(f"killed {len(killed)} of {len(outcomes)} ({len(killed) / max(1, len(outcomes)):.0%})")
    for o in survivors:
        print(f"not killed: {o.name} ({o.status})")
    summary = {
        "commit": subprocess.run(
            ["git", "rev-parse", args.commit], cwd=REPO, capture_output=True, text=True
        ).stdout.strip(),
        "killed": len(killed),
        "total": len(outcomes),
        "kill_rate": round(len(killed) / max(1, len(outcomes)), 4),
        "survivors": [o.name for o in survivors],
        "results": [{k: v for k, v in asdict(o).items() if k != "detail"} for o in outcomes],
    }
    print(json.dumps(summary))
    return 0 if not survivors else 1


if __name__ == "__main__":
    sys.exit(main())
