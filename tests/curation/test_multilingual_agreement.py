"""Agreement with datatrove 0.10.1's multilingual filters: same words, same signals, same decisions.

datatrove runs with its own word tokenizers (jieba, SudachiPy, PyThaiNLP, kiwi, pyvi, spaCy) and,
per language, the FineWeb-2 numbers and stop words our table holds (curation/thresholds), so any
difference is in our signals, never in the configuration. Documents: lingua's sentences joined per
language (zh, ja, th, ko, vi and twenty spaced languages), the non-English pages of
trafilatura's evaluation set, and the Japanese pages of the ClueWeb09 WARC. Every disagreement is
printed (run with -s to see them) and named in the failure message; docs/curation.md lists those
of the last recorded run.
"""

from __future__ import annotations

import os
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from curation.annotate.kernel import AnnotateKernel
from curation.annotators import build, preset_rules
from curation.langid.labels import LABELS, from_lid176
from curation.rules import arrow_failing
from curation.thresholds import by_language, language_table
from curation.words import split_words
from tests.conftest import missing_shared_data
from tests.curation.multilingual_docs import lingua_documents

UNSPACED = ("zh", "ja", "th", "ko", "vi")
SPACED = (
    "de",
    "fr",
    "es",
    "it",
    "pt",
    "nl",
    "pl",
    "ru",
    "tr",
    "sv",
    "cs",
    "id",
    "fi",
    "uk",
    "ar",
    "hu",
    "ro",
    "el",
    "da",
    "nb",
)
DOCS_PER_LANGUAGE = 16
PRESETS = {"gopher_quality": "gopher_", "gopher_repetition": "gopher_", "c4": "c4_", "fineweb": "fineweb_"}
TRAFILATURA = Path("web") / "trafilatura_eval" / "trafilatura_tests.tar.xz"
CLUEWEB = Path("web") / "cc_warc_resiliparse" / "clueweb-quirk.warc.gz"
MIN_AGREEMENT = 0.99


def _trafilatura_pages(shared_data: Path) -> list[tuple[str, str, str]]:
    """(source, lang, text) of every page lid.176 is sure (> 0.5) is not English."""
    from curation.langid.lid176 import predict
    from pipelines.ingest.html_text import decode_bytes, extract_text

    path = shared_data / TRAFILATURA
    if not path.is_file():
        missing_shared_data(f"trafilatura's evaluation pages {path} are absent")
    pages = []
    with tarfile.open(path) as tar:
        for member in tar:
            if member.isfile():
                raw = tar.extractfile(member).read()
                text = extract_text(decode_bytes(raw, html=True).text, "resiliparse")
                if text:
                    pages.append((f"trafilatura:{member.name.split('/')[-1]}", text))
    labels, scores = predict([text for _, text in pages])
    return [
        (source, from_lid176(top[0]), text)
        for (source, text), top, score in zip(pages, labels, scores, strict=True)
        if top and score[0] > 0.5 and top[0] != "en"
    ]


def _clueweb_pages(shared_data: Path) -> list[tuple[str, str, str]]:
    from pipelines.ingest.readers import read_file
    from pipelines.ingest.readers.base import FileTask

    path = shared_data / CLUEWEB
    if not path.is_file():
        missing_shared_data(f"the ClueWeb09 WARC {path} is absent")
    rows = read_file(FileTask("agreement", str(path), os.path.relpath(path, shared_data), "warc"))
    return [(f"clueweb:{r['uri']}", "ja", r["text"]) for r in rows if r["kind"] == "document"]


def _datatrove_language(code: str) -> str:
    """The key datatrove's tokenizer table knows the language by: code and script first, as FineWeb-2."""
    from datatrove.utils.word_tokenizers import load_tokenizer_assignments

    keyed = f"{code}_{LABELS[code][1]}" if code in LABELS else code
    return keyed if keyed in load_tokenizer_assignments() else code


def _datatrove_splits(code: str) -> bool:
    """Whether datatrove's tokenizer for the language runs here (Stanza and IndicNLP ones need downloads
    or packages we do not install; their pages are left out, and said so)."""
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    try:
        load_word_tokenizer(_datatrove_language(code)).word_tokenize("a b")
    except (ImportError, ValueError, OSError) as exc:
        print(f"left out: {code} (datatrove's tokenizer cannot run here: {type(exc).__name__})")
        return False
    return True


