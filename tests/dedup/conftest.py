"""Real documents for the dedup tests: the trafilatura evaluation pages as plain text."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.minhash_kernel import load_web_texts


@pytest.fixture(scope="session")
def web_texts(shared_data: Path) -> list[str]:
    """The ~1,000 real web pages of the trafilatura evaluation set, extracted to text (cached)."""
    return load_web_texts(shared_data)
