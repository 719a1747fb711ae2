"""Presidio configured explicitly and offline, and the batch analysis path built on it.

Why not `AnalyzerEngine()`: its default NLP engine downloads `en_core_web_lg`
(impossible offline) and runs the whole spaCy pipeline (tagger, parser,
lemmatizer) per document, although Presidio needs only NER entities and tokens.
Here (pii.nlp) the spaCy package is loaded once per Python worker with every component but
`ner` excluded (in en_core_web_sm the NER has its own tok2vec, so its output is
unchanged), documents are tokenized in batches and decoded by the batched NER
decoder (`pii.batched_ner`: spaCy's weights and rules, all documents of a batch in
lock step, the same entities as spaCy's own loop), and the token lower case
stands in for the lemma in context matching (Presidio's default substring
matching makes `card` match `cards` either way). Pattern recognizers run only on
documents where a cheap trigger (one regex pass over the whole batch) shows a
match is possible, and phone numbers are matched only in windows around digit
runs instead of eight full-text scans per document (pii.recognizers). Everything after that
(validation, checksums, context scoring, de-duplication) is Presidio's own code.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import spacy
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    CryptoRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    SpacyRecognizer,
    UrlRecognizer,
    UsSsnRecognizer,
)

from pii.batched_ner import UNSURE, BatchedNer, SecondOpinion
from pii.context import IndexedContextEnhancer
from pii.long_runs import bounded_runs
from pii.nlp import (
    LANGUAGE,
    NER_COMPONENT,
    PipelineNlpEngine,
    load_spacy,
    one_blas_thread,
    resolve_decoder,
)
from pii.recognizers import (
    EthereumRecognizer,
    SeparatedCardRecognizer,
    WindowedPhoneRecognizer,
    WrittenPhoneRecognizer,
)
from pii.redact import PSEUDONYM_HEX
from pii.rules import PERSON, refine, unsure_people
from pii.settings import PiiSettings
from pii.truecase import Truecaser, all_lower, english_words, load_truecaser

logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)

REGEX_FLAGS = re.DOTALL | re.MULTILINE | re.IGNORECASE
# spaCy refuses longer texts by default (1M); oversize documents are quarantined at ingest anyway.
MAX_CHARS = 10_000_000
BATCH_CHARS = 256_000

# A necessary condition for each pattern recognizer to match (Presidio matches case-insensitively):
# a document without the trigger cannot hold that entity, so its recognizer is not called.
TRIGGERS: dict[str, str] = {
    "EMAIL_ADDRESS": r"@",
    "IP_ADDRESS": r"\d\.\d|[0-9a-f]:[0-9a-f:]|::",
    "CREDIT_CARD": r"\d{4}",
    "US_SSN": r"\d{3}",
    "IBAN_CODE": r"[a-z]{2}\d{2}",
    "CRYPTO": r"(?:bc1|[13])[a-z0-9]{25}|0x[0-9a-f]{40}",
    "PHONE_NUMBER": r"\d(?:\W{0,4}\d){3}",
    "URL": r"\.[a-z]",
}


def _pattern_recognizers(settings: PiiSettings) -> list[EntityRecognizer]:
    """Presidio's predefined recognizers for the enabled pattern entities, plus the spec's custom ones."""
    builders = {
        "EMAIL_ADDRESS": EmailRecognizer,
        "PHONE_NUMBER": lambda: WindowedPhoneRecognizer(
            min_digits=settings.phone.min_digits,
            supported_regions=tuple(settings.phone.regions),
            leniency=settings.phone.leniency,
        ),
        "IP_ADDRESS": IpRecognizer,
        "CREDIT_CARD": CreditCardRecognizer,
        "IBAN_CODE": IbanRecognizer,
        "US_SSN": UsSsnRecognizer,
        "CRYPTO": CryptoRecognizer,
        "URL": UrlRecognizer,
    }
    recognizers: list[EntityRecognizer] = [builders[e]() for e in settings.entities if e in builders]
    recognizers += _refinery_recognizers(settings)
    for recognizer in recognizers:
        if isinstance(recognizer, PatternRecognizer):
            recognizer.global_regex_flags = REGEX_FLAGS  # what Presidio's registry sets on its own instances
    for custom in settings.custom:
        recognizers.append(
            PatternRecognizer(
                supported_entity=custom.name,
                name=f"custom:{custom.name}",
                patterns=[Pattern(custom.name, custom.pattern, custom.score)],
                context=custom.context or None,
            )
        )
    return recognizers


def _refinery_recognizers(settings: PiiSettings) -> list[EntityRecognizer]:
    """The recognizers refinery adds beside Presidio's (pii.recognizers), as the settings enable them."""
    added: list[EntityRecognizer] = []
    if "PHONE_NUMBER" in settings.entities and settings.phone.written:
        added.append(WrittenPhoneRecognizer(settings.phone))
    if "CREDIT_CARD" in settings.entities and settings.cards:
        added.append(SeparatedCardRecognizer())
    if "CRYPTO" in settings.entities and settings.ethereum:
        added.append(EthereumRecognizer())
    return added


