"""The dedup stages' parameters: pydantic only, no Spark, so that kernels and annotate can import them.

`SignatureConfig` is shared with annotate, which computes MinHash signatures in
its scan; `MinHashDedupConfig` extends it with banding, so that `minhash_dedup`
with `reuse_signatures` can check that both produce the same signatures.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dedup.kernels.minhash import MinHashSpec
from dedup.kernels.shingles import TextNorm, Tokenization
from pipelines.framework.stage import StageConfig


class ExactDedupConfig(StageConfig):
    input: str = Field("documents", description="dataset table to deduplicate")
    output: str = Field("deduped", description="dataset table written (input rows + exact_hash, dup_of)")
    key: str = Field("text", description="Spark SQL expression hashed as the duplicate key (e.g. uri)")
    nfc: bool = True
    collapse_whitespace: bool = True
    casefold: bool = True
    letters_only: bool = Field(False, description="drop punctuation, digits and spaces before hashing")
    priority: str | None = Field(None, description="Spark SQL expression; the highest value is kept")
    include_dropped: bool = False
    against: str | None = Field(None, description="table of an existing corpus: its documents win")

    @field_validator("key", "priority")
    @classmethod
    def _one_expression(cls, value: str | None) -> str | None:
        if value is not None:
            sql_columns(value)
        return value

    def columns(self) -> list[tuple[str, str]]:
        """(field, column) for every input column `key` and `priority` read: the stage checks them
        against its tables before Spark analyses the expressions."""
        fields = (("key", self.key), ("priority", self.priority))
        return [(name, column) for name, text in fields if text for column in sql_columns(text)]


def sql_columns(text: str) -> list[str]:
    """The top-level columns a Spark SQL expression reads, or ValueError if `text` is not one expression.

    Checked with sqlglot when the spec is read, so that `1/0 ; DROP` or `SELECT ...` is refused
    naming its field, not by Spark's parser with a plan dump after the stages before it ran.
    """
    import sqlglot  # here, not at the top: annotate's workers import this module for SignatureConfig
    from sqlglot import exp
    from sqlglot.errors import ParseError

    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its "falling back to a Command" warning
    try:
        parsed = sqlglot.parse(text, dialect="spark")
    except ParseError as exc:
        where = exc.errors[0] if exc.errors else {}
        raise ValueError(
            f"{text!r} is not a Spark SQL expression: {where.get('description', exc)} "
            f"at column {where.get('col', '?')}"
        ) from None
    node = parsed[0] if len(parsed) == 1 else None
    if node is None or not isinstance(node.unalias(), exp.Condition) or node.find(exp.Query) is not None:
        raise ValueError(
            f"{text!r} is not one Spark SQL expression over the table's columns (such as `uri` or "
            "`replace(uri, '2', '')`; no `;`, statement or subquery)"
        )
    return list(dict.fromkeys(c.parts[0].name for c in node.find_all(exp.Column) if not c.is_star))


class SignatureConfig(BaseModel):
    """What a MinHash signature depends on, apart from banding: `annotate` computes signatures
    with these settings in its scan (`minhash: {...}`), and `minhash_dedup` with
    `reuse_signatures` checks that its own settings produce the same ones."""

    model_config = ConfigDict(extra="forbid")

    num_perm: int = Field(112, ge=2, le=1024)
    ngram: int = Field(5, ge=1)
    seed: int = 1
    tokenization: Tokenization = "words"
    lowercase: bool = True
    numbers: bool = True
    punctuation: bool = True
    diacritics: bool = True

    def signature_spec(self) -> MinHashSpec:
        """The spec for signatures only (banding is the dedup stage's business)."""
        norm = TextNorm(self.lowercase, self.numbers, self.punctuation, self.diacritics)
        return MinHashSpec(
            num_perm=self.num_perm,
            bands=1,
            rows=1,
            seed=self.seed,
            ngram=self.ngram,
            tokenization=self.tokenization,
            norm=norm,
        )


class MinHashDedupConfig(StageConfig, SignatureConfig):
    input: str = Field("deduped", description="dataset table to deduplicate")
    output: str = Field("deduped", description="dataset table written (input rows + minhash, dup_cluster)")
    text_column: str = "text"
    threshold: float | None = Field(None, gt=0, lt=1, description="derive bands x rows from this Jaccard")
    bands: int | None = Field(None, ge=1)
    rows: int | None = Field(None, ge=1)
    verify: bool = Field(False, description="keep a candidate pair only if estimated Jaccard >= threshold")
    reuse_signatures: bool = Field(
        False, description="use the minhash column annotate computed (checked against these settings)"
    )
    include_dropped: bool = False
    against: str | None = Field(None, description="curated table with stored minhash: its documents win")
    max_rounds: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _bands_or_threshold(self) -> MinHashDedupConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError(
                "give bands and rows together (or neither, with threshold or the 14 x 8 default)"
            )
        if self.bands is not None and self.threshold is not None and not self.verify:
            raise ValueError(
                "give either threshold or bands x rows (threshold with bands only when verify is on)"
            )
        if self.verify and self.threshold is None:
            raise ValueError("verify needs threshold (the estimated Jaccard a pair must reach)")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    def spec(self) -> MinHashSpec:
        base = self.signature_spec()
        common = {
            "seed": base.seed,
            "ngram": base.ngram,
            "tokenization": base.tokenization,
            "norm": base.norm,
        }
        if self.bands is not None:
            return MinHashSpec(num_perm=self.num_perm, bands=self.bands, rows=self.rows, **common)
        if self.threshold is not None:
            return MinHashSpec.for_threshold(self.threshold, self.num_perm, **common)
        bands = min(14, self.num_perm)
        return MinHashSpec(num_perm=self.num_perm, bands=bands, rows=min(8, self.num_perm // bands), **common)


class LineDedupConfig(StageConfig):
    input: str = Field("deduped", description="dataset table whose texts lose repeated lines")
    output: str = Field("deduped", description="dataset table written (text rewritten + lines_removed)")
    min_docs: int = Field(10, ge=2, description="a line found in at least this many documents is removed")
    text_column: str = "text"
    empty_reason: str = Field(
        "boilerplate_only", description="the drop reason of documents left without text"
    )
    include_dropped: bool = False


class ImageDedupConfig(StageConfig):
    input: str = Field("images", description="dataset images table")
    output: str = Field("images_deduped", description="images table written (+ hashes, dup_cluster)")
    quarantine: str = Field("quarantine", description="table that receives undecodable images")
    max_distance: int = Field(
        4, ge=0, le=15, description="largest pHash and dHash Hamming distance of near copies"
    )
    perceptual: bool = Field(True, description="also find resized/recompressed copies, not only exact ones")
    include_dropped: bool = False
