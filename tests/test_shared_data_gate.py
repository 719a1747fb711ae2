"""Missing shared data is a skip on a developer's machine and a failure in CI, never a silent pass."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, missing_shared_data


def _outcome() -> BaseException:
    """What missing_shared_data raised (skip and fail are BaseExceptions that pytest.raises would pass on)."""
    try:
        missing_shared_data("data absent")
    except BaseException as exc:  # noqa: BLE001 - the outcome itself is under test
        return exc
    raise AssertionError("missing_shared_data returned")


def test_missing_data_skips_by_default(monkeypatch):
    monkeypatch.delenv("REFINERY_REQUIRE_SHARED_DATA", raising=False)
    outcome = _outcome()
    assert isinstance(outcome, pytest.skip.Exception) and "data absent" in str(outcome)


def test_missing_data_fails_where_required(monkeypatch):
    monkeypatch.setenv("REFINERY_REQUIRE_SHARED_DATA", "1")
    outcome = _outcome()
    assert isinstance(outcome, pytest.fail.Exception), type(outcome)
    assert "REFINERY_REQUIRE_SHARED_DATA=1 requires it" in str(outcome)


def test_ci_requires_shared_data():
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert "export REFINERY_REQUIRE_SHARED_DATA=1" in lines
