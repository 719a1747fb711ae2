"""sqlglot's tree of a user rule -> our Node tree, refusing whatever is outside the documented subset.

Kept apart from `curation.expressions` so that only the driver, which validates specs, imports
sqlglot; workers evaluate the Node tree they are sent.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from curation.expressions.tree import Expression, ExpressionError, Node

# sqlglot's class names -> ours.
CAST_TARGETS = {"INT": "int", "BIGINT": "bigint", "DOUBLE": "double", "BOOLEAN": "boolean", "TEXT": "string"}
COMPARISONS = {"EQ": "=", "NEQ": "<>", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}
ARITHMETIC = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}
STRING_FUNCTIONS = {"Lower": "lower", "Upper": "upper", "Trim": "trim"}

SUPPORTED = (
    "columns, literals, = <> != < <= > >=, AND, OR, NOT, IN (...), BETWEEN, IS [NOT] NULL, LIKE, "
    "+ - * /, length, lower, upper, trim, coalesce, get_json_object, TRY_CAST"
)


def _unsupported(e: exp.Expression) -> ExpressionError:
    return ExpressionError(f"`{e.sql(dialect='spark')}` is not supported; rules may use {SUPPORTED}")


def _literal(e: exp.Expression) -> Node:
    if isinstance(e, exp.Null):
        return Node("lit", value=None)
    if isinstance(e, exp.Boolean):
        return Node("lit", value=bool(e.this))
    if e.is_string:
        return Node("lit", value=e.this)
    text = e.this
    is_int = text.isdigit()
    return Node("lit", value=int(text) if is_int else float(text))


def _string_literal(e: exp.Expression | None, what: str) -> str:
    if not isinstance(e, exp.Literal) or not e.is_string:
        raise ExpressionError(f"{what} must be a string literal")
    return e.this


def _json_path(path: exp.Expression) -> tuple[str | int, ...]:
    """`$.a.b[0]` as ('a', 'b', 0); wildcards, slices and filters are refused."""
    if not isinstance(path, exp.JSONPath):
        raise ExpressionError("get_json_object's path must be a string literal such as '$.a.b'")
    parts: list[str | int] = []
    for part in path.expressions:
        if isinstance(part, exp.JSONPathRoot):
            continue
        key = isinstance(part, exp.JSONPathKey) and isinstance(part.this, str)
        if key or (isinstance(part, exp.JSONPathSubscript) and isinstance(part.this, int)):
            parts.append(part.this)
        else:
            raise ExpressionError(f"JSON path {path.sql(dialect='spark')}: only $.key and [index] steps")
    return tuple(parts)


def _cast(e: exp.Cast) -> Node:
    if not e.args.get("safe"):
        raise ExpressionError(
            "CAST fails the whole job on one value it cannot convert (Spark's ANSI mode); "
            "use TRY_CAST, which gives null there"
        )
    target = CAST_TARGETS.get(e.to.this.name)
    if target is None:
        raise ExpressionError(
            f"TRY_CAST to {e.to.sql(dialect='spark')}: one of INT, BIGINT, DOUBLE, BOOLEAN, STRING"
        )
    return Node("try_cast", (to_node(e.this),), target)


def _function(e: exp.Expression) -> Node | None:
    """Functions and casts; None where `e` is neither."""
    name = type(e).__name__
    if isinstance(e, exp.Cast):
        return _cast(e)
    if name in STRING_FUNCTIONS:
        if any(e.args.get(k) for k in ("position", "expression", "collation")):
            raise _unsupported(e)
        return Node(STRING_FUNCTIONS[name], (to_node(e.this),))
    if isinstance(e, exp.Length):
        return Node("length", (to_node(e.this),))
    if isinstance(e, exp.Coalesce):
        return Node("coalesce", tuple(to_node(a) for a in [e.this, *e.expressions]))
    if isinstance(e, exp.JSONExtractScalar):
        return Node("json", (to_node(e.this),), _json_path(e.expression))
    return None


def _predicate(e: exp.Expression) -> Node | None:
    """Comparisons, IN, BETWEEN, IS NULL, LIKE and the logic joining them; None where `e` is none of these."""
    name = type(e).__name__
    if name in COMPARISONS:
        return Node("cmp", (to_node(e.this), to_node(e.expression)), COMPARISONS[name])
    if isinstance(e, exp.And | exp.Or):
        return Node(name.lower(), (to_node(e.this), to_node(e.expression)))
    if isinstance(e, exp.Not):
        return Node("not", (to_node(e.this),))
    if isinstance(e, exp.In):
        if e.args.get("query") or e.args.get("unnest") or e.args.get("field"):
            raise _unsupported(e)
        return Node("in", (to_node(e.this), *[_in_item(i) for i in e.expressions]))
    if isinstance(e, exp.Between):
        return Node("between", (to_node(e.this), to_node(e.args["low"]), to_node(e.args["high"])))
    if isinstance(e, exp.Is) and isinstance(e.expression, exp.Null):
        return Node("is_null", (to_node(e.this),))
    if isinstance(e, exp.Like) and not e.args.get("escape"):
        like = Node("like", (to_node(e.this),), _string_literal(e.expression, "LIKE's pattern"))
        return Node("not", (like,)) if e.args.get("negate") else like
    return None


def _in_item(e: exp.Expression) -> Node:
    node = to_node(e)
    if node.op != "lit":
        raise ExpressionError(f"IN lists literals only, not `{e.sql(dialect='spark')}`")
    return node


def to_node(e: exp.Expression) -> Node:
    """Our Node for sqlglot's `e`, or ExpressionError naming the construct that is not supported."""
    if isinstance(e, exp.Paren):
        return to_node(e.this)
    if isinstance(e, exp.Column):
        if e.table:
            raise ExpressionError(f"`{e.sql(dialect='spark')}`: name a column of the table, without a prefix")
        return Node("col", value=e.name)
    if isinstance(e, exp.Literal | exp.Boolean | exp.Null):
        return _literal(e)
    if isinstance(e, exp.Neg):
        return Node("neg", (to_node(e.this),))
    if type(e).__name__ in ARITHMETIC:
        return Node("arith", (to_node(e.this), to_node(e.expression)), ARITHMETIC[type(e).__name__])
    node = _predicate(e) or _function(e)
    if node is None:
        raise _unsupported(e)
    return node


def parse(text: str) -> Expression:
    """Parse `text` (Spark SQL) into an Expression, or raise ExpressionError saying what is not supported."""
    if not text.strip():
        raise ExpressionError("the expression is empty")
    try:
        parsed = sqlglot.parse(text, dialect="spark")
    except ParseError as exc:
        raise ExpressionError(
            f"not valid Spark SQL: {exc.errors[0]['description'] if exc.errors else exc}"
        ) from None
    if len(parsed) != 1 or parsed[0] is None:
        raise ExpressionError("one expression, without `;`")
    return Expression(text, to_node(parsed[0]))
