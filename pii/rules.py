"""Rules over the recognizers' results: PERSON span boundaries and cues, and conflicts between types.

spaCy's small model tags a PERSON span by token context only: it runs spans over
line breaks ("Ashley Belov\\n>Mclaughlin Ltd."), keeps a possessive, stops inside
"Donald van der Voet", and takes a street or a firm for a person. Phone matching
takes card numbers, SSNs and IP addresses for phone numbers. Each rule here is
switched by a setting (`PersonSettings`, `PhoneSettings`) and measured one by
one in docs/pii.md; none of them runs under `profile: presidio_default`.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from functools import lru_cache

from presidio_analyzer import RecognizerResult
from spacy.lang.en.stop_words import STOP_WORDS
from spacy.tokens import Span

from pii.batched_ner import NEAR_OUTSIDE
from pii.overlaps import SpanIndex, keep_longest, yield_to
from pii.settings import PiiSettings

PERSON = "PERSON"
PHONE = "PHONE_NUMBER"
# Types whose match is validated by a checksum or a strict format: a phone span equal to one is not a phone.
CHECKED_TYPES = frozenset({"CREDIT_CARD", "US_SSN", "IP_ADDRESS", "IBAN_CODE", "CRYPTO", "EMAIL_ADDRESS"})
IPV4_SHAPE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
YEAR = r"(?:1[89]|20)\d{2}"
NOT_PHONE = re.compile(
    rf"\(?{YEAR}\s?[-–/]\s?{YEAR}\)?"  # a year range
    r"|\(?\d{4}-\d{2}-\d{2}\)?|\d{1,2}[./-]\d{1,2}[./-](?:\d{2}|\d{4})"  # a date
    r"|.*(?:\b\d\b\D+){3}.*"  # three or more single-digit groups: section or list numbers
)
PARTICLES = frozenset(
    {"van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "la", "le", "ten", "ter"}
)
TRAILING = " \t\r\n.,;:!?\"'()[]{}<>|/\\*-–—"
POSSESSIVE = re.compile(r"['’]s?$")
NEXT_WORD = re.compile(r"[\s,]*([^\W\d_][\w.&-]*)")
PREVIOUS_TOKEN = re.compile(r"(\S+)\s*$")
# Unit words that end an address line; NER often runs a name into them ("Diana Weöres Apt. 434").
UNIT_TAIL = re.compile(r"[ \t]+(?:Apt|Suite|Box|Unit|Floor|Room)\.?$", re.IGNORECASE)
SUFFIX = re.compile(r",?[ \t]+(?:Jr|Sr|II|III|IV|PhD|MD|DVM|DDS|Esq)\b\.?")
LEADING_LOWER = re.compile(r"(?:[a-z][\w-]*[ \t]+)+(?=[A-Z])")
LEADING_WORD = re.compile(r"([a-z]+)[ \t]+(?=\S)")
CONNECTOR = re.compile(r"[ \t]+(?:and|or|to|with|from|at|in|for|fan)[ \t]+|[ \t]+(?:fan)$", re.IGNORECASE)
PARTICLE_TAIL = re.compile(
    r"((?:\s+(?:van|von|der|den|de|del|della|da|di|du|la|le|ten|ter))*\s+[A-Z][\w'-]+)"
)
TITLE = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Madam)\.?"
NAME = r"[A-Z][^\W\d_]*(?:['-][A-Z]?[^\W\d_]+)*"
TITLE_AT = re.compile(rf"({TITLE})[ \t]+", re.IGNORECASE)
TITLE_BEFORE = re.compile(rf"\b({TITLE})[ \t]+$", re.IGNORECASE)
ONE_NAME = r"[A-Z][^\W\d_]+(?:-[A-Z][^\W\d_]+)?"
NAME_LIST = re.compile(
    rf"\b{ONE_NAME}(?:[ \t]*,[ \t]*{ONE_NAME})*[ \t]*,?[ \t]+(?:and|or|&)[ \t]+{ONE_NAME}\b"
)
NOT_NAMES = frozenset(
    {
        *("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january"),
        *("february", "march", "april", "may", "june", "july", "august", "september", "october"),
        *("november", "december", "i", "the", "a", "an", "that", "this", "it", "he", "she", "they", "we"),
        "you",
    }
)
# Words before a place or a firm rather than a person ("arrived at Needham", "a year at Spacecurve"): a
# near miss of the NER right after one is not taken for a name.
PLACE_WORDS = frozenset({"in", "at", "from", "for", "near", "of", "became", "into", "via", "city"})
WORD = re.compile(r"[^\W\d_]{2,}")
LETTER = re.compile(r"[^\W\d_]")
# A capitalised name right after a naming cue; the name is group 1.
CUE = re.compile(
    rf"(?:\b(?:[Mm]y name is|[Nn]ame is|[Cc]all me|[Cc]alls me|[Nn]amed (?:him|her)|[Nn]ame:|[Yy]our name\?)\s+"
    rf"(?:{TITLE}\s+)?"
    rf"|\b(?:Dear|Hi|Hello)\s+(?:{TITLE}\s+)?(?=[^\W\d_]+(?:\s+{NAME})?\s*[,!:\n])"
    rf"|\b(?:starring|directed by|written by|produced by|featuring|according to|said|says|asked|told)[ \t]+"
    rf"(?:{TITLE}\s+)?"
    rf"|\b{TITLE}\s+(?=[A-Z]))"
    rf"({NAME}(?:[ \t]+(?:(?:van|von|der|den|de|del|da|di|du|la|le)[ \t]+)*{NAME}){{0,2}})"
)
# The same cues in text written all in lower case ("my name is mieszko"): one or two words.
LOWER_CUE = re.compile(
    r"\b(?:my name is|your name\?|call me|calls me|said)[ \t]+([^\W\d_]+(?:[ \t]+[^\W\d_]{3,})?)\b"
)


def refine(
    text: str, results: list[RecognizerResult], settings: PiiSettings, entities: list[str]
) -> list[RecognizerResult]:
    """The results with the enabled rules for the `entities` analyzed applied (a new list; PERSON results
    may be moved or dropped)."""
    person = settings.person
    if PERSON in entities:
        if person.cues:
            results = results + _cue_names(text, results)
        if person.boundaries:
            results = [piece for r in results for piece in _split(text, r)]
            results = [
                r
                for r in (_trim(text, _extend(text, r)) if r.entity_type == PERSON else r for r in results)
                if r
            ]
        if person.lists:
            results = results + _listed(text, results)
        if person.titles != "exclude":
            results = _titled(text, results, person.titles)
        org = _lower_set(tuple(person.org_cues))
        if org:
            results = [r for r in results if r.entity_type != PERSON or not _followed(text, r, org)]
        street = _lower_set(tuple(person.street_cues))
        if street:
            results = [r for r in results if r.entity_type != PERSON or not _address(text, r, street)]
        prefixes = _lower_set(tuple(person.street_prefixes))
        if prefixes:
            results = [
                r for r in results if r.entity_type != PERSON or _previous_word(text, r) not in prefixes
            ]
        if person.yield_to_patterns:
            results = yield_to(results, PERSON, lambda other: other.entity_type != PERSON, inside=True)
    phone = settings.phone
    if PHONE in entities:
        if (phone.min_digits, phone.max_digits) != (1, 20):
            results = [r for r in results if r.entity_type != PHONE or _phone_length_ok(text, r, settings)]
        if phone.yield_to_checksums:
            results = [
                r
                for r in results
                if r.entity_type != PHONE or not IPV4_SHAPE.fullmatch(text[r.start : r.end])
            ]
            results = yield_to(results, PHONE, lambda other: other.entity_type in CHECKED_TYPES, inside=False)
        if phone.not_phone_shapes:
            results = [
                r for r in results if r.entity_type != PHONE or not NOT_PHONE.fullmatch(text[r.start : r.end])
            ]
        if phone.written:
            results = keep_longest(results, PHONE)  # a written-format match beside phonenumbers' own
    if PERSON in entities and (
        person.cues or person.lists or person.boundaries or person.titles != "exclude"
    ):
        results = keep_longest(results, PERSON)  # an added name beside the NER's
    return results


@lru_cache(maxsize=32)
def _lower_set(words: tuple[str, ...]) -> frozenset[str]:
    """A settings word list as a lower-case set, built once per list instead of once per document."""
    return frozenset(w.lower() for w in words)


def unsure_people(
    text: str, spans: Iterable[Span], results: list[RecognizerResult], english: frozenset[str]
) -> list[RecognizerResult]:
    """PERSON results for the NER's near misses (pii.batched_ner.SecondOpinion) that look like a name in
    a sentence, and overlap no result.

    A near miss is weak evidence, so it must be written like a name (each word a capital
    and lower-case letters, none a function word; where the NER saw no entity at all, none
    an English word either: `english`), not follow a place word ("at Needham"),
    not be a piece of a longer capitalised run ("Poncho App"), and not stand alone on its
    line (in an address block a town or a firm as often as a name).
    """
    taken, lines = SpanIndex((r.start, r.end) for r in results), LineWords(text)
    out = []
    for span in spans:
        found = _result(span.start_char, span.end_char, "NerSecondOpinion")
        words = text[found.start : found.end].split()
        if span.label_ != PERSON or not all(w.isalpha() and w.istitle() for w in words):
            continue
        if any(w.lower() in STOP_WORDS or w.lower() in NOT_NAMES for w in words):
            continue
        if span.kb_id_ == NEAR_OUTSIDE and any(w.lower() in english for w in words):
            continue  # the NER saw no entity at all: only a word that is no English word may be a name
        if _previous_word(text, found) in PLACE_WORDS or _in_capitalised_run(text, found):
            continue
        if lines.other_word(found.start, found.end) and not taken.overlaps(found.start, found.end):
            out.append(found)
    return out


class LineWords:
    """Whether WORD finds a word in a span's line before the span joined to the line after it.

    Why not that slice: on a page that is one long line, slicing the line for each span was
    quadratic. The same answer comes from the line's first two-letter position (before the
    span?), its last (after it?), and the letters either side of the span (joined: a word).
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.first: dict[int, int | None] = {}  # line number -> its first two-letter position
        self.last: dict[int, int | None] = {}  # line number -> its last one

    def _bounds(self, line: int) -> tuple[int, int]:
        start = self.newlines[line - 1] + 1 if line else 0
        return start, self.newlines[line] if line < len(self.newlines) else len(self.text)

    def other_word(self, start: int, end: int) -> bool:
        """A word in [line start, start) + [end, line end): the lines of `start` and of `end`."""
        head, tail = bisect.bisect_left(self.newlines, start), bisect.bisect_left(self.newlines, end)
        if head not in self.first:
            found = WORD.search(self.text, *self._bounds(head))
            self.first[head] = found.start() if found else None
        if tail not in self.last:
            lo, hi = self._bounds(tail)
            found = WORD.search(self.text[lo:hi][::-1])
            self.last[tail] = hi - found.start() - 2 if found else None
        first, last = self.first[head], self.last[tail]
        line_start, line_end = self._bounds(head)[0], self._bounds(tail)[1]
        joined = (
            line_start < start
            and end < line_end
            and bool(LETTER.match(self.text, start - 1) and LETTER.match(self.text, end))
        )
        return (first is not None and first + 2 <= start) or (last is not None and last >= end) or joined


