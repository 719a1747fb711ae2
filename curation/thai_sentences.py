"""PyThaiNLP's crfcut sentence count of a Thai line, without building the sentences.

Why: C4 needs only how many sentences a kept line has, and crfcut (`sent_tokenize`'s default,
the splitter datatrove uses for Thai) spends most of its time on things the count does not need:
each CRF feature is formatted with its own joins, and each sentence is built by string
concatenation, quadratic in a long line. Here the tokens are crfcut's own (its `word_tokenize`,
newmm), the features are the same strings built from per-position n-grams formatted once (the
tests compare them with crfcut's `_extract_features`), the tagger is crfcut's, and the label
fix-ups are crfcut's; only the sentences are counted instead of concatenated, as
`len(stripped(sent_tokenize(line)))` counts them: pieces that end at an "E" label and are not
blank.
"""

from __future__ import annotations

from functools import cache

WINDOW = 2  # crfcut's defaults: words two before and after, n-grams of one to three words
MAX_N = 3
PAD = "xxpad"
_SENTENCE_END = ("!", ".", "?")


@cache
def _feature_specs() -> tuple[tuple[int, int, str, str, str], ...]:
    """(n, offset, word prefix, ender prefix, starter prefix) in crfcut's feature order."""
    specs = []
    for n in range(1, min(MAX_N + 1, 2 + WINDOW * 2)):
        for offset in range(-WINDOW, WINDOW + 2 - n):
            position = f"{n}_{offset}_{offset + n}"
            specs.append((n, offset, f"word_{position}=", f"ender_{position}=", f"starter_{position}="))
    return tuple(specs)


def _grams(values: list[str], n: int) -> list[str]:
    """Every run of `n` consecutive values joined by "|", by start position."""
    if n == 1:
        return values
    return ["|".join(values[j : j + n]) for j in range(len(values) - n + 1)]


def crf_features(tokens: list[str]) -> list[list[str]]:
    """crfcut's CRF features of each token (bias, then word/ender/starter n-grams in its window)."""
    from pythainlp.tokenize.crfcut import _ENDERS, _STARTERS

    if not tokens:
        return []
    doc = [PAD] * WINDOW + tokens + [PAD] * WINDOW
    ender = ["ender" if t in _ENDERS else "normal" for t in doc]
    starter = ["starter" if t in _STARTERS else "normal" for t in doc]
    grams = {n: (_grams(doc, n), _grams(ender, n), _grams(starter, n)) for n in range(1, MAX_N + 1)}
    specs = [(grams[n], WINDOW + offset, wp, ep, sp) for n, offset, wp, ep, sp in _feature_specs()]
    out = []
    for i in range(len(tokens)):
        features = ["bias"]
        for (words, enders, starters), shift, wp, ep, sp in specs:
            j = i + shift
            features += (wp + words[j], ep + enders[j], sp + starters[j])
        out.append(features)
    return out


def sentence_count(line: str) -> int:
    """Non-blank sentences crfcut finds in `line` (0 for an empty line, as `sent_tokenize` gives none)."""
    from pythainlp.tokenize import crfcut

    if not line:
        return 0
    tokens = crfcut.word_tokenize(line)
    labels = crfcut._tagger.tag(crf_features(tokens))
    labels[-1] = "E"
    for idx, tok in enumerate(tokens):
        if tok.strip().endswith(_SENTENCE_END):
            labels[idx] = "E"
        elif (idx == 0 or labels[idx - 1] == "E") and tok.strip() == "":
            labels[idx] = "I"
    count, pending, visible = 0, False, False
    for tok, label in zip(tokens, labels, strict=True):
        pending = pending or tok != ""
        visible = visible or tok.strip() != ""
        if label == "E" and pending:
            count += visible
            pending = visible = False
    return count
