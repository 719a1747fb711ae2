"""Missing shared data or a missing storage emulator: a skip on a developer's machine, a failure in CI."""

from __future__ import annotations

import pytest

from tests.child_server import missing_emulator
from tests.conftest import REPO, missing_shared_data

GATES = [
    pytest.param(missing_shared_data, "REFINERY_REQUIRE_SHARED_DATA", "data absent", id="shared-data"),
    pytest.param(missing_emulator, "REFINERY_REQUIRE_EMULATORS", "Azurite is not installed", id="emulator"),
]


def _outcome(gate, message: str) -> BaseException:
    """What the gate raised (skip and fail are BaseExceptions that pytest.raises would pass on)."""
    try:
        gate(message)
    except BaseException as exc:  # noqa: BLE001 - the outcome itself is under test
        return exc
    raise AssertionError(f"{gate.__name__} returned")


@pytest.mark.parametrize(("gate", "variable", "message"), GATES)
def test_missing_skips_by_default(monkeypatch, gate, variable: str, message: str):
    monkeypatch.delenv(variable, raising=False)
    outcome = _outcome(gate, message)
    assert isinstance(outcome, pytest.skip.Exception) and message in str(outcome)


@pytest.mark.parametrize(("gate", "variable", "message"), GATES)
def test_missing_fails_where_required(monkeypatch, gate, variable: str, message: str):
    monkeypatch.setenv(variable, "1")
    outcome = _outcome(gate, message)
    assert isinstance(outcome, pytest.fail.Exception), type(outcome)
    assert f"{variable}=1 requires it" in str(outcome) and message in str(outcome)


@pytest.mark.parametrize(("gate", "variable", "message"), GATES)
def test_ci_requires_it(gate, variable: str, message: str):
    assert f"export {variable}=1" in (REPO / ".ci" / "run").read_text().splitlines()
