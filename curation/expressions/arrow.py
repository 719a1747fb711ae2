"""A user rule's tree evaluated over an Arrow batch, with Spark's results (docs/curation.md, "User rules").

Where pyarrow.compute does what Spark does, it is used (comparisons, Kleene AND/OR, LIKE,
length, arithmetic with overflow checks, as Spark's ANSI mode). Where Spark's definition
is its own, it is written out here from what Spark 4 returns: `get_json_object` (Jackson's
re-serialisation: compact JSON, doubles as Java prints them, JSON null as SQL null),
`TRY_CAST` from strings (Java's number syntax, whitespace trimmed), `trim` (spaces only)
and `lower`/`upper` (full case mapping: "ß" -> "SS"). tests/curation/test_user_rules.py
runs every construct through both and compares.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from curation.expressions.tree import Node

Value = pa.Array | pa.ChunkedArray | pa.Scalar
_COMPARE = {
    "=": pc.equal,
    "<>": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}
_ARITH = {"+": pc.add_checked, "-": pc.subtract_checked, "*": pc.multiply_checked}
_INT = re.compile(r"[+-]?\d+")
_DOUBLE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[dDfF]?")
_SPECIAL_DOUBLES = {"nan": math.nan, "inf": math.inf, "infinity": math.inf}
_TRUE, _FALSE = {"t", "true", "y", "yes", "1"}, {"f", "false", "n", "no", "0"}
_RANGES = {"int": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}
_TYPES = {
    "int": pa.int32(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "string": pa.string(),
}


def evaluate(node: Node, batch: pa.RecordBatch | pa.Table) -> pa.Array | pa.ChunkedArray:
    """The boolean column `node` computes over `batch` (null where Spark's would be null)."""
    value = _eval(node, batch)
    if isinstance(value, pa.Scalar):
        return pa.array([value.as_py()] * batch.num_rows, pa.bool_())
    return value


def _eval(node: Node, batch: pa.RecordBatch | pa.Table) -> Value:
    args = [_eval(arg, batch) for arg in node.args]
    match node.op:
        case "col":
            return batch.column(node.value)
        case "lit":
            return pa.scalar(node.value)
        case "cmp":
            return _COMPARE[node.value](*_numeric_alike(args))
        case "and" | "or":
            return (pc.and_kleene if node.op == "and" else pc.or_kleene)(*_bools(args))
        case "not":
            return pc.invert(*_bools(args))
        case "in":
            return _in(args[0], args[1:])
        case "between":
            low, high = pc.greater_equal(*_numeric_alike(args[:2])), pc.less_equal(*_numeric_alike(args[::2]))
            return pc.and_kleene(low, high)
        case "is_null":
            return (
                pc.is_null(args[0]) if not isinstance(args[0], pa.Scalar) else pa.scalar(not args[0].is_valid)
            )
        case "like":
            return pc.match_like(_strings(args[0]), node.value)
        case "arith":
            return _arith(node.value, *_numeric_alike(args))
        case "neg":
            return pc.negate_checked(*_numeric_alike(args))
        case "length":
            return pc.utf8_length(_strings(args[0])).cast(pa.int32())
        case "coalesce":
            return pc.coalesce(*_numeric_alike(args))
    return _per_value(node, args[0])


def _per_value(node: Node, arg: Value) -> Value:
    """Operations Spark defines its own way, applied value by value in Python."""
    functions: dict[str, tuple[Callable[[Any], Any], pa.DataType]] = {
        "lower": (str.lower, pa.string()),
        "upper": (str.upper, pa.string()),
        "trim": (lambda s: s.strip(" "), pa.string()),
        "json": (lambda s: json_value(s, node.value), pa.string()),
    }
    if node.op == "try_cast":
        fn, out = (lambda v: try_cast(v, node.value)), _TYPES[node.value]
    else:
        fn, out = functions[node.op]
    if isinstance(arg, pa.Scalar):
        value = arg.as_py()
        return pa.scalar(None if value is None else fn(value), out)
    return pa.array([None if v is None else fn(v) for v in arg.to_pylist()], out)


def _bools(args: list[Value]) -> list[Value]:
    return [a.cast(pa.bool_()) if a.type == pa.null() else a for a in args]


def _strings(value: Value) -> Value:
    return value.cast(pa.string()) if value.type == pa.null() else value


def _numeric_alike(args: list[Value]) -> list[Value]:
    """Operands brought to one type: ints and doubles meet as doubles (as Spark widens them)."""
    types = [a.type for a in args if a.type != pa.null()]
    if not types:  # only NULLs: any type gives null; int64 is one every operation here accepts
        return [a.cast(pa.int64()) for a in args]
    if all(pa.types.is_integer(t) for t in types):
        target = pa.int64()
    elif all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types):
        target = pa.float64()
    else:
        target = types[0]
    return [a.cast(target) for a in args]


