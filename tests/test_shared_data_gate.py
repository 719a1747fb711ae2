"""Missing shared data is a skip on a developer's machine and a failure in CI, never a silent pass."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, missing_shared_data


def test_missing_data_skips_by_default(monkeypatch):
    monkeypatch.delenv("REFINERY_REQUIRE_SHARED_DATA", raising=False)
    with pytest.raises(pytest.skip.Exception, match="absent"):
        missing_shared_data("data absent")


def test_missing_data_fails_where_required(monkeypatch):
    monkeypatch.setenv("REFINERY_REQUIRE_SHARED_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="REFINERY_REQUIRE_SHARED_DATA=1 requires it"):
        missing_shared_data("data absent")


def test_ci_requires_shared_data():
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert "export REFINERY_REQUIRE_SHARED_DATA=1" in lines
