"""A PII-dense page goes through the scan/redact path in time linear in its findings.

Why: the rules compared every finding with every other and presidio-anonymizer rebuilt the
whole text for every replacement, so one 5 MB line of addresses and phone numbers never
finished (>400 s; 500 KB took 29 s) and would stall the Spark task holding it. This page of
1 MB holds about 97,000 findings: the pairwise code needed minutes for it (about 850 million
comparisons in the phone rule alone, and 97,000 copies of a megabyte), the indexed code
takes seconds. No time is asserted; a regression shows as a test that hangs.
"""

from __future__ import annotations

from pii.kernel import redact_texts
from pii.settings import PiiSettings

UNIT = " ".join([f"u{i}@ex.com" for i in range(9)] + ["tel 555-0199"]) + " "


def test_a_megabyte_line_of_addresses_and_phones_is_redacted_whole():
    units = 1_000_000 // len(UNIT)
    (red,) = redact_texts([UNIT * units], PiiSettings(ner=False))
    assert red["scope"] == "patterns"
    assert red["counts"] == {"EMAIL_ADDRESS": 9 * units, "PHONE_NUMBER": units}
    assert "@" not in red["text"] and "555" not in red["text"]
    assert all(red["text"][s["start"] : s["end"]] == f"<{s['entity_type']}>" for s in red["spans"])
    assert [s["start"] for s in red["spans"]] == sorted(s["start"] for s in red["spans"])