def _in_capitalised_run(text: str, r: RecognizerResult) -> bool:
    """A capitalised word right before or after the span, on the same line."""
    before = PREVIOUS_TOKEN.search(text, max(0, r.start - 40), r.start)
    after = NEXT_WORD.match(text, r.end)
    return bool(
        (before and before.group(1)[:1].isupper() and "\n" not in text[before.start() : r.start])
        or (
            after
            and after.group(1)[:1].isupper()
            and "\n" not in after.group(0)
            and "," not in after.group(0)
        )
    )


def _phone_length_ok(text: str, r: RecognizerResult, settings: PiiSettings) -> bool:
    number = re.split(r"\s?(?:x|ext)", text[r.start : r.end], maxsplit=1, flags=re.IGNORECASE)[0]
    digits = sum(c.isdigit() for c in number)
    return settings.phone.min_digits <= digits <= settings.phone.max_digits


def _split(text: str, r: RecognizerResult) -> list[RecognizerResult]:
    """A PERSON span cut at connecting words ("Mai to Jerry", "Anna and Ben") into one span per name."""
    if r.entity_type != PERSON:
        return [r]
    pieces, start = [], r.start
    for m in CONNECTOR.finditer(text, r.start, r.end):
        pieces.append((start, m.start()))
        start = m.end()
    pieces.append((start, r.end))
    if len(pieces) == 1:
        return [r]
    return [
        _result(s, e, r.recognition_metadata.get(RecognizerResult.RECOGNIZER_NAME_KEY, ""))
        for s, e in pieces
        if e > s
    ]


