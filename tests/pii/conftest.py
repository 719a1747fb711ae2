"""Fixtures for the PII tests: the real data paths and analyzers built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from pii.settings import PiiSettings


@pytest.fixture(scope="session")
def presidio_tests(shared_data: Path) -> Path:
    return shared_data / "peer-tests" / "presidio_analyzer" / "presidio-analyzer" / "tests"


@pytest.fixture(scope="session")
def generated_small(shared_data: Path) -> list[dict]:
    from pii.evaluate import load_samples

    return load_samples(shared_data / "pii" / "presidio-research" / "generated_small.json")


@pytest.fixture(scope="session")
def settings() -> PiiSettings:
    return PiiSettings()


@pytest.fixture(scope="session")
def analyzer(settings):
    from pii.engine import get_analyzer

    return get_analyzer(settings)
