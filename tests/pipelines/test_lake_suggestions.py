"""The "did you mean" of a missing table: found in a real lake, bounded everywhere else.

The suggestion lists the lake's tables; a lake (`--lake`, a manifest's `source_lake`) that points at
/proc or at a big folder used to be walked whole, following links (/proc/self/root is the machine
again), so the error never came.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from pipelines.framework.lake import Lake, TableMissingError


def _table(path: Path) -> None:
    write_deltalake(str(path), pa.table({"doc_id": ["a"], "text": ["x"]}))


def _message(lake: Lake, table: str) -> str:
    with pytest.raises(TableMissingError) as caught:
        lake.delta(table)
    return str(caught.value)


def test_a_typo_is_still_suggested_in_a_lake_beside_a_large_folder_tree(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    for name in ("demo/documents", "demo/deduped", "other/curated"):
        _table(root / name)
    for dataset in range(30):  # folders that are no table, two levels and deeper
        for sub in range(40):
            (root / f"raw{dataset:02d}" / f"part{sub:02d}" / "a" / "b").mkdir(parents=True)
    assert "did you mean 'demo/documents'?" in _message(Lake(root), "demo/documnts")
    assert "did you mean 'other/curated'?" in _message(Lake(root), "other/curatd")


def test_the_suggestion_looks_at_dataset_table_names_inside_the_lake_only(tmp_path: Path) -> None:
    """A table nested deeper than dataset/table, or behind a link out of the lake, is not walked to."""
    root = tmp_path / "lake"
    _table(root / "demo/documents")
    _table(root / "deep/a/b/c/documents")
    _table(tmp_path / "elsewhere/shared/documents")
    (root / "linked").symlink_to(tmp_path / "elsewhere")
    assert "'deep/a/b/c/documents'" not in _message(Lake(root), "deep/a/b/c/documentz")
    assert "'linked/shared/documents'" not in _message(Lake(root), "linked/shared/documentz")
    assert "did you mean 'demo/documents'?" in _message(Lake(root), "demo/document")
    assert Lake(root).tables() == ["deep/a/b/c/documents", "demo/documents", "linked/shared/documents"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc on this system")
def test_a_lake_pointed_at_proc_names_the_missing_table() -> None:
    """`source_lake: /proc` in a manifest: the listing error of /proc/1 or an endless walk used to
    take the place of the one line that matters."""
    message = _message(Lake("/proc"), "demo/augmented")
    assert message.startswith("no table 'demo/augmented' in lake /proc")


def test_a_version_whose_commit_is_damaged_is_not_called_missing(tmp_path: Path) -> None:
    """The report and `tables` used to say "has no version 1" of a version that is there but damaged."""
    root = tmp_path / "lake"
    _table(root / "demo" / "documents")
    write_deltalake(
        str(root / "demo" / "documents"), pa.table({"doc_id": ["b"], "text": ["y"]}), mode="append"
    )
    (root / "demo" / "documents" / "_delta_log" / f"{1:020d}.json").write_text("{not json")
    lake = Lake(root)
    with pytest.raises(TableMissingError) as damaged:
        lake.delta("demo/documents", version=1)
    assert "has version 1, but it cannot be read" in str(damaged.value)
    with pytest.raises(TableMissingError) as missing:
        lake.delta("demo/documents", version=5)
    assert "has no version 5" in str(missing.value)
