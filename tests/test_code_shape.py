"""Sizes a reader can hold in their head: no module over 400 lines, no function over 60.

Why (docs/architecture.md, "Rooms and what each may import"): a module is named for the one thing
it holds, and a function does one thing; past these sizes they have in practice grown a second
one. The failure lists every offender with its size, largest first, so it reads as a to-do list.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "curation", "dedup", "pii", "training", "jobs")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def source_files(root: Path = REPO, packages: tuple[str, ...] = PACKAGES) -> list[Path]:
    return sorted(path for package in packages for path in (root / package).rglob("*.py"))


def long_modules(paths: list[Path], root: Path = REPO) -> list[tuple[int, str]]:
    """(lines, path) of each module longer than the limit."""
    sizes = ((len(path.read_text(encoding="utf-8").splitlines()), path) for path in paths)
    return [(lines, path.relative_to(root).as_posix()) for lines, path in sizes if lines > MAX_MODULE_LINES]


def long_functions(paths: list[Path], root: Path = REPO) -> list[tuple[int, str]]:
    """(lines, path:line qualified.name) of each function, method or nested function over the limit.

    A function's size runs from its `def` line to its last line, docstring included; a nested
    function counts within its parent too, as it does for a reader.
    """
    found = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, node in functions(tree):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                found.append((lines, f"{path.relative_to(root).as_posix()}:{node.lineno} {name}"))
    return found


def functions(
    tree: ast.AST, prefix: str = ""
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function under `tree` with its qualified name (`Class.method`, `outer.inner`)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{node.name}"
            if not isinstance(node, ast.ClassDef):
                yield name, node
            yield from functions(node, f"{name}.")
        else:
            yield from functions(node, prefix)


def report(offenders: list[tuple[int, str]], unit: str) -> str:
    return "\n".join(f"  {size:5d} {unit}  {where}" for size, where in sorted(offenders, reverse=True))


def test_no_module_over_400_lines() -> None:
    offenders = long_modules(source_files())
    if offenders:
        pytest.fail(f"modules over {MAX_MODULE_LINES} lines:\n" + report(offenders, "lines"), pytrace=False)


def test_no_function_over_60_lines() -> None:
    offenders = long_functions(source_files())
    if offenders:
        pytest.fail(
            f"functions over {MAX_FUNCTION_LINES} lines:\n" + report(offenders, "lines"), pytrace=False
        )


def test_the_limits_catch_what_they_are_about(tmp_path: Path) -> None:
    """Guards the guard: a long module and a long nested method are both reported, a short one not."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "big.py").write_text(
        f"class C:\n    def m(self):\n        def inner():\n{body.replace('    ', '            ')}\n"
        + "\n" * MAX_MODULE_LINES,
        encoding="utf-8",
    )
    (package / "small.py").write_text("def f():\n    return 1\n", encoding="utf-8")
    paths = source_files(tmp_path, ("pkg",))
    assert [where for _, where in long_modules(paths, tmp_path)] == ["pkg/big.py"]
    assert [where for _, where in long_functions(paths, tmp_path)] == [
        "pkg/big.py:2 C.m",
        "pkg/big.py:3 C.m.inner",
    ]
