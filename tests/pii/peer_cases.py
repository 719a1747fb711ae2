"""Read presidio-analyzer's recognizer test cases (inputs and expected spans) from its test files.

The files are parsed, never imported or executed: each `pytest.mark.parametrize`
list whose rows are literals yields (text, expected spans) for one entity.
"""

from __future__ import annotations

import ast
from pathlib import Path

# test file -> (entity, name of the positions argument)
PEER_FILES = {
    "test_email_recognizer.py": ("EMAIL_ADDRESS", "expected_positions"),
    "test_phone_recognizer.py": ("PHONE_NUMBER", "expected_positions"),
    "test_ip_recognizer.py": ("IP_ADDRESS", "expected_positions"),
    "test_credit_card_recognizer.py": ("CREDIT_CARD", "expected_res"),
    "test_iban_recognizer.py": ("IBAN_CODE", "expected_res"),
    "test_us_ssn_recognizer.py": ("US_SSN", "expected_positions"),
    "test_crypto_recognizer.py": ("CRYPTO", "expected_positions"),
    "test_spacy_recognizer.py": ("PERSON", "expected_positions"),
}


def _spans(value) -> list[tuple[int, int]]:
    """Positions written as ((s, e), ...) or as a list of (s, e) pairs; other shapes yield []."""
    out = []
    for item in value or ():
        if isinstance(item, (tuple, list)) and len(item) >= 2 and all(isinstance(x, int) for x in item[:2]):
            out.append((item[0], item[1]))
    return out


def peer_cases(tests_dir: Path) -> list[tuple[str, str, str, int, list[tuple[int, int]]]]:
    """(file, entity, text, expected count, expected spans) for every literal parametrized case."""
    cases = []
    for name, (entity, pos_arg) in PEER_FILES.items():
        tree = ast.parse((tests_dir / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "parametrize"):
                continue
            names = [n.strip() for n in ast.literal_eval(node.args[0]).split(",")]
            if pos_arg not in names or "expected_len" not in names:
                continue
            for row in node.args[1].elts:
                try:
                    values = dict(zip(names, ast.literal_eval(row), strict=True))
                except (ValueError, SyntaxError, TypeError):
                    continue
                if values.get("leniency", 1) != 1 or values.get("entity_num", 0) != 0:
                    continue  # other leniencies / the DATE_TIME rows of the spaCy tests: not our configuration
                if values.get("entities") not in (None, [entity]):
                    continue
                text = values.get("text", values.get("iban"))
                cases.append((name, entity, text, values["expected_len"], _spans(values[pos_arg])))
    return cases
