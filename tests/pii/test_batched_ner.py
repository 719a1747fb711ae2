"""The batched NER decoder against spaCy's own decoder: same entities on real pages and labelled data,
the edge cases of its validity rules, and the fallbacks when a pipeline is not one it reproduces."""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy

import pii.nlp
from benchmarks.tokenize import web_texts
from pii.batched_ner import PROBES, BatchedNer, unsupported_reason, verify
from pii.engine import build_analyzer
from pii.nlp import load_spacy, resolve_decoder
from pii.settings import DEFAULT_SPACY_MODEL, PiiSettings

PAGES = 150
PAGE_CHARS = 2000


@pytest.fixture(scope="module")
def pages(shared_data: Path) -> list[str]:
    """The first characters of 150 real pages of the trafilatura evaluation set (about 40 languages)."""
    texts = web_texts(archive=shared_data / "web" / "trafilatura_eval" / "trafilatura_tests.tar.xz")
    return [t[:PAGE_CHARS] for t in texts[:PAGES]]


def _entities(docs) -> list[list[tuple[int, int, str]]]:
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs]


def _both(nlp: spacy.Language, texts: list[str]) -> tuple[list, list]:
    """Entities from spaCy's decoder and from the batched one, same pipeline, same batch."""
    ner = nlp.get_pipe("ner")
    theirs = _entities(ner.pipe([nlp.make_doc(t) for t in texts], batch_size=len(texts)))
    ours = _entities(BatchedNer(ner)([nlp.make_doc(t) for t in texts]))
    return theirs, ours


def test_bit_identical_to_spacy_on_real_pages(pages):
    """With spaCy's own BLAS the network is spaCy's, so every decision must be too."""
    theirs, ours = _both(load_spacy(DEFAULT_SPACY_MODEL, True, "blis"), pages)
    assert sum(map(len, theirs)) > 1000
    assert ours == theirs


def test_numpy_blas_keeps_the_entities(pages, generated_small):
    """numpy's BLAS sums in another order; decisions may only flip on exact near-ties (none measured)."""
    nlp = load_spacy(DEFAULT_SPACY_MODEL, True, "numpy")
    texts = pages + [s["full_text"] for s in generated_small]
    reference, _ = _both(load_spacy(DEFAULT_SPACY_MODEL, True, "blis"), texts)
    _, ours = _both(nlp, texts)
    differing = sum(a != b for a, b in zip(reference, ours, strict=True))
    assert differing <= len(texts) // 200, f"{differing} of {len(texts)} documents changed entities"


def test_edge_documents_in_one_batch():
    """Empty, whitespace-only, one-token and entity-at-the-end documents mixed in one batch."""
    nlp = load_spacy(DEFAULT_SPACY_MODEL, True, "blis")
    texts = ["", "   \n\n\t ", "Obama", "\n", "We met John Smith", "x" * 3000, *PROBES, ""]
    theirs, ours = _both(nlp, texts)
    assert ours == theirs
    assert ours[4] == [(7, 17, "PERSON")]


def test_preset_entities_go_to_spacys_decoder():
    nlp = load_spacy(DEFAULT_SPACY_MODEL, True, "blis")
    ner = nlp.get_pipe("ner")
    preset = nlp.make_doc("Barack Obama visited Paris yesterday.")
    preset.set_ents([spacy.tokens.Span(preset, 3, 4, label="ORG")], default="unmodified")
    reference = nlp.make_doc(preset.text)
    reference.set_ents([spacy.tokens.Span(reference, 3, 4, label="ORG")], default="unmodified")
    ours = BatchedNer(ner)([preset])
    theirs = list(ner.pipe([reference]))
    assert _entities(ours) == _entities(theirs)
    assert ("Paris", "ORG") in [(e.text, e.label_) for e in ours[0].ents]