def _trim(text: str, r: RecognizerResult) -> RecognizerResult | None:
    """The span cut at its first line break and stripped of punctuation and a possessive; None if empty."""
    start, end = r.start, r.end
    value = text[start:end]
    lines = [line for line in re.split(r"\n", value)]
    first = next((i for i, line in enumerate(lines) if line.strip(TRAILING)), None)
    if first is None:
        return None
    start += sum(len(line) + 1 for line in lines[:first])
    end = start + len(lines[first])
    while start < end and text[start] in TRAILING:
        start += 1
    while end > start:
        possessive = POSSESSIVE.search(text, start, end)
        if text[end - 1] in TRAILING:
            end -= 1
        elif possessive and possessive.end() == end and end - possessive.start() <= 2:
            end = possessive.start()
        else:
            break
    unit = UNIT_TAIL.search(text, start, end)
    if unit:
        end = unit.start()
    if end < len(text) and text[end] == "." and SUFFIX.fullmatch(" " + text[start:end].split()[-1] + "."):
        end += 1  # "Keith Bult Jr." keeps its period
    lead = LEADING_LOWER.match(text, start, end)
    if lead and not text[start:end].islower():
        start = lead.end()  # "a John Smith concert": the article is not part of the name
    while (word := LEADING_WORD.match(text, start, end)) and word.group(1) in STOP_WORDS:
        start = word.end()  # the same in lower-case text ("a david lange concert"), by stop words
    if end - start < 2:
        return None
    r.start, r.end = start, end
    return r


