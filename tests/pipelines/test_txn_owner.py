"""Owner files of open write transactions: the heartbeat that keeps a writer alive to other hosts."""

from __future__ import annotations

import json
import time

import pytest

from pipelines.framework import txn_owner
from pipelines.framework.storage import Location


def test_an_open_transaction_keeps_its_heartbeat_fresh_and_leaves_no_owner(tmp_path, monkeypatch):
    monkeypatch.setattr(txn_owner, "HEARTBEAT_SECONDS", 0.2)
    root = Location.parse(tmp_path / "t")
    lease = txn_owner.open_lease(root, "c" * 32)
    first = json.loads(txn_owner.owner_location(root, "c" * 32).read_text())["heartbeat"]
    deadline = time.time() + 30
    while txn_owner.read_owners(root)["c" * 32].heartbeat == first:
        assert time.time() < deadline, "the heartbeat was never rewritten"
        time.sleep(0.1)
    lease.record_moved(["part-00000-" + "c" * 32 + ".parquet"])
    assert txn_owner.read_owners(root)["c" * 32].moved == ["part-00000-" + "c" * 32 + ".parquet"]
    assert not txn_owner.read_owners(root)["c" * 32].is_dead(time.time(), grace=0.0)  # this pid runs
    txn_owner.release_lease(root, "c" * 32)
    assert txn_owner.read_owners(root) == {}


def test_an_unreadable_owner_file_is_judged_by_its_age(tmp_path):
    root = Location.parse(tmp_path / "t")
    (root / txn_owner.STAGING / f"{'d' * 32}{txn_owner.OWNER_SUFFIX}").write_text("{not json")
    owner = txn_owner.read_owners(root)["d" * 32]
    assert not owner.is_dead(time.time(), grace=600)  # a damaged file of a live writer is spared
    assert owner.is_dead(time.time() + 601, grace=600)


def test_grace_period_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(txn_owner.GRACE_ENV, raising=False)
    assert txn_owner.grace_seconds() == txn_owner.GRACE_SECONDS
    monkeypatch.setenv(txn_owner.GRACE_ENV, "5")
    assert txn_owner.grace_seconds() == 5.0
    monkeypatch.setenv(txn_owner.GRACE_ENV, "soon")
    with pytest.raises(ValueError, match="number of seconds"):
        txn_owner.grace_seconds()
