"""Whitespace-free runs too long for the analyzers, cut for them without moving any offset.

Why: Presidio's email pattern rescans a run of word characters and dots from every position it
starts at (the `regex` module, quadratic: 10,000 characters of "x.x.x" took 42 s, 20,000 took 71 s),
and spaCy's tokenizer, which the analyzer runs first, peels a run's leading punctuation one
character at a time (5,000 "{" took 3.7 s). Presidio also gives up on a pattern after 60 s and only
logs it, so such a run would silently hide an address elsewhere in the document. A run longer than
LONG_RUN characters (longer than an email address or any URL met in practice) reaches the analyzers
with one character in every PIECE turned into a space: the text keeps its length, so every finding's
offsets are the original text's, and the work per character is bounded whatever the run's length.
An entity inside such a run is found in pieces (a 2,000-character URL as several URL spans).
"""

from __future__ import annotations

import re

LONG_RUN = 1024
PIECE = 256
_LONG_RUN = re.compile(rf"\S{{{LONG_RUN + 1},}}")


def bounded_runs(text: str) -> str:
    """`text` with every whitespace-free run over LONG_RUN characters cut every PIECE characters."""
    if len(text) <= LONG_RUN:
        return text
    return _LONG_RUN.sub(_cut, text)


def _cut(match: re.Match[str]) -> str:
    run = match.group()
    return run[:PIECE] + "".join(" " + run[i + 1 : i + PIECE] for i in range(PIECE, len(run), PIECE))
