"""User rules: a named boolean expression in Spark SQL syntax that drops the rows where it holds.

Metadata filters (a source, a suffix, a star count in `meta`) need no code: `decide` takes
`rules: [{name: short_german, drop_if: "get_json_object(meta, '$.lang') = 'de' AND char_count < 200"}]`.
The expression is parsed when the spec loads (`curation.expressions.parse`); anything outside the
documented subset (docs/curation.md, "User rules") is refused there, naming the rule. Spark and
Arrow then evaluate the same tree (`curation.expressions.tree`, `curation.expressions.arrow`), and
a rule whose expression is null on a row does not drop it (as Spark's WHERE would keep it out).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from curation.expressions.parse import parse
from curation.expressions.tree import Expression, ExpressionError
from pipelines.framework.drop_reason import DROP_REASON, register_reason

NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class UserRule(BaseModel):
    """`name`: the drop reason (lower case, digits, `_`); `drop_if`: Spark SQL, true = drop the row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="the drop reason rows get where `drop_if` holds")
    drop_if: str = Field(description="a boolean Spark SQL expression over the table's columns")

    @field_validator("name")
    @classmethod
    def _reason_name(cls, value: str) -> str:
        if not NAME.match(value) or value == DROP_REASON:
            raise ValueError(
                f"rule name {value!r}: lower-case letters, digits and `_`, starting with a letter"
            )
        return value

    @field_validator("drop_if")
    @classmethod
    def _parses(cls, value: str, info: ValidationInfo) -> str:
        try:
            parse(value)
        except ExpressionError as exc:
            raise ValueError(f"rule {info.data.get('name', '?')!r}: {exc}") from None
        return value

    def expression(self) -> Expression:
        return parse(self.drop_if)

    def register(self) -> str:
        """Register the rule's name as a drop reason described by its expression; returns the name."""
        return register_reason(self.name, f"user rule: drop if {self.drop_if}")
