"""Reading a Delta snapshot through pyarrow must not kill the process at exit.

delta-rs's default pyarrow dataset reads through a Python filesystem handler; a scan that stops
early (`refinery quarantine`'s `head()`) left Arrow I/O threads that needed the GIL while the
interpreter finalized, and the process died after printing its output: SIGABRT ("terminate called
without an active exception"), SIGSEGV, or a hang in Arrow's thread-pool shutdown. With a table of
many files that happened in nearly every run, so three runs fail reliably without the fix.
"""

from __future__ import annotations

import json

import pyarrow as pa
from deltalake import write_deltalake

from pipelines.framework.lake import snapshot_dataset
from tests.cli_run import refinery


def test_quarantine_over_many_files_exits_cleanly(lake) -> None:
    table = lake.path("demo/quarantine")
    for part in range(40):
        rows = 2000
        write_deltalake(
            str(table),
            pa.table(
                {
                    "source": ["web"] * rows,
                    "locator": [f"f{part}.jsonl:{i}" for i in range(rows)],
                    "reason": ["malformed_json"] * rows,
                    "excerpt": [f"record {part} {i} " * 20 for i in range(rows)],
                }
            ),
            mode="append",
        )
    for _ in range(3):
        result = refinery("quarantine", "--json", "--limit", "3", "--lake", str(lake.root), timeout=60)
        assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
        [listing] = json.loads(result.stdout)
        assert listing["rows"] == 80_000
        assert len(listing["first"]) == 3


def test_snapshot_dataset_reads_percent_encoded_partitions(lake) -> None:
    """Partition folders are written percent-encoded; the native filesystem must still find them."""
    table = lake.path("t/parts")
    write_deltalake(str(table), pa.table({"k": ["a b", "c/d", "é%"], "v": [1, 2, 3]}), partition_by=["k"])
    rows = snapshot_dataset(lake.delta("t/parts")).to_table().sort_by("v").to_pylist()
    assert rows == [{"k": "a b", "v": 1}, {"k": "c/d", "v": 2}, {"k": "é%", "v": 3}]
