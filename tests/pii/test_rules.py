"""refinery's recognizers and rules beside Presidio's: phones, cards, Ethereum, PERSON spans, profiles."""

from __future__ import annotations

import pytest

from pii.engine import get_analyzer
from pii.keccak import keccak256
from pii.recognizers import eip55
from pii.settings import PhoneSettings, PiiSettings


def _found(text: str, settings: PiiSettings | None = None) -> list[tuple[str, str]]:
    results = get_analyzer(settings or PiiSettings()).analyze(text)
    return sorted((r.entity_type, text[r.start : r.end]) for r in results)


def test_keccak256_known_digests():
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak256(b"abc").hex() == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"


def test_ethereum_eip55():
    good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55's own example
    assert eip55(good[2:].lower()) == good[2:]
    assert ("CRYPTO", good) in _found(f"send it to {good} today")
    broken = good[:5] + good[5].swapcase() + good[6:]
    assert not [e for e, _ in _found(f"send it to {broken} today") if e == "CRYPTO"]
    lower = good.lower()
    assert ("CRYPTO", lower) in _found(f"my ethereum wallet: {lower}")  # no checksum: context decides
    assert not [e for e, _ in _found(f"commit {lower} fixed the build") if e == "CRYPTO"]


@pytest.mark.parametrize(
    "card", ["4111.1111.1111.1111", "4111 1111 1111 1111", "6011-0009-9013-9424", "3782 822463 10005"]
)
def test_cards_with_separators(card):
    assert ("CREDIT_CARD", card) in _found(f"card {card} expires soon")


def test_card_failing_luhn_is_not_a_card():
    assert not [e for e, _ in _found("card 4111.1111.1111.1112 expires") if e == "CREDIT_CARD"]


@pytest.mark.parametrize(
    "text, number",
    [
        ("They're not answering at (88) 684-334", "(88) 684-334"),
        ("Phone: 88 165 40 96", "88 165 40 96"),
        ("Chile 89825 9885 1152-Office", "9885 1152"),  # the postcode before it is not part of it
        ("office 001-748-088-2851x818 fax", "001-748-088-2851x818"),
        ("You can call 9469 9966", "9469 9966"),
    ],
)
def test_written_phone_numbers_with_context(text, number):
    assert ("PHONE_NUMBER", number) in _found(text)


def test_written_numbers_need_context_and_presidio_profile_has_none():
    assert ("PHONE_NUMBER", "61 51 81") in _found("Phone: 61 51 81")
    assert not [e for e, _ in _found("Invoice 61 51 81 was paid") if e == "PHONE_NUMBER"]
    assert not [e for e, _ in _found("Phone: 61 51 81", PiiSettings(profile="presidio_default"))]


def test_cards_ssns_and_ip_addresses_are_not_phones():
    found = _found("card 4929697010226317, SSN 081-80-5372, host 86.231.85.193")
    assert [e for e, _ in found if e == "PHONE_NUMBER"] == []
    assert {"CREDIT_CARD", "US_SSN", "IP_ADDRESS"} <= {e for e, _ in found}


def test_phone_regions_are_a_setting():
    text = "Llámanos al 912 345 678 hoy."  # a Madrid number: ES is not among the default regions
    assert not [e for e, _ in _found(text) if e == "PHONE_NUMBER"]
    spain = PiiSettings(phone=PhoneSettings(regions=["US", "GB", "ES"]))
    assert ("PHONE_NUMBER", "912 345 678") in _found(text, spain)
    assert ("PHONE_NUMBER", "+34 912 345 678") in _found("Llámanos al +34 912 345 678 hoy.")


def test_unknown_phone_region_names_the_field():
    with pytest.raises(ValueError, match="unknown phone regions.*XX"):
        PiiSettings(phone={"regions": ["US", "XX"]})


@pytest.mark.parametrize(
    "text, person",
    [
        ("Name:    Christopher Cadena\nAddress:     81 Dikbas Road", "Christopher Cadena"),  # line break
        ("they sang verses from Kevin Lamovec's Cautionary Tales.", "Kevin Lamovec"),  # possessive
        ("It's under my partner's name Donald van der Voet", "Donald van der Voet"),  # particles
        ("My name is Nunzia", "Nunzia"),  # naming cue
        ("They had 6: Malon, Mark, Kaylee, Brandi, Miguel and Jennifer.", "Kaylee"),  # list with a person
        ("I'm so jealous! said Mai to Jerry", "Jerry"),  # a span over "to" is two names
        ("This song by ex-Zombie Ekmečić is a perfect example", "Ekmečić"),  # leading lower-case word
        ("American action-comedy film directed by Keith Bult Jr. and starring Ruf", "Keith Bult Jr."),
        ("my name is mieszko", "mieszko"),  # lower-case text
        ("Mrs. Diana Weöres Apt. 434 40 Rue de la Sarthe", "Diana Weöres"),  # a unit word ends the name
    ],
)
def test_person_rules_find_the_name(text, person):
    assert ("PERSON", person) in _found(text)


@pytest.mark.parametrize(
    "text, not_person",
    [
        ("Models from the Allen Institute for AI were used.", "Allen"),  # organisation cue
        ("I'd like to call a taxi to 03 2657 Koontz Lane Apt. 602", "Koontz"),  # street cue
        ("Please update the billing address with USS Napolitani FPO AP 70381", "Napolitani"),
        ("My e-mail is BarteleExterkate@teleworm.us", "BarteleExterkate"),  # inside an e-mail address
    ],
)
def test_person_rules_drop_false_people(text, not_person):
    assert not [v for e, v in _found(text) if e == "PERSON" and not_person in v]


def test_presidio_default_profile_keeps_presidio_spans():
    text = "Name:    Christopher Cadena\nAddress:     81 Dikbas Road"
    presidio = _found(text, PiiSettings(profile="presidio_default"))
    assert ("PERSON", "Christopher Cadena\nAddress") in presidio
    explicit = PiiSettings(profile="presidio_default", person={"boundaries": True})
    assert explicit.person.boundaries and not explicit.person.cues  # a setting given explicitly wins


@pytest.mark.parametrize(
    "entity, value",
    [
        ("IBAN_CODE", "GB82 WEST 1234 5698 7654 32"),  # IBAN written in groups
        ("CRYPTO", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"),  # base58check, P2PKH
        ("CRYPTO", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),  # base58check, P2SH
        ("CRYPTO", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),  # bech32 (BIP 173's example)
        ("PHONE_NUMBER", "+44 20 7946 0958"),  # international format
    ],
)
def test_checked_formats(entity, value):
    assert (entity, value) in _found(f"details: {value} (see above)")


def test_street_prefix_is_not_a_person():
    text = "The office is at 57 avenue Jules Ferry, near the station."
    assert not [v for e, v in _found(text) if e == "PERSON" and "Jules" in v]
    assert ("PERSON", "Jules Ferry") in _found(
        text, PiiSettings(person={"street_prefixes": [], "street_cues": []})
    )
