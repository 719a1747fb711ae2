"""Concurrent commits to one table: each writer commits or gets TableConflictError; the table stays sound.

Writers are released together by a barrier so their delta-rs commits race for the
same version. This is the commit path every stage's output goes through, so it is
what two jobs writing one table at once exercise (the cluster test does it end to end).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.framework.delta_commit import TableConflictError
from pipelines.framework.lake import Lake

WRITERS = 6


def _race(lake: Lake, table: str, mode: str) -> dict[int, object]:
    barrier = threading.Barrier(WRITERS)
    outcomes: dict[int, object] = {}

    def write(writer: int) -> None:
        data = pa.table({"writer": [writer] * (writer + 1), "row": list(range(writer + 1))})
        barrier.wait()
        try:
            outcomes[writer] = lake.write_arrow(data, table, {"writer": writer}, mode=mode)
        except TableConflictError as exc:
            outcomes[writer] = exc

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def _assert_sound(lake: Lake, table: str) -> None:
    referenced: set[str] = set()
    for version in range(lake.version(table) + 1):
        assert lake.dataset(table, version).to_table().num_rows == lake.num_records(table, version)
        referenced |= {Path(u).name for u in lake.delta(table, version).file_uris()}
    assert {p.name for p in lake.path(table).glob("*.parquet")} <= referenced
    assert not list((lake.path(table) / "_staging").glob("*/*.parquet"))


@pytest.mark.parametrize("mode", ["overwrite", "append"])
def test_racing_writers_commit_or_conflict(tmp_path, mode):
    """First race: writers create the table together; second race: they commit on top of it."""
    lake = Lake(tmp_path / "lake")
    table = "race/docs"
    appended: list[tuple[int, int]] = []
    total = 0
    for _ in range(2):
        outcomes = _race(lake, table, mode)
        assert len(outcomes) == WRITERS
        committed = [w for w, r in outcomes.items() if not isinstance(r, TableConflictError)]
        conflicts = [r for r in outcomes.values() if isinstance(r, TableConflictError)]
        assert all("nothing was committed" in str(c) for c in conflicts)
        assert committed, "no writer committed"
        total += len(committed)
        history = lake.history(table)
        assert sorted(int(c["version"]) for c in history) == list(range(total))  # one per commit, no gaps
        _assert_sound(lake, table)
        rows = lake.dataset(table).to_table().to_pylist()
        if mode == "overwrite":
            last = int(history[0]["meta"]["writer"])
            assert sorted((r["writer"], r["row"]) for r in rows) == [(last, i) for i in range(last + 1)]
        else:
            appended += [(w, i) for w in committed for i in range(w + 1)]
            assert sorted((r["writer"], r["row"]) for r in rows) == sorted(appended)


def test_each_writer_learns_its_own_version(tmp_path):
    lake = Lake(tmp_path / "lake")
    _race(lake, "race/docs", "append")
    outcomes = _race(lake, "race/docs", "append")
    for writer, result in outcomes.items():
        if not isinstance(result, TableConflictError):
            assert result.version == lake.find_commit("race/docs", {"writer": str(writer)})


@pytest.mark.parametrize(
    ("rival_mode", "mode", "expected"),
    [
        ("overwrite", "overwrite", None),
        ("append", "overwrite", None),
        ("overwrite", "append", None),
        ("append", "append", [0, 1, 1, 2, 2, 2]),
    ],
)
def test_rival_commit_between_read_and_commit(tmp_path, monkeypatch, rival_mode, mode, expected):
    """The race window made deterministic: a rival commit lands after this writer read the table.

    delta-rs would rebase an overwrite onto the rival's version and keep the rival's
    rows beside its own, so any late overwrite must fail, as must an append the rival
    overwrote under it; only an append over an append may rebase.
    """
    from deltalake import DeltaTable

    lake = Lake(tmp_path / "lake")
    lake.write_arrow(pa.table({"writer": [0]}), "t")
    real = DeltaTable.create_write_transaction
    rival_done = []

    def rival_first(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not rival_done:
            rival_done.append(True)
            lake.write_arrow(pa.table({"writer": [1, 1]}), "t", {"writer": 1}, mode=rival_mode)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "create_write_transaction", rival_first)
    late = pa.table({"writer": [2, 2, 2]})
    if expected is None:
        with pytest.raises(TableConflictError, match="nothing was committed"):
            lake.write_arrow(late, "t", {"writer": 2}, mode=mode)
        expected = [1, 1] if rival_mode == "overwrite" else [0, 1, 1]
    else:
        assert lake.write_arrow(late, "t", {"writer": 2}, mode=mode).version == 2
    monkeypatch.undo()
    assert sorted(lake.dataset("t").to_table().column("writer").to_pylist()) == expected
    _assert_sound(lake, "t")
