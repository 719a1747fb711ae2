"""The parsed form of a user rule (docs/curation.md, "User rules"): a small tree, its Spark SQL, its kinds.

`curation.expressions.parse` builds the tree from Spark SQL text (driver side, with sqlglot);
`curation.expressions.arrow` evaluates it over Arrow batches (workers); `to_sql` writes it
back as the Spark SQL the `decide` stage runs. Writing the SQL back, rather than passing the
user's text on, is what makes the two agree: decimals become doubles and `/` becomes
`try_divide`, so neither side sees a type or an error the other does not. `check` gives each
node a kind (number, string, boolean) against the table's schema before a row is read:
operands of a comparison must be of one kind, since Spark's ANSI mode would otherwise cast
a string to a number and fail the job on the first row that is not one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

# Kinds of values an expression computes; "null" is the type of a bare NULL, which fits any kind.
NUMBER, STRING, BOOLEAN, NULL = "number", "string", "boolean", "null"


class ExpressionError(ValueError):
    """An expression outside the supported subset, or one that does not fit the table's columns."""


@dataclass(frozen=True)
class Node:
    """One operation of a parsed expression: `op` over `args` (Nodes), with a literal `value`.

    ops: col (value = name), lit (value = Python value), cmp (value = operator), and, or, not,
    in, between, is_null, like (value = pattern), arith (value = operator), neg, length, lower,
    upper, trim, coalesce, json (value = path: keys and indexes), try_cast (value = target).
    """

    op: str
    args: tuple[Node, ...] = ()
    value: Any = None


@dataclass(frozen=True)
class Expression:
    """A validated expression: the user's text, its tree and the Spark SQL written back from it."""

    text: str
    tree: Node

    @property
    def spark_sql(self) -> str:
        return to_sql(self.tree)

    @property
    def columns(self) -> frozenset[str]:
        return frozenset(_columns(self.tree))


def _columns(node: Node) -> list[str]:
    if node.op == "col":
        return [node.value]
    return [name for arg in node.args for name in _columns(arg)]


# ------------------------------------------------------------------ Spark SQL written back
def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return f"{value}L"
    if isinstance(value, float):
        return f"{value!r}D"
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _json_path(path: tuple[str | int, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def to_sql(node: Node) -> str:
    """Spark SQL for a tree: every operand parenthesised, so precedence never depends on the writer."""
    a = [to_sql(arg) for arg in node.args]
    match node.op:
        case "col":
            return "`" + node.value.replace("`", "``") + "`"
        case "lit":
            return _sql_literal(node.value)
        case "cmp" | "and" | "or":
            op = node.value if node.op == "cmp" else node.op.upper()
            return f"({a[0]} {op} {a[1]})"
        case "arith":
            return f"try_divide({a[0]}, {a[1]})" if node.value == "/" else f"({a[0]} {node.value} {a[1]})"
        case "not" | "neg":
            return f"({'NOT' if node.op == 'not' else '-'} {a[0]})"
        case "in":
            return f"({a[0]} IN ({', '.join(a[1:])}))"
        case "between":
            return f"({a[0]} BETWEEN {a[1]} AND {a[2]})"
        case "is_null":
            return f"({a[0]} IS NULL)"
        case "like":
            return f"({a[0]} LIKE {_sql_literal(node.value)})"
        case "json":
            return f"get_json_object({a[0]}, {_sql_literal(_json_path(node.value))})"
        case "try_cast":
            return f"try_cast({a[0]} AS {node.value.upper()})"
        case _:  # length, lower, upper, trim, coalesce
            return f"{node.op}({', '.join(a)})"


# ------------------------------------------------------------------ kinds, against a schema
def column_kind(field: pa.Field) -> str:
    """The kind of a table column a rule may read; other types are refused with the column's name."""
    t = field.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return NUMBER
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return STRING
    if pa.types.is_boolean(t):
        return BOOLEAN
    raise ExpressionError(f"column {field.name!r} is {t}; rules read numbers, strings and booleans")


def _same_kind(kinds: list[str], what: str) -> str:
    known = {k for k in kinds if k != NULL}
    if len(known) > 1:
        raise ExpressionError(
            f"{what} mixes {' and '.join(sorted(known))}: compare like with like, e.g. "
            "TRY_CAST(get_json_object(meta, '$.stars') AS DOUBLE) > 10"
        )
    return known.pop() if known else NULL


def _want(kind: str, wanted: str, what: str) -> None:
    if kind not in (wanted, NULL):
        raise ExpressionError(f"{what} needs a {wanted}, not a {kind}")


def kind_of(node: Node, schema: pa.Schema) -> str:
    """The kind `node` computes over a table of `schema`; raises where operands do not fit."""
    kinds = [kind_of(arg, schema) for arg in node.args]
    match node.op:
        case "col":
            if node.value not in schema.names:
                raise ExpressionError(f"no column {node.value!r} (columns: {', '.join(schema.names)})")
            return column_kind(schema.field(node.value))
        case "lit":
            v = node.value
            return (
                NULL
                if v is None
                else BOOLEAN
                if isinstance(v, bool)
                else STRING
                if isinstance(v, str)
                else NUMBER
            )
        case "cmp" | "in" | "between":
            _same_kind(kinds, f"`{to_sql(node)}`")
            return BOOLEAN
        case "and" | "or" | "not":
            for kind in kinds:
                _want(kind, BOOLEAN, node.op.upper())
            return BOOLEAN
        case "is_null":
            return BOOLEAN
        case "like" | "length" | "lower" | "upper" | "trim" | "json":
            _want(kinds[0], STRING, node.op)
            return BOOLEAN if node.op == "like" else NUMBER if node.op == "length" else STRING
        case "arith" | "neg":
            for kind in kinds:
                _want(kind, NUMBER, f"`{to_sql(node)}`")
            return NUMBER
        case "coalesce":
            return _same_kind(kinds, f"`{to_sql(node)}`")
        case "try_cast":
            return _cast_kind(kinds[0], node.value)
    raise ExpressionError(f"unknown operation {node.op!r}")


def _cast_kind(source: str, target: str) -> str:
    if target == "boolean":
        _want(source, STRING, "TRY_CAST(... AS BOOLEAN)")
        return BOOLEAN
    if target == "string":
        return STRING
    if source == BOOLEAN:
        raise ExpressionError(f"TRY_CAST of a boolean AS {target.upper()} is not supported")
    return NUMBER


def check(expression: Expression, schema: pa.Schema) -> None:
    """Raise ExpressionError unless `expression` is a boolean over columns `schema` has, of fitting kinds."""
    kind = kind_of(expression.tree, schema)
    if kind not in (BOOLEAN, NULL):
        raise ExpressionError(f"the expression computes a {kind}, not a condition (true = drop)")
