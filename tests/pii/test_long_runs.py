"""Overlong whitespace-free runs cannot stall the analyzers nor hide the PII around them.

Presidio's email pattern is quadratic on a run of "x.x.x" (10,000 characters took 42 s) and gives up
after 60 s with only a log line; spaCy's tokenizer, run first, is quadratic on a run of leading
punctuation. The analyzers now read such runs cut every PIECE characters (pii/long_runs.py).
"""

from __future__ import annotations

import pytest

from pii.cli import load_settings
from pii.engine import get_analyzer
from pii.long_runs import LONG_RUN, PIECE, bounded_runs


def test_only_overlong_runs_are_cut_and_the_text_keeps_its_length():
    url = "https://example.com/" + "a/b" * 300  # 920 characters: a long URL is left whole
    assert bounded_runs(f"see {url} now") == f"see {url} now"
    run = "x." * 2_000
    cut = bounded_runs(f"mail {run} me")
    assert len(cut) == len(f"mail {run} me") and cut.startswith("mail x.") and cut.endswith(" me")
    pieces = cut[5:-3].split(" ")
    assert len(pieces) == -(-len(run) // PIECE) and max(map(len, pieces)) <= PIECE
    assert "".join(pieces) == "".join(run[i] for i in range(len(run)) if i == 0 or i % PIECE)
    assert bounded_runs("y" * LONG_RUN) == "y" * LONG_RUN


@pytest.mark.parametrize("run", ["x" + ".x" * 50_000, "{" * 60_000 + "x", "1." * 50_000])
def test_pii_after_a_hostile_run_is_found_at_its_own_offsets(run: str):
    analyzer = get_analyzer(load_settings(None, ner=False))
    text = f"{run} write to jane.doe@example.com or call 212-555-0100"
    found = {(r.entity_type, text[r.start : r.end]) for r in analyzer.analyze(text)}
    assert ("EMAIL_ADDRESS", "jane.doe@example.com") in found
    assert ("PHONE_NUMBER", "212-555-0100") in found