def _extend(text: str, r: RecognizerResult) -> RecognizerResult:
    """A span ending in a name particle ("Donald van") extended over the rest of the name ("der Voet"),
    and over a suffix that follows it ("Jr.", "PhD")."""
    words = text[r.start : r.end].split()
    if words and words[-1].lower() in PARTICLES:
        tail = PARTICLE_TAIL.match(text, r.end - len(words[-1]) - 1)
        if tail:
            r.end = tail.end()
    suffix = SUFFIX.match(text, r.end)
    if suffix:
        r.end = suffix.end()
    return r


def _followed(text: str, r: RecognizerResult, cues: set[str]) -> bool:
    """One of the cue words follows the span or ends it ("Allen Institute", "Mclaughlin Ltd")."""
    words = text[r.start : r.end].split()
    last = words[-1].lower().strip(".,") if words else ""
    following = NEXT_WORD.match(text, r.end)
    nxt = following.group(1).lower().strip(".,") if following and "\n" not in following.group(0) else ""
    return last in cues or nxt in cues


def _address(text: str, r: RecognizerResult, cues: set[str]) -> bool:
    """A street word follows or ends the span, a house number is next to it, or it holds a digit."""
    before = PREVIOUS_TOKEN.search(text, max(0, r.start - 40), r.start)
    house_number = bool(
        before and before.group(1).rstrip(",").isdigit() and "\n" not in text[before.start() : r.start]
    )
    trailing_number = bool(re.match(r"[ \t]+\d{1,5}\b", text[r.end : r.end + 7]))
    has_digit = any(c.isdigit() for c in text[r.start : r.end])
    return _followed(text, r, cues) or house_number or trailing_number or has_digit


def _previous_word(text: str, r: RecognizerResult) -> str:
    before = PREVIOUS_TOKEN.search(text, max(0, r.start - 40), r.start)
    return (
        before.group(1).lower().strip(".,") if before and "\n" not in text[before.start() : r.start] else ""
    )


def _cue_names(text: str, results: list[RecognizerResult]) -> list[RecognizerResult]:
    """PERSON results for capitalised names after a naming cue that no PERSON result covers yet."""
    taken = SpanIndex((r.start, r.end) for r in results if r.entity_type == PERSON)
    out = []
    cue = LOWER_CUE if text.islower() else CUE
    for m in cue.finditer(text):
        start, end = m.span(1)
        words = m.group(1).lower().split()
        if taken.overlaps(start, end) or words[0] in NOT_NAMES:
            continue
        if len(words) > 1 and words[1] in NOT_NAMES | {"to", "and", "but", "is", "was", "back", "at", "on"}:
            end = start + len(m.group(1).split()[0])
        out.append(_result(start, end, "NamingCue"))
    return out


def _listed(text: str, results: list[RecognizerResult]) -> list[RecognizerResult]:
    """PERSON results for the other members of a list ("Anna, Ben and Carla") one of whose single-word
    members is already a PERSON result; members that other results cover are left alone."""
    singles = {(r.start, r.end) for r in results if r.entity_type == PERSON}
    taken = SpanIndex((r.start, r.end) for r in results)
    out = []
    for run in NAME_LIST.finditer(text):
        members = [m.span() for m in re.finditer(ONE_NAME, run.group(0))]
        members = [(run.start() + s, run.start() + e) for s, e in members]
        if not any(m in singles for m in members):
            continue
        for start, end in members:
            if not taken.overlaps(start, end):
                out.append(_result(start, end, "NameList"))
    return out


def _titled(text: str, results: list[RecognizerResult], mode: str) -> list[RecognizerResult]:
    """A title right before a PERSON span (or at its start) made its own span (`separate`) or part of
    the name's (`include`)."""
    out = []
    for r in results:
        out.append(r)
        if r.entity_type != PERSON:
            continue
        inner = TITLE_AT.match(text, r.start, r.end)
        if inner and inner.end() < r.end:
            title = (r.start, r.start + len(inner.group(1)))
            r.start = inner.end()
        else:
            before = TITLE_BEFORE.search(text, max(0, r.start - 8), r.start)
            if not before:
                continue
            title = before.span(1)
        if mode == "include":
            r.start = title[0]
        else:
            out.append(_result(*title, "Title"))
    return out


def _result(start: int, end: int, recognizer: str) -> RecognizerResult:
    metadata = {
        RecognizerResult.RECOGNIZER_NAME_KEY: recognizer,
        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer,
    }
    return RecognizerResult(PERSON, start, end, 0.85, recognition_metadata=metadata)
