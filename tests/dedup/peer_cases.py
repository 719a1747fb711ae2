"""Read other projects' dedup test cases (inputs, parameters, expected outputs) from their test files.

The peer suites under ../shared/data/peer-tests are oracles, not code to run: we
parse their test modules with `ast`, take the literal inputs and expected results
of each test function, and feed them to our implementation.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class PeerCase:
    name: str
    inputs: list[Any]
    expected: list[Any]
    params: dict[str, Any] = field(default_factory=dict)


class _Placeholders(ast.NodeTransformer):
    """`self.img3_path` -> the string "img3" so that image cases become literals."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if isinstance(node.value, ast.Name) and node.value.id == "self" and node.attr.endswith("_path"):
            return ast.copy_location(ast.Constant(node.attr[: -len("_path")]), node)
        return self.generic_visit(node)


def _literal(node: ast.AST) -> Any:
    return ast.literal_eval(_Placeholders().visit(node))


def datajuicer_cases(path: Path, op_name: str) -> list[PeerCase]:
    """Every `test_*` with `ds_list`, `tgt_list` and an `op = <op_name>(...)` call."""
    tree = ast.parse(path.read_text())
    cases = []
    for fn in ast.walk(tree):
        if not (isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_")):
            continue
        values: dict[str, Any] = {}
        params: dict[str, Any] | None = None
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                target = node.targets[0].id
                if target in ("ds_list", "tgt_list"):
                    values[target] = _literal(node.value)
                elif target == "op" and isinstance(node.value, ast.Call):
                    call = node.value
                    if isinstance(call.func, ast.Name) and call.func.id == op_name:
                        params = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        if params is not None and {"ds_list", "tgt_list"} <= values.keys():
            cases.append(PeerCase(fn.name, values["ds_list"], values["tgt_list"], params))
    return cases


def assigned(
    path: Path, name: str, function: str | None = None, constructors: dict[str, Any] | None = None
) -> Any:
    """The value assigned to `name` at module level (or first inside `function`).

    `constructors` stand in for the peer's classes (e.g. `Document`) while evaluating.
    """
    tree = ast.parse(path.read_text())
    scope: list[ast.stmt] = tree.body
    if function is not None:
        scope = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function).body
    for node in scope:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            expr = ast.Expression(node.value)
            return eval(compile(expr, str(path), "eval"), {"__builtins__": {}}, dict(constructors or {}))  # noqa: S307
    raise KeyError(f"{name} not found in {path}")
