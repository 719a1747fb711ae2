"""Text that Python holds but UTF-8 cannot: lone surrogates, and what each consumer does with them.

JSON's `"\\ud800"` escapes and surrogate-escaped file names or arguments (`$'\\xff'`)
give Python strings that no UTF-8 encoder accepts, so Arrow, fastText's binding,
lingua and CLD2 all raise on them. Ingest keeps them losslessly as escapes or
quarantines the record; a model that only has to read the text gets "?" instead.
"""

from __future__ import annotations


def has_lone_surrogates(text: str) -> bool:
    """Whether `text` holds surrogate code points, which no UTF-8 (hence no Arrow string) can hold.
    JSON's `"\\ud800"` and surrogate-escaped file names both produce them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def arrow_text(text: str) -> str:
    """`text` fit for an Arrow string column: lone surrogates shown as `\\udcNN` escapes."""
    if not has_lone_surrogates(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def encodable(text: str) -> str:
    """`text` with every lone surrogate replaced by "?", for a model that only reads it."""
    return text.encode("utf-8", "replace").decode("utf-8")
