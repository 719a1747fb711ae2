"""Recognizers refinery adds to Presidio's (written phone numbers, separated card numbers, Ethereum)
and a faster form of one of its own (phone numbers matched in windows around digit runs).

Each one covers what Presidio's predefined recognizer of the same entity misses
(measured on the tune half of presidio-research's data, docs/pii.md); Presidio's
recognizers still run beside them, so their matches are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import PhoneRecognizer

from pii.keccak import keccak256
from pii.settings import PhoneSettings

# Digit groups as people write phone numbers: an optional international prefix, an optional area code in
# parentheses, groups joined by one space, dash or dot, and an optional extension.
WRITTEN_PHONE = re.compile(
    r"(?<![\w+.,/:-])"
    r"(?P<number>(?:\+\d{1,3}[ .-]?|00\d{1,3}[ .-])?(?:\(\d{1,5}\)[ .-]?)?\d{1,5}(?:[ .-]\d{1,5}){0,5})"
    r"(?P<ext>\s?(?:x|ext\.?\s?)\d{1,6})?"
    r"(?![\w+]|[.,/:-]\d)"
)
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}-\d{2}-\d{4}")
POSTCODE_FIRST = re.compile(r"\d{5} ")
WORD = re.compile(r"[^\W\d_]+")
WRITTEN_SCORE = 0.6
CONTEXT_BEFORE = 40  # characters searched for a context word before a written number
CONTEXT_AFTER = 16  # and after it ("... 455 6186 office")
# Digit runs as phonenumbers' matcher sees them (digit blocks joined by up to four punctuation marks);
# a valid number in any region has at least four national digits.
PHONE_DIGIT_RUN = re.compile(r"\d(?:\W{0,4}\d){3,}")
PHONE_WINDOW_MARGIN = 24


class WrittenPhoneRecognizer(EntityRecognizer):
    """Phone numbers in written formats that no configured region validates, next to a context word.

    phonenumbers rejects numbers whose area code is not allocated, and numbers of
    regions outside the configured list; people still write them, with a word such
    as "call" or "fax" nearby. Without such a word, digit groups are too often
    dates, prices or references to count.
    """

    def __init__(self, settings: PhoneSettings):
        self.settings = settings
        self.context_words = frozenset(w.lower() for w in settings.context)
        super().__init__(supported_entities=["PHONE_NUMBER"], name="WrittenPhoneRecognizer")

    def load(self) -> None:
        """Nothing to load: a regex and a word list."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results = []
        for m in WRITTEN_PHONE.finditer(text):
            start, number = m.start(), m.group("number")
            if POSTCODE_FIRST.match(number) and self._digits(number[6:]) >= self.settings.min_digits:
                start, number = start + 6, number[6:]  # "Chile 89825 9885 1152": a postcode leads
            if not self._plausible(number) or not self._near_context(text, start, m.end()):
                continue
            results.append(
                RecognizerResult(
                    "PHONE_NUMBER",
                    start,
                    m.end(),
                    WRITTEN_SCORE,
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    },
                )
            )
        return results

    @staticmethod
    def _digits(text: str) -> int:
        return sum(c.isdigit() for c in text)

    def _plausible(self, number: str) -> bool:
        """Enough digits for a phone number, and not a date or a bare decimal."""
        digits = self._digits(number)
        if not self.settings.min_digits <= digits <= self.settings.max_digits or ISO_DATE.fullmatch(number):
            return False
        groups = re.split(r"[ .()-]+", number.strip("+()"))
        return len(groups) > 1 or digits >= 7

    def _near_context(self, text: str, start: int, end: int) -> bool:
        window = text[max(0, start - CONTEXT_BEFORE) : start] + " " + text[end : end + CONTEXT_AFTER]
        return any(w.lower() in self.context_words for w in WORD.findall(window))


# Card numbers in 3 to 5 groups with one kind of separator throughout (space, dash or dot).
SEPARATED_CARD = r"(?<![\d.-])\d{4}([ .-])\d{2,6}(?:\1\d{2,6}){1,3}(?![\d]|[.-]\d)"


class SeparatedCardRecognizer(PatternRecognizer):
    """Card numbers of 12-19 digits written in groups (dots included), checked with Luhn.

    Presidio's pattern takes 13-16 digits with known prefixes, spaces or dashes only.
    """

    def __init__(self) -> None:
        super().__init__(
            supported_entity="CREDIT_CARD",
            name="SeparatedCardRecognizer",
            patterns=[Pattern("card in groups", SEPARATED_CARD, 0.3)],
            context=["credit", "card", "visa", "mastercard", "amex", "debit", "cc"],
        )

    def validate_result(self, pattern_text: str) -> bool:
        digits = [int(c) for c in pattern_text if c.isdigit()]
        return 12 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_valid(digits)


def luhn_valid(digits: list[int]) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        total += d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2)
    return total % 10 == 0


class EthereumRecognizer(PatternRecognizer):
    """Ethereum addresses: `0x` and 40 hex digits, mixed case only with a valid EIP-55 checksum.

    A single-case address carries no checksum, so it scores low and needs a context word.
    """

    def __init__(self) -> None:
        super().__init__(
            supported_entity="CRYPTO",
            name="EthereumRecognizer",
            patterns=[Pattern("ethereum address", r"\b0x[0-9a-fA-F]{40}\b", 0.3)],
            context=["eth", "ethereum", "wallet", "address", "crypto", "send"],
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        body = pattern_text[2:]
        if body.islower() or body.isupper() or body.isdigit():
            return None  # no checksum to check: the pattern score (plus context) decides
        return body == eip55(body)


def eip55(hex_address: str) -> str:
    """The EIP-55 checksummed spelling of a 40-hex-digit address (without 0x)."""
    lower = hex_address.lower()
    digest = keccak256(lower.encode("ascii")).hex()
    return "".join(c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c for i, c in enumerate(lower))


class WindowedPhoneRecognizer(PhoneRecognizer):
    """Presidio's phone recognizer run on short windows around digit runs instead of the whole text.

    The matcher's candidates are digit blocks joined by punctuation, so every
    match lies inside one digit run; the margin keeps the characters the
    matcher inspects around a candidate (letters, extensions, time stamps).
    Runs with fewer than `min_digits` digits are skipped: no number in them could
    be kept (`PhoneSettings.min_digits`), and each region is one matcher pass.
    """

    def __init__(self, min_digits: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.min_digits = min_digits

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results = []
        for lo, hi in _phone_windows(text, self.min_digits):
            window = text[lo:hi]
            for region in self.supported_regions:
                for match in phonenumbers.PhoneNumberMatcher(window, region, leniency=self.leniency):
                    found = _Shifted(match.start + lo, match.end + lo)
                    results.append(self._get_recognizer_result(found, text, region, nlp_artifacts))
        return EntityRecognizer.remove_duplicates(results)


@dataclass(frozen=True)
class _Shifted:
    start: int
    end: int


def _phone_windows(text: str, min_digits: int = 1) -> list[tuple[int, int]]:
    """Merged [lo, hi) windows around every digit run long enough to be a phone number."""
    windows: list[tuple[int, int]] = []
    for m in PHONE_DIGIT_RUN.finditer(text):
        if min_digits > 4 and sum(c.isdigit() for c in m.group()) < min_digits:
            continue
        lo, hi = max(0, m.start() - PHONE_WINDOW_MARGIN), min(len(text), m.end() + PHONE_WINDOW_MARGIN)
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], hi)
        else:
            windows.append((lo, hi))
    return windows