def _in(value: Value, items: list[Value]) -> Value:
    """`value IN (items)`: true on a match, else null if the value or an item is null, else false."""
    hits = [pc.equal(*_numeric_alike([value, item])) for item in items]
    out = hits[0]
    for hit in hits[1:]:
        out = pc.or_kleene(out, hit)
    return out


def _arith(op: str, left: Value, right: Value) -> Value:
    if op != "/":
        return _ARITH[op](left, right)
    left, right = left.cast(pa.float64()), right.cast(pa.float64())
    zero = pc.equal(right, 0.0)
    return pc.if_else(zero, pa.scalar(None, pa.float64()), pc.divide(left, right))


# ------------------------------------------------------------------ Spark's own definitions
def try_cast(value: Any, target: str) -> Any:
    """Spark's TRY_CAST of one non-null value: null where Spark's ANSI cast would fail."""
    if target == "string":
        return value if isinstance(value, str) else java_text(value)
    if isinstance(value, str):
        return _from_string(value.strip("".join(map(chr, range(33)))), target)
    if target == "double":
        return float(value)
    number = math.trunc(value) if isinstance(value, float) and math.isfinite(value) else value
    low, high = _RANGES[target]
    return number if isinstance(number, int) and low <= number <= high else None


def _from_string(text: str, target: str) -> Any:
    if target == "boolean":
        lowered = text.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else None
    if target == "double":
        special = _SPECIAL_DOUBLES.get(text.lstrip("+-").lower())
        if special is not None:
            return -special if text.startswith("-") else special
        return float(text.rstrip("dDfF")) if _DOUBLE.fullmatch(text) else None
    if not _INT.fullmatch(text):
        return None
    low, high = _RANGES[target]
    number = int(text)
    return number if low <= number <= high else None


def java_text(value: Any) -> str:
    """A JSON/SQL scalar as Spark prints it: doubles as Java's Double.toString ("1.0E20", "2.0")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, float):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(value)
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    shown = "".join(map(str, digits)).rstrip("0") or "0"
    power = len(digits) + int(exponent) - 1
    mantissa = shown[0] + "." + (shown[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{power}"


def _json_text(value: Any) -> str:
    """Compact JSON as Jackson writes it back (no spaces, non-ASCII as is, doubles as Java prints them)."""
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_json_text(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "null" if value is None else java_text(value)


def json_value(text: str, path: tuple[str | int, ...]) -> str | None:
    """Spark's get_json_object: the value at `path` (strings unquoted, the rest as compact JSON), null if
    the text is not JSON, the path is absent, or a key there holds JSON null."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    for step in path:
        if (
            isinstance(step, int)
            and isinstance(value, list)
            and step < len(value)
            or isinstance(step, str)
            and isinstance(value, dict)
            and step in value
        ):
            value = value[step]
        else:
            return None
    if value is None:  # Spark: null for a key holding JSON null, the text "null" for an array element
        return "null" if path and isinstance(path[-1], int) else None
    return value if isinstance(value, str) else _json_text(value)
