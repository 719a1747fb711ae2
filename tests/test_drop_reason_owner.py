"""Only `pipelines/framework/drop_reason.py` spells the column name "drop_reason" in code.

Why (docs/architecture.md, "Rows are never deleted"): the first-reason-wins
rule used to be written five ways in five modules; with one owner, a module that needs the column
imports `DROP_REASON` or one of the owner's forms, and this test keeps a sixth copy from growing.
Docstrings and comments may name the column; string literals in code (a column name, a SQL
expression, a field description) may not. `drop_reasons`, decide's list of every failing rule,
is another column and not matched, nor is the owner's own path or module name.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "curation", "dedup", "pii", "training", "jobs", "benchmarks")
OWNER = "pipelines/framework/drop_reason.py"
# The word, but not inside a module path or dotted name (pipelines/framework/drop_reason.py).
COLUMN = re.compile(r"(?<![\w/.])drop_reason(?!\w|\.py)")


def docstring_spans(tree: ast.AST) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of every module, class and function docstring."""
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
                spans.append(((first.lineno, first.col_offset), (first.end_lineno, first.end_col_offset)))
    return spans


def literals_naming_the_column(source: str) -> list[int]:
    """Line numbers of string literals, docstrings excepted, that hold the word `drop_reason`."""
    spans = docstring_spans(ast.parse(source))
    lines = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.STRING or not COLUMN.search(token.string):
            continue
        if not any(start <= token.start <= end for start, end in spans):
            lines.append(token.start[0])
    return sorted(set(lines))


def offenders(root: Path = REPO, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative != OWNER:
                source = path.read_text(encoding="utf-8")
                lines = source.splitlines()
                found += [
                    f"{relative}:{line}  {lines[line - 1].strip()[:90]}"
                    for line in literals_naming_the_column(source)
                ]
    return found


def test_no_module_but_the_owner_spells_drop_reason() -> None:
    found = offenders()
    if found:
        pytest.fail(
            "string literals naming drop_reason outside its owner (import DROP_REASON or a form of "
            f"{OWNER} instead):\n  " + "\n  ".join(found),
            pytrace=False,
        )


def test_the_check_tells_code_from_docstrings_and_comments() -> None:
    source = (
        '"""Module docstring about drop_reason."""\n'
        "def f():\n"
        '    """Sets drop_reason."""\n'
        "    # drop_reason in a comment\n"
        '    return col("drop_reason"), "drop_reasons"\n'
        'SQL = "drop_reason IS NULL"\n'
        "class C:\n"
        "    '''drop_reason'''\n"
        '    x = f"{DROP_REASON} is the column"\n'
        'OWNER = ("pipelines/framework/drop_reason.py", "pipelines.framework.drop_reason")\n'
    )
    assert literals_naming_the_column(source) == [5, 6]
