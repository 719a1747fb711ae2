"""Capitals for NER in text written all in lower case ("have you been to a david lange concert?").

spaCy's small English NER leans on capital letters: in all-lower-case text (chat,
forms, some forums) it tags almost no person. Before NER, such a text gets a
capital on each word that is not a function word and not an English verb,
adjective or adverb, the word classes a name is least often spelt like. Nouns are
capitalised too (many names are nouns: Rose, Baker), which costs some false
people that the PERSON rules then remove. Only the first letter of a word
changes and only where its capital is one character, so every offset is the
original text's and the entities apply to it unchanged.

The word lists come from the spaCy package's own lemmatizer tables (WordNet's
verb, adjective and adverb index and their irregular forms), so nothing is
downloaded; a package without them leaves only spaCy's stop words out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import spacy
from spacy.lang.en.stop_words import STOP_WORDS

LEMMATIZER = "lemmatizer"
NOT_NAME_CLASSES = ("verb", "adj", "adv")
NOUN = "noun"
# A word of two letters or more, not the tail of a contraction ("don't", "it's").
WORD = re.compile(r"(?<!['’])\b[^\W\d_]{2,}")


@dataclass(frozen=True)
class Truecaser:
    """The word lists truecasing needs: words never capitalised, and nouns (a lone one is no name)."""

    common: frozenset[str] = frozenset()
    nouns: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.common)

    def text(self, text: str) -> str:
        """`text` with the first letter of each word outside `common` made a capital (same length)."""
        chars = list(text)
        for m in WORD.finditer(text):
            if m.group() in self.common:
                continue
            capital = chars[m.start()].upper()
            if len(capital) == 1:
                chars[m.start()] = capital
        return "".join(chars)

    def entities(self, doc: spacy.tokens.Doc) -> spacy.tokens.Doc:
        """The doc (of a truecased text) without one-word entities that are common nouns ("song", "person"):
        capitals on nouns make the NER see names in them."""
        doc.ents = [e for e in doc.ents if len(e) > 1 or _singular(e.text.lower()) not in self.nouns]
        return doc


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def load_truecaser(model: str) -> Truecaser:
    """Stop words plus the verbs, adjectives and adverbs (base and irregular forms) of the package's
    lemmatizer tables, and its nouns."""
    classes = _word_classes(model)
    common = set(STOP_WORDS).union(*(classes[c] for c in NOT_NAME_CLASSES))
    return Truecaser(frozenset(common), classes[NOUN])


def english_words(model: str) -> frozenset[str]:
    """Every word of the package's lemmatizer tables and spaCy's stop words: a capitalised word outside them
    is more likely a name (pii.rules.unsure_people)."""
    return frozenset(STOP_WORDS).union(*_word_classes(model).values())


@lru_cache(maxsize=2)
def _word_classes(model: str) -> dict[str, frozenset[str]]:
    nlp = spacy.load(model, exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "ner", "senter"])
    classes: dict[str, set[str]] = {c: set() for c in (*NOT_NAME_CLASSES, NOUN)}
    if LEMMATIZER in nlp.pipe_names:
        lookups = nlp.get_pipe(LEMMATIZER).lookups
        for name, words in (("lemma_index", lambda t: t), ("lemma_exc", lambda t: t.keys())):
            table = lookups.get_table(name) if lookups.has_table(name) else {}
            for word_class, found in classes.items():
                if word_class in table:
                    found.update(words(table[word_class]))
    return {c: frozenset(words) for c, words in classes.items()}


def all_lower(text: str) -> bool:
    """Text with letters but no capital: the case truecasing is for."""
    return text.islower()
