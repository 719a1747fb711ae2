"""A storage emulator that is not installed is a skip on a developer's machine and a failure in CI."""

from __future__ import annotations

import pytest

from tests.child_server import missing_emulator
from tests.conftest import REPO


def _outcome() -> BaseException:
    try:
        missing_emulator("Azurite is not installed")
    except BaseException as exc:  # noqa: BLE001 - the outcome itself is under test
        return exc
    raise AssertionError("missing_emulator returned")


def test_missing_emulator_skips_by_default(monkeypatch):
    monkeypatch.delenv("REFINERY_REQUIRE_EMULATORS", raising=False)
    outcome = _outcome()
    assert isinstance(outcome, pytest.skip.Exception) and "Azurite" in str(outcome)


def test_missing_emulator_fails_where_required(monkeypatch):
    monkeypatch.setenv("REFINERY_REQUIRE_EMULATORS", "1")
    outcome = _outcome()
    assert isinstance(outcome, pytest.fail.Exception), type(outcome)
    assert "REFINERY_REQUIRE_EMULATORS=1 requires it" in str(outcome)


def test_ci_requires_emulators():
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert "export REFINERY_REQUIRE_EMULATORS=1" in lines