def test_unsupported_pipelines_are_named():
    beam = spacy.blank("en")
    beam.add_pipe("beam_ner")
    beam.initialize()
    assert "beam" in unsupported_reason(beam.get_pipe("beam_ner"))
    shared = spacy.blank("en")
    shared.add_pipe("tok2vec")
    shared.add_pipe(
        "ner",
        config={"model": {"tok2vec": {"@architectures": "spacy.Tok2VecListener.v1", "width": 96}}},
    )
    shared.initialize()
    assert "listener" in unsupported_reason(shared.get_pipe("ner"))
    assert unsupported_reason(spacy.blank("en").add_pipe("sentencizer")) is not None
    assert unsupported_reason(load_spacy(DEFAULT_SPACY_MODEL, True).get_pipe("ner")) is None


def test_resolve_decoder_choices(monkeypatch):
    nlp = load_spacy(DEFAULT_SPACY_MODEL, True)
    decoder, reason = resolve_decoder(nlp, "auto")
    assert isinstance(decoder, BatchedNer) and "same entities" in reason
    assert resolve_decoder(nlp, "spacy")[0] is None

    monkeypatch.setattr(pii.nlp, "verify", lambda nlp, decoder: PROBES[0])  # an injected disagreement
    decoder, reason = resolve_decoder(nlp, "auto")
    assert decoder is None and "differ" in reason and PROBES[0] in reason
    with pytest.raises(RuntimeError, match="ner_decoder 'batched' cannot be used"):
        resolve_decoder(nlp, "batched")


def test_a_wrong_decoder_is_caught_by_the_probes():
    """The probe check is not vacuous: a decoder that loses the last entity of each doc fails it."""
    nlp = load_spacy(DEFAULT_SPACY_MODEL, True)

    class Lossy(BatchedNer):
        def _decode(self, *args):
            found = super()._decode(*args)
            return {i: ents[:-1] for i, ents in found.items()}

    assert verify(nlp, Lossy(nlp.get_pipe("ner"))) is not None


def test_analyzer_results_match_spacys_decoder(generated_small):
    texts = [s["full_text"] for s in generated_small[:200]]
    # The second opinion (near misses) exists only in the batched decoder; the entities themselves agree.
    same = {"ner_blas": "blis", "person": {"second_opinion": None}}
    batched = build_analyzer(PiiSettings(ner_decoder="batched", **same))
    reference = build_analyzer(PiiSettings(ner_decoder="spacy", **same))
    assert batched.decoder is not None and reference.decoder is None

    def spans(analyzer):
        return [sorted((r.entity_type, r.start, r.end) for r in res) for res in analyzer.analyze_batch(texts)]

    assert spans(batched) == spans(reference)


def test_a_state_without_valid_action_ends_like_spacys(monkeypatch):
    """spaCy forces a state with no valid action to its end and drops its unclosed entity; so do we."""
    nlp = load_spacy(DEFAULT_SPACY_MODEL, True)
    decoder = BatchedNer(nlp.get_pipe("ner"))
    real_valid = decoder._valid

    def nothing_after_an_open_entity(b, length, is_open, *rest):
        valid = real_valid(b, length, is_open, *rest)
        valid[is_open] = False
        return valid

    monkeypatch.setattr(decoder, "_valid", nothing_after_an_open_entity)
    text = "Microsoft hired Barack Obama. Angela Merkel replied."
    ents = _entities(decoder([nlp.make_doc(text), nlp.make_doc("Obama")]))
    full = _entities([nlp(text), nlp("Obama")])
    assert [text[start:end] for start, end, _ in full[0]][:2] == ["Microsoft", "Barack Obama"]
    assert ents[0] == full[0][:1]  # stopped at the B of "Barack": nothing after it, no unclosed entity
    assert ents[1] == full[1]  # a document that never opens an entity is unaffected


def test_a_lone_document_takes_spacys_loop(monkeypatch):
    """One document gains nothing from stepping in lock step; it must still get spaCy's entities."""
    nlp = load_spacy(DEFAULT_SPACY_MODEL, True)
    decoder = BatchedNer(nlp.get_pipe("ner"))

    def not_batched(*args):
        raise AssertionError("a lone document went through the batched loop")

    monkeypatch.setattr(decoder, "_decode", not_batched)
    text = "Microsoft hired Barack Obama."
    assert _entities(decoder([nlp.make_doc(text), nlp.make_doc("")])) == _entities([nlp(text), nlp("")])
