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
    with pytest.raises(ValidationError, match="word_blocklist: path: Field required"):
        AnnotateConfig(annotators=["word_blocklist"])