def replacement_pattern(settings: PiiSettings) -> re.Pattern[str]:
    """What our own redaction writes: `<TYPE>`, `<TYPE_hex>` pseudonyms and runs of the mask character."""
    names = "|".join(re.escape(e) for e in sorted(settings.all_entities(), key=len, reverse=True))
    return re.compile(
        rf"<(?:{names})(?:_[0-9a-f]{{{PSEUDONYM_HEX}}})?>|{re.escape(settings.mask_char)}{{2,}}"
    )


def outside_replacements(
    results: list[RecognizerResult], text: str, replacements: re.Pattern[str]
) -> list[RecognizerResult]:
    """Results trimmed to the text outside earlier replacements (NER may tag `<PERSON>` itself as a name).

    This keeps re-analysis of redacted text from reporting our own placeholders, and a
    later redaction round from cutting into them.
    """
    taken = [m.span() for m in replacements.finditer(text)] if results else []
    if not taken:
        return results
    los, his = [lo for lo, _ in taken], [hi for _, hi in taken]
    # A start inside a replacement moves past it and past the ones that follow it without a gap.
    run_end = list(his)
    for k in range(len(taken) - 2, -1, -1):
        if los[k + 1] == his[k]:
            run_end[k] = run_end[k + 1]
    kept = []
    for r in results:  # bisect into the sorted, disjoint replacements: a dense page has thousands
        start, end = r.start, r.end
        k = bisect.bisect_right(los, start) - 1
        if k >= 0 and start < his[k]:
            start = run_end[k]
        k = bisect.bisect_left(his, end)
        if k < len(taken) and los[k] < end:
            end = los[k]
        if end - start > 0 and text[start:end].strip():
            r.start, r.end = start, end
            kept.append(r)
    return kept


@dataclass
class PiiAnalyzer:
    """One Presidio analyzer over a trimmed spaCy pipeline, with batch analysis."""

    settings: PiiSettings
    nlp: spacy.Language
    nlp_engine: PipelineNlpEngine
    engine: AnalyzerEngine
    triggers: dict[str, re.Pattern[str]]
    replacements: re.Pattern[str]
    decoder: BatchedNer | None = None
    decoder_reason: str = "no NER"
    truecaser: Truecaser = Truecaser()
    english: frozenset[str] = frozenset()

    def analyze_batch(
        self, texts: Sequence[str], use_ner: Sequence[bool] | None = None
    ) -> list[list[RecognizerResult]]:
        """Presidio results per text; `use_ner[i]` False analyzes text i with pattern recognizers only.

        Offsets are the texts' own; the analyzers read them with overlong runs cut (`bounded_runs`).
        """
        with one_blas_thread():
            return self._analyze_batch([bounded_runs(t) for t in texts], use_ner)

    def _analyze_batch(
        self, texts: Sequence[str], use_ner: Sequence[bool] | None
    ) -> list[list[RecognizerResult]]:
        ner_rows = list(use_ner) if use_ner is not None else [self.settings.ner] * len(texts)
        possible = self._possible_entities(texts)
        ner_entities = self.settings.ner_entities()
        out: list[list[RecognizerResult]] = [[] for _ in texts]
        for group_ner in (True, False):
            rows = [i for i, flag in enumerate(ner_rows) if bool(flag and ner_entities) == group_ner]
            if not rows:
                continue
            for batch in _batches(rows, texts, self.settings.batch_size):
                docs = self._docs([texts[i] for i in batch], group_ner)
                for i, doc in zip(batch, docs, strict=True):
                    wanted = sorted(possible[i]) + (ner_entities if group_ner else [])
                    if wanted:
                        out[i] = self._analyze_doc(texts[i], doc, wanted)
        return out

    def _docs(self, texts: list[str], ner: bool) -> Iterable[spacy.tokens.Doc]:
        """Tokenized docs, with entities set when `ner` (all-lower-case texts truecased for it first)."""
        lower = [ner and bool(self.truecaser) and all_lower(t) for t in texts]
        if any(lower):
            texts = [self.truecaser.text(t) if low else t for t, low in zip(texts, lower, strict=True)]
        if ner and self.decoder is not None:
            docs = self.decoder(list(self.nlp.tokenizer.pipe(texts)))
        else:
            docs = self.nlp.pipe(texts, batch_size=len(texts), disable=[] if ner else [NER_COMPONENT])
        if not any(lower):
            return docs
        return [self.truecaser.entities(d) if low else d for d, low in zip(docs, lower, strict=True)]

    def analyze(self, text: str, use_ner: bool | None = None) -> list[RecognizerResult]:
        return self.analyze_batch([text], None if use_ner is None else [use_ner])[0]

    def _analyze_doc(self, text: str, doc: spacy.tokens.Doc, entities: list[str]) -> list[RecognizerResult]:
        results = self.engine.analyze(
            text, language=LANGUAGE, entities=entities, nlp_artifacts=self.nlp_engine.artifacts(doc)
        )
        if PERSON in entities and UNSURE in doc.spans:
            results = results + unsure_people(text, doc.spans[UNSURE], results, self.english)
        return outside_replacements(refine(text, results, self.settings, entities), text, self.replacements)

    def _possible_entities(self, texts: Sequence[str]) -> list[set[str]]:
        """For each text, the pattern entities whose trigger occurs in it: one regex pass per trigger per batch."""
        possible: list[set[str]] = [set() for _ in texts]
        if not texts:
            return possible
        joined = "\x00".join(texts)
        starts = np.cumsum([0] + [len(t) + 1 for t in texts[:-1]])
        for entity, trigger in self.triggers.items():
            positions = [m.start() for m in trigger.finditer(joined)]
            if not positions:
                continue
            for row in np.unique(np.searchsorted(starts, positions, side="right") - 1):
                possible[int(row)].add(entity)
        return possible


