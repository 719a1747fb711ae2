"""Untrusted text made safe for a terminal or a log line.

Corpus text, file names and quarantine excerpts come from the web: an input line holding
`ESC]0;...BEL` retitles the user's terminal, `ESC[2J` clears it, and a bidirectional override
(U+202E) makes `txt.exe` read as `exe.txt`. Every place that prints such text to a terminal or a
log passes it through `for_terminal`, which keeps printable text as it is and shows everything
else as a visible escape, so what the user sees is what the data holds. `--json` output does not
use it: JSON is already lossless and escapes control characters itself.
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls (0x80-0x9f, which some terminals honour as 8-bit CSI/OSC).
_CONTROL = r"\x00-\x1f\x7f-\x9f"
# Bidirectional embeddings, overrides and isolates, plus the line/paragraph separators that
# break a table row apart in terminals that honour them.
_BIDI = "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u2028\u2029"
# Lone surrogates: what `surrogateescape` makes of bytes that are not UTF-8 (file names).
_SURROGATE = "\ud800-\udfff"

_UNSAFE = re.compile(f"[{_CONTROL}{_BIDI}{_SURROGATE}]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\x1b"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that surrogateescape carried: show the byte itself
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def for_terminal(
    text: str | bytes | None, *, keep_newlines: bool = False, max_chars: int | None = None
) -> str:
    """`text` with every control, bidi and undecodable character shown as an escape.

    Bytes are decoded as UTF-8, with invalid sequences shown as `\\xNN`. `keep_newlines` lets
    multi-line text (a document shown whole) keep its line breaks; table cells and log lines
    do not. `max_chars` cuts the *escaped* text, so an escape is never cut in half, and marks
    the cut with an ellipsis.
    """
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="surrogateescape")
    lines = text.split("\n") if keep_newlines else [text]
    safe = "\n".join(_UNSAFE.sub(_escape_char, line) for line in lines)
    if max_chars is None or len(safe) <= max_chars:
        return safe
    return _cut_escaped(text, keep_newlines, max(max_chars - 1, 0)) + "…"


def _cut_escaped(text: str, keep_newlines: bool, budget: int) -> str:
    """The longest escaped prefix of `text` within `budget` characters, escapes kept whole."""
    out: list[str] = []
    used = 0
    for char in text:
        piece = char if keep_newlines and char == "\n" else _UNSAFE.sub(_escape_char, char)
        if used + len(piece) > budget:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out)


def path_for_display(path: object) -> str:
    """A file path or URL as the user should see it: lossless for any bytes, never a control code.

    Paths that are not valid UTF-8 reach Python as surrogate-escaped `str` (or as `bytes`);
    both come out with the offending bytes as `\\xNN`.
    """
    if isinstance(path, bytes):
        return for_terminal(path)
    return for_terminal(str(path))