def _datatrove_filters(code: str) -> dict:
    """datatrove's four filters for one language, configured with our table's numbers for it."""
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.filters.c4_filters import C4QualityFilter
    from datatrove.pipeline.filters.fineweb_quality_filter import FineWebQualityFilter

    entry = language_table().languages.get(code)
    t = entry.thresholds if entry else {}
    language = _datatrove_language(code)
    return {
        "gopher_quality": GopherQualityFilter(
            min_avg_word_length=t.get("gopher_below_avg_threshold", 3),
            max_avg_word_length=t.get("gopher_above_avg_threshold", 10),
            max_non_alpha_words_ratio=t.get("gopher_below_alpha_threshold", 0.8),
            stop_words=entry.stop_words if entry else None,
            language=language,
        ),
        "gopher_repetition": GopherRepetitionFilter(
            dup_line_frac=t.get("gopher_dup_line_frac", 0.3),
            top_n_grams=tuple(
                (n, t.get(f"gopher_top_{n}_gram", d)) for n, d in ((2, 0.2), (3, 0.18), (4, 0.16))
            ),
            dup_n_grams=tuple(
                (n, t.get(f"gopher_duplicated_{n}_n_grams", d))
                for n, d in ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))
            ),
            language=language,
        ),
        "c4": C4QualityFilter(language=language),
        "fineweb": FineWebQualityFilter(
            line_punct_thr=t.get("fineweb_line_punct_ratio", 0.12),
            new_line_ratio=t.get("fineweb_list_ratio", 0.3),
            language=language,
        ),
    }


def _theirs(filters: dict, text: str) -> dict[str, str | None]:
    from datatrove.data import Document

    out = {}
    for preset, filt in filters.items():
        result = filt.filter(Document(text=text, id="0"))
        reason = None if result is True else result[1]
        out[preset] = (
            reason if reason is None or reason.startswith(PRESETS[preset]) else PRESETS[preset] + reason
        )
    return out


def _ours(texts: list[str], langs: list[str]) -> list[dict[str, str | None]]:
    kernel = AnnotateKernel(build(["gopher", "c4", "fineweb"]))
    table = kernel(pa.RecordBatch.from_pydict({"text": texts, "lang": langs}))
    out: list[dict[str, str | None]] = [{} for _ in texts]
    for preset in PRESETS:
        rules = by_language(preset_rules([preset]), language_table())
        for row, reasons in zip(out, arrow_failing(table, rules), strict=True):
            row[preset] = reasons[0] if reasons else None
    return out


@pytest.fixture(scope="module")
def corpus(shared_data: Path) -> list[tuple[str, str, str]]:
    pytest.importorskip("datatrove")
    docs = [
        (f"lingua:{lang}:{i}", lang, text)
        for lang in UNSPACED + SPACED
        for i, text in enumerate(lingua_documents(shared_data, lang, DOCS_PER_LANGUAGE))
    ]
    pages = _trafilatura_pages(shared_data) + _clueweb_pages(shared_data)
    splits = {lang: _datatrove_splits(lang) for lang in {lang for _, lang, _ in pages}}
    return docs + [page for page in pages if splits[page[1]]]


def test_unspaced_languages_split_into_datatroves_words(corpus):
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    for source, lang, text in corpus:
        if lang in UNSPACED:
            theirs = load_word_tokenizer(_datatrove_language(lang)).word_tokenize(text)
            assert split_words(text, lang) == theirs, source


@pytest.mark.slow
def test_decisions_agree_with_datatrove_per_language(corpus):
    filters: dict[str, dict] = {}
    ours = _ours([text for _, _, text in corpus], [lang for _, lang, _ in corpus])
    disagreements, decisions, per_language, dropped = [], 0, Counter(), Counter()
    for (source, lang, text), mine in zip(corpus, ours, strict=True):
        theirs = _theirs(filters.setdefault(lang, _datatrove_filters(lang)), text)
        per_language[lang] += 1
        for preset in PRESETS:
            decisions += 1
            dropped[preset, lang in UNSPACED] += theirs[preset] is not None
            if (mine[preset] is None) != (theirs[preset] is None):
                disagreements.append(
                    f"{source} [{lang}] {preset}: ours {mine[preset]}, datatrove {theirs[preset]}"
                )
    for line in disagreements:
        print("disagreement:", line)
    print(
        f"{len(corpus)} documents, {decisions} decisions, {len(disagreements)} disagreements; {dict(per_language)}"
    )
    print("dropped by datatrove (preset, unspaced language):", dict(dropped))
    assert set(UNSPACED + SPACED) <= set(per_language)
    # Both outcomes occur for every preset, so agreement is not agreement on "keep everything".
    unspaced = sum(per_language[lang] for lang in UNSPACED)
    assert all(0 < dropped[preset, False] < len(corpus) - unspaced for preset in PRESETS), dropped
    assert all(0 < dropped[preset, True] < unspaced for preset in PRESETS), dropped
    assert per_language["ja"] > DOCS_PER_LANGUAGE  # the ClueWeb pages are in
    agreement = 1 - len(disagreements) / decisions
    assert agreement >= MIN_AGREEMENT, f"{agreement:.4f} agreement; disagreements:\n" + "\n".join(
        disagreements
    )
