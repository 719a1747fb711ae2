"""Data on a page with its control and bidirectional-override characters made visible.

HTML escaping stops data from opening markup, not from acting on the text around it: a U+202E
(right-to-left override) in a document id or URI reverses what follows it on the page, so that
`gpj.exe` reads as `exe.jpg` and a link's text can claim another address; NUL, escape and the other
C0/C1 controls vanish or render unpredictably. The template environment's `finalize` passes every
`{{ }}` value through `shown` (render.py), so no template can forget it: each such character comes
out as its escape (`\\u202e`, `\\x1b`, the notation `pipelines.framework.terminal_text` uses on a
terminal) in a `<span class=ctl>`, styled apart so that it cannot pass for literal text.

Kept as they are: newline and tab (a document is shown whole), carriage return (the HTML parser
reads it as a newline), and the bidi *marks* U+200E, U+200F and U+061C, which real Arabic and Hebrew
text carries and which cannot reorder letters. Lone surrogates (a JSON `"\\ud800"` in a run record)
are shown too: they could not be encoded into the response at all.

Where markup cannot go (attribute values, `<title>`, SVG text) `plain` gives the same escapes as
text. The span's markup holds no quote, so even a `shown` value inside a quoted attribute stays inert.
"""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup, escape

# C0 controls but tab, newline and carriage return; DEL and C1; bidi embeddings, overrides and
# isolates; lone surrogates.
CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# What a URL must not hold to become a link: the controls, and what browsers drop from a URL or
# what can move its text around (whitespace controls, bidi marks, line separators).
NOT_IN_LINKS = re.compile(f"{CONTROLS.pattern[:-1]}\t\n\r\u200e\u200f\u061c\u2028\u2029]")


def code(char: str) -> str:
    """`\\xNN` up to U+00FF, `\\uNNNN` above: the character's escape as a reader would type it."""
    number = ord(char)
    return f"\\x{number:02x}" if number <= 0xFF else f"\\u{number:04x}"


def plain(value: Any) -> Markup:
    """`value` escaped for HTML with each control shown as its escape, as text (for attributes, titles, SVG)."""
    return Markup(CONTROLS.sub(lambda m: code(m.group(0)), str(escape(value))))


def shown(value: Any) -> Any:
    """`value` escaped for HTML with each control shown as its escape in a `<span class=ctl>`.

    Markup is passed through: it was built by the app (a chart, a macro, `safe_href`), which shows
    the data inside it itself.
    """
    if hasattr(value, "__html__"):
        return value
    text = str(escape(value))
    if not CONTROLS.search(text):
        return Markup(text)
    return Markup(CONTROLS.sub(lambda m: f"<span class=ctl>{code(m.group(0))}</span>", text))


def linkable(url: str) -> bool:
    """Whether `url` may be used as an href: it holds nothing a browser would drop or that could move text."""
    return not NOT_IN_LINKS.search(url)