def _batches(rows: list[int], texts: Sequence[str], max_docs: int) -> Iterator[list[int]]:
    """Rows in nlp.pipe batches of at most `max_docs` documents and BATCH_CHARS characters.

    Larger batches make the NER's matrix products cheaper per token (256 short documents
    run ~15% faster than 64, BENCHMARKS.md), but spaCy holds a whole batch's activations,
    so a batch of long documents is cut by size too.
    """
    batch: list[int] = []
    size = 0
    for i in rows:
        if batch and (len(batch) >= max_docs or size + len(texts[i]) > BATCH_CHARS):
            yield batch
            batch, size = [], 0
        batch.append(i)
        size += len(texts[i])
    if batch:
        yield batch


def build_analyzer(settings: PiiSettings) -> PiiAnalyzer:
    """Load the spaCy pipeline and Presidio recognizers for `settings` (slow: use `get_analyzer`)."""
    nlp = load_spacy(settings.spacy_model, settings.ner, settings.ner_blas)
    nlp.max_length = MAX_CHARS
    decoder, reason = (
        resolve_decoder(nlp, settings.ner_decoder) if settings.ner_entities() else (None, "no NER")
    )
    if (
        decoder is not None
        and settings.person.second_opinion is not None
        and PERSON in settings.ner_entities()
    ):
        decoder.second_opinion = SecondOpinion.of(decoder, PERSON, settings.person.second_opinion)
    nlp_engine = PipelineNlpEngine(nlp)
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    for recognizer in _pattern_recognizers(settings):
        registry.add_recognizer(recognizer)
    if settings.ner_entities():
        registry.add_recognizer(SpacyRecognizer(supported_entities=settings.ner_entities()))
    engine = AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=[LANGUAGE],
        default_score_threshold=settings.score_threshold,
        context_aware_enhancer=IndexedContextEnhancer(),  # Presidio's, in linear time (pii/context.py)
    )
    triggers = {e: re.compile(TRIGGERS[e], re.IGNORECASE) for e in settings.entities if e in TRIGGERS}
    for custom in settings.custom:
        triggers[custom.name] = re.compile(custom.pattern, REGEX_FLAGS)
    truecaser = (
        load_truecaser(settings.spacy_model)
        if settings.ner_entities() and settings.person.lowercase
        else Truecaser()
    )
    english = english_words(settings.spacy_model) if decoder and decoder.second_opinion else frozenset()
    return PiiAnalyzer(
        settings,
        nlp,
        nlp_engine,
        engine,
        triggers,
        replacement_pattern(settings),
        decoder,
        reason,
        truecaser,
        english,
    )


@lru_cache(maxsize=4)
def _cached(key: str) -> PiiAnalyzer:
    return build_analyzer(PiiSettings.model_validate_json(key))


def ner_decoder_used(settings: PiiSettings) -> str:
    """Which NER decoder `settings` resolve to here, and why (for stage metrics and `pii scan`)."""
    return get_analyzer(settings).decoder_reason if settings.ner_entities() else "no NER"


def get_analyzer(settings: PiiSettings) -> PiiAnalyzer:
    """The analyzer for `settings`, built once per Python process (Spark worker) and reused for every batch."""
    return _cached(settings.model_copy(update={"key": None}).model_dump_json())
