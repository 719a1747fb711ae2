"""Bytes of a web page -> Unicode -> main-content plain text.

Two concerns live here because every reader of web content needs both:

* Charset detection. Pages lie about their encoding often enough (a header saying
  ISO-8859-1 over UTF-8 bytes is the classic) that a declared charset is only
  trusted once the bytes decode cleanly with it. The order: byte-order mark, strict
  UTF-8 (a non-ASCII text that decodes as UTF-8 is UTF-8 with near certainty), the
  HTTP header's charset, the `<meta>` charset in the first bytes, charset-normalizer's
  guess, and last the declared (or cp1252) codec with replacement characters.
  Legacy Latin names map to cp1252 as browsers (WHATWG) do.
* Main-content extraction. Both trafilatura and resiliparse were measured on
  trafilatura's own evaluation set (benchmarks/html_extract.py, BENCHMARKS.md):
  trafilatura scores clearly higher F1 (mostly precision: less boilerplate) and is
  the default; resiliparse is about ten times faster and stays selectable
  (`extractor: resiliparse`) for crawls where throughput beats precision.
  docs/ingest.md has the numbers.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Literal

Extractor = Literal["resiliparse", "trafilatura"]
DEFAULT_EXTRACTOR: Extractor = "trafilatura"

# Browsers decode these labels as windows-1252 / cp932 / gb18030 (WHATWG Encoding Standard).
_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "x-sjis": "cp932",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "x-euc-jp": "euc_jp",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([a-zA-Z0-9_.:-]+)", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
META_SCAN_BYTES = 4096


@dataclass(frozen=True)
class Decoded:
    """Decoded text, the codec used and how many bytes could not be decoded (U+FFFD inserted)."""

    text: str
    encoding: str
    replaced: int


def normalize_charset(label: str | None) -> str | None:
    """A Python codec name for a charset label, or None when Python knows no such codec."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def header_charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type header value."""
    if not content_type:
        return None
    match = _HEADER_CHARSET.search(content_type)
    return match.group(1) if match else None


def meta_charset(raw: bytes) -> str | None:
    """The charset a page declares in its first bytes (`<meta charset>` or http-equiv)."""
    match = _META_CHARSET.search(raw[:META_SCAN_BYTES])
    return match.group(1).decode("ascii", "replace") if match else None


def _strict(raw: bytes, codec: str | None) -> str | None:
    if codec is None:
        return None
    try:
        return raw.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_bytes(raw: bytes, declared: str | None = None, html: bool = False) -> Decoded:
    """Decode a page or text file, trusting declarations only when the bytes agree with them."""
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            text = raw.decode(codec, errors="replace")
            return Decoded(text, codec, text.count("\ufffd"))
    text = _strict(raw, "utf-8")
    if text is not None:
        return Decoded(text, "utf-8", 0)
    candidates = [normalize_charset(declared)]
    if html:
        candidates.append(normalize_charset(meta_charset(raw)))
    for codec in candidates:
        text = _strict(raw, codec)
        if text is not None:
            return Decoded(text, codec or "", 0)
    guessed = _guess(raw)
    if guessed is not None:
        return guessed
    codec = next((c for c in candidates if c), "cp1252")
    text = raw.decode(codec, errors="replace")
    return Decoded(text, codec, text.count("\ufffd"))


def _guess(raw: bytes) -> Decoded | None:
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None:
        return None
    codec = normalize_charset(best.encoding)
    text = _strict(raw, codec)
    return Decoded(text, codec or best.encoding, 0) if text is not None else None


def extract_text(html: str, extractor: Extractor = DEFAULT_EXTRACTOR) -> str:
    """Main-content plain text of a page ("" when the extractor finds none)."""
    if extractor == "resiliparse":
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLTree

        return extract_plain_text(HTMLTree.parse(html), main_content=True, comments=False).strip()
    if extractor == "trafilatura":
        import trafilatura

        return (trafilatura.extract(html, include_comments=False, deduplicate=False) or "").strip()
    raise ValueError(f"unknown HTML extractor {extractor!r}; use 'resiliparse' or 'trafilatura'")
