"""The url_blocklist and word_blocklist annotators: what a user's list file blocks, and what it does not."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pydantic import ValidationError

from curation.annotate.kernel import AnnotateKernel
from curation.annotate.stage import AnnotateConfig
from curation.annotators import build


def _run(annotators: list, texts: list[str | None], urls: list[str | None]) -> pa.RecordBatch:
    return AnnotateKernel(build(annotators))(pa.RecordBatch.from_pydict({"text": texts, "uri": urls}))


def test_domain_list_blocks_listed_domains_and_every_subdomain(tmp_path):
    listed = tmp_path / "domains.txt"
    listed.write_text("# ad servers\nExample.com  # trailing comment\nwww.tracker.net\n\n")
    urls = [
        "https://example.com/a",
        "http://deep.ads.example.com/x?y=1",
        "EXAMPLE.COM.",
        "https://tracker.net/",
        "https://notexample.com/",
        "https://example.com.evil.org/",
        None,
        "::not a url::",
    ]
    out = _run([{"url_blocklist": {"path": str(listed)}}], ["t"] * len(urls), urls)
    assert out.column("url_blocked").to_pylist() == [True, True, True, True, False, False, False, False]


def test_word_list_counts_whole_words_and_phrases_case_insensitively(tmp_path):
    listed = tmp_path / "words.txt"
    listed.write_text("casino\nfree money\n")
    texts = ["Casino! casino, CASINO", "casinos and freemoney", "Get FREE  money? free money.", None]
    out = _run([{"word_blocklist": {"path": str(listed)}}], texts, [None] * len(texts))
    assert out.column("blocked_word_count").to_pylist() == [3, 0, 1, 0]


def test_list_files_must_exist_and_hold_entries(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build([{"url_blocklist": {"path": str(tmp_path / "missing.txt")}}])
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(ValueError, match="no entries"):
        build([{"word_blocklist": {"path": str(empty)}}])
    with pytest.raises(ValidationError, match="word_blocklist: .*path: Field required"):
        AnnotateConfig(annotators=["word_blocklist"])


def test_word_lists_per_language_and_unspaced_scripts_match_inside_words(tmp_path):
    common = tmp_path / "all.txt"
    common.write_text("casino\n赌场\n")
    german = tmp_path / "de.txt"
    german.write_text("spielbank\n")
    texts = ["Casino und Spielbank", "Casino und Spielbank", "网上赌场平台", "网上赌场平台", "オンライン赌场"]
    langs = ["de", "en", "zh", "en", "ja"]
    kernel = AnnotateKernel(
        build([{"word_blocklist": {"path": str(common), "languages": {"de": str(german)}}}])
    )
    out = kernel(pa.RecordBatch.from_pydict({"text": texts, "uri": [None] * 5, "lang": langs}))
    # German documents use the German list only; Chinese and Japanese match inside runs of characters,
    # where English-style whole-word matching finds nothing.
    assert out.column("blocked_word_count").to_pylist() == [1, 1, 1, 0, 1]
    with pytest.raises(ValidationError, match=r"path: Field required \(or languages"):
        AnnotateConfig(annotators=[{"word_blocklist": {"languages": {}}}])
