"""Presidio's lemma context enhancer, in time linear in the document rather than quadratic.

For every finding, Presidio's `LemmaContextAwareEnhancer` walks the document's tokens
from the start to find the finding's token, tests each lemma for membership in a list
of the document's keywords, and walks outwards until it has collected its context
words, which on a page without them means to the ends of the document: each finding
costs O(tokens), a page of N findings O(N x tokens). Measured here, 8,000 addresses in
200 KB took 13 s and a mailing-list archive of a few MB hours: one hostile page stalls
a Spark task. This subclass answers the same question from three indexes built once
per document (token end offsets, the keyword set, the positions of keyword lemmas),
so each finding costs O(log tokens + context words). The context words, and so every
score, are the same as Presidio's (tests/pii/test_context.py compares them).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts


@dataclass(frozen=True)
class _Index:
    """One document's lookups; `artifacts` is held so that its identity cannot be reused while cached."""

    artifacts: NlpArtifacts
    ends: list[int]  # end offset of each token: the first token ending after `start` holds it
    keyword_positions: list[int]  # positions of tokens whose lower-cased lemma is a keyword


class IndexedContextEnhancer(LemmaContextAwareEnhancer):
    """`LemmaContextAwareEnhancer` with its per-finding token walks replaced by lookups."""

    def __init__(self) -> None:
        super().__init__()
        self._index: _Index | None = None

    def _extract_surrounding_words(self, nlp_artifacts: NlpArtifacts, word: str, start: int) -> list[str]:
        if not nlp_artifacts.tokens:
            return [""]  # as Presidio: no NLP artifacts, an empty but valid context
        index = self._indexed(nlp_artifacts)
        position = bisect.bisect_right(index.ends, start)
        if position == len(index.ends):
            raise ValueError(
                f"Did not find word '{word}' in the list of tokens although it is expected to be found"
            )
        lemmas = nlp_artifacts.lemmas
        before = bisect.bisect_right(index.keyword_positions, position)
        backward = index.keyword_positions[max(0, before - self.context_prefix_count - 1) : before][::-1]
        after = bisect.bisect_left(index.keyword_positions, position)
        forward = index.keyword_positions[after : after + self.context_suffix_count + 1]
        return list({lemmas[i].lower() for i in (*backward, *forward)})

    def _indexed(self, artifacts: NlpArtifacts) -> _Index:
        if self._index is None or self._index.artifacts is not artifacts:
            keywords = set(artifacts.keywords)
            self._index = _Index(
                artifacts,
                [
                    offset + len(token)
                    for offset, token in zip(artifacts.tokens_indices, artifacts.tokens, strict=True)
                ],
                [i for i, lemma in enumerate(artifacts.lemmas) if lemma.lower() in keywords],
            )
        return self._index
