"""The one label table of language ID: every code a backend can output, its name and its script.

Labels are ISO 639-1 where the language has one, ISO 639-3 otherwise, so that
`decide: {languages: [...]}` and the per-language tables of the signals use one
vocabulary whichever backend decided. lid.176 mostly uses those codes already;
`LID176_RENAMES` fixes the few it does not (its `no` is Norwegian Wikipedia,
which is Bokmal; `sh` is Serbo-Croatian, withdrawn from 639-1; `als` is its
name for Alemannic, whose 639-3 code is `gsw`; `bh` is Bhojpuri Wikipedia).
The script (ISO 15924) is a property of the language except for the languages
in `MULTI_SCRIPT`, where it is read off the text's letters.
"""

from __future__ import annotations

import difflib

import regex

LID176_RENAMES = {"no": "nb", "sh": "hbs", "als": "gsw", "bh": "bho"}

# code: (English name, script). Han covers both simplified and traditional Chinese.
LABELS: dict[str, tuple[str, str]] = {
    "af": ("Afrikaans", "Latn"), "am": ("Amharic", "Ethi"), "an": ("Aragonese", "Latn"),
    "ar": ("Arabic", "Arab"), "arz": ("Egyptian Arabic", "Arab"), "as": ("Assamese", "Beng"),
    "ast": ("Asturian", "Latn"), "av": ("Avaric", "Cyrl"), "az": ("Azerbaijani", "Latn"),
    "azb": ("South Azerbaijani", "Arab"), "ba": ("Bashkir", "Cyrl"), "bar": ("Bavarian", "Latn"),
    "bcl": ("Central Bikol", "Latn"), "be": ("Belarusian", "Cyrl"), "bg": ("Bulgarian", "Cyrl"),
    "bho": ("Bhojpuri", "Deva"), "bn": ("Bengali", "Beng"), "bo": ("Tibetan", "Tibt"),
    "bpy": ("Bishnupriya", "Beng"), "br": ("Breton", "Latn"), "bs": ("Bosnian", "Latn"),
    "bxr": ("Russia Buriat", "Cyrl"), "ca": ("Catalan", "Latn"), "cbk": ("Chavacano", "Latn"),
    "ce": ("Chechen", "Cyrl"), "ceb": ("Cebuano", "Latn"), "ckb": ("Central Kurdish", "Arab"),
    "co": ("Corsican", "Latn"), "cs": ("Czech", "Latn"), "cv": ("Chuvash", "Cyrl"),
    "cy": ("Welsh", "Latn"), "da": ("Danish", "Latn"), "de": ("German", "Latn"),
    "diq": ("Dimli", "Latn"), "dsb": ("Lower Sorbian", "Latn"), "dty": ("Dotyali", "Deva"),
    "dv": ("Dhivehi", "Thaa"), "el": ("Greek", "Grek"), "eml": ("Emilian-Romagnol", "Latn"),
    "en": ("English", "Latn"), "eo": ("Esperanto", "Latn"), "es": ("Spanish", "Latn"),
    "et": ("Estonian", "Latn"), "eu": ("Basque", "Latn"), "fa": ("Persian", "Arab"),
    "fi": ("Finnish", "Latn"), "fr": ("French", "Latn"), "frr": ("Northern Frisian", "Latn"),
    "fy": ("Western Frisian", "Latn"), "ga": ("Irish", "Latn"), "gd": ("Scottish Gaelic", "Latn"),
    "gl": ("Galician", "Latn"), "gn": ("Guarani", "Latn"), "gom": ("Goan Konkani", "Deva"),
    "gsw": ("Alemannic", "Latn"), "gu": ("Gujarati", "Gujr"), "gv": ("Manx", "Latn"),
    "hbs": ("Serbo-Croatian", "Latn"), "he": ("Hebrew", "Hebr"), "hi": ("Hindi", "Deva"),
    "hif": ("Fiji Hindi", "Latn"), "hr": ("Croatian", "Latn"), "hsb": ("Upper Sorbian", "Latn"),
    "ht": ("Haitian Creole", "Latn"), "hu": ("Hungarian", "Latn"), "hy": ("Armenian", "Armn"),
    "ia": ("Interlingua", "Latn"), "id": ("Indonesian", "Latn"), "ie": ("Interlingue", "Latn"),
    "ilo": ("Iloko", "Latn"), "io": ("Ido", "Latn"), "is": ("Icelandic", "Latn"),
    "it": ("Italian", "Latn"), "ja": ("Japanese", "Jpan"), "jbo": ("Lojban", "Latn"),
    "jv": ("Javanese", "Latn"), "ka": ("Georgian", "Geor"), "kk": ("Kazakh", "Cyrl"),
    "km": ("Khmer", "Khmr"), "kn": ("Kannada", "Knda"), "ko": ("Korean", "Kore"),
    "krc": ("Karachay-Balkar", "Cyrl"), "ku": ("Kurdish", "Latn"), "kv": ("Komi", "Cyrl"),
    "kw": ("Cornish", "Latn"), "ky": ("Kyrgyz", "Cyrl"), "la": ("Latin", "Latn"),
    "lb": ("Luxembourgish", "Latn"), "lez": ("Lezghian", "Cyrl"), "lg": ("Ganda", "Latn"),
    "li": ("Limburgish", "Latn"), "lmo": ("Lombard", "Latn"), "lo": ("Lao", "Laoo"),
    "lrc": ("Northern Luri", "Arab"), "lt": ("Lithuanian", "Latn"), "lv": ("Latvian", "Latn"),
    "mai": ("Maithili", "Deva"), "mg": ("Malagasy", "Latn"), "mhr": ("Eastern Mari", "Cyrl"),
    "mi": ("Maori", "Latn"), "min": ("Minangkabau", "Latn"), "mk": ("Macedonian", "Cyrl"),
    "ml": ("Malayalam", "Mlym"), "mn": ("Mongolian", "Cyrl"), "mr": ("Marathi", "Deva"),
    "mrj": ("Western Mari", "Cyrl"), "ms": ("Malay", "Latn"), "mt": ("Maltese", "Latn"),
    "mwl": ("Mirandese", "Latn"), "my": ("Burmese", "Mymr"), "myv": ("Erzya", "Cyrl"),
    "mzn": ("Mazanderani", "Arab"), "nah": ("Nahuatl", "Latn"), "nap": ("Neapolitan", "Latn"),
    "nb": ("Norwegian Bokmal", "Latn"), "nds": ("Low German", "Latn"), "ne": ("Nepali", "Deva"),
    "new": ("Newari", "Deva"), "nl": ("Dutch", "Latn"), "nn": ("Norwegian Nynorsk", "Latn"),
    "oc": ("Occitan", "Latn"), "or": ("Odia", "Orya"), "os": ("Ossetic", "Cyrl"),
    "pa": ("Punjabi", "Guru"), "pam": ("Pampanga", "Latn"), "pfl": ("Palatine German", "Latn"),
    "pl": ("Polish", "Latn"), "pms": ("Piedmontese", "Latn"), "pnb": ("Western Punjabi", "Arab"),
    "ps": ("Pashto", "Arab"), "pt": ("Portuguese", "Latn"), "qu": ("Quechua", "Latn"),
    "rm": ("Romansh", "Latn"), "ro": ("Romanian", "Latn"), "ru": ("Russian", "Cyrl"),
    "rue": ("Rusyn", "Cyrl"), "sa": ("Sanskrit", "Deva"), "sah": ("Yakut", "Cyrl"),
    "sc": ("Sardinian", "Latn"), "scn": ("Sicilian", "Latn"), "sco": ("Scots", "Latn"),
    "sd": ("Sindhi", "Arab"), "si": ("Sinhala", "Sinh"), "sk": ("Slovak", "Latn"),
    "sl": ("Slovenian", "Latn"), "sn": ("Shona", "Latn"), "so": ("Somali", "Latn"),
    "sq": ("Albanian", "Latn"), "sr": ("Serbian", "Cyrl"), "st": ("Southern Sotho", "Latn"),
    "su": ("Sundanese", "Latn"), "sv": ("Swedish", "Latn"), "sw": ("Swahili", "Latn"),
    "ta": ("Tamil", "Taml"), "te": ("Telugu", "Telu"), "tg": ("Tajik", "Cyrl"),
    "th": ("Thai", "Thai"), "tk": ("Turkmen", "Latn"), "tl": ("Tagalog", "Latn"),
    "tn": ("Tswana", "Latn"), "tr": ("Turkish", "Latn"), "ts": ("Tsonga", "Latn"),
    "tt": ("Tatar", "Cyrl"), "tyv": ("Tuvinian", "Cyrl"), "ug": ("Uyghur", "Arab"),
    "uk": ("Ukrainian", "Cyrl"), "ur": ("Urdu", "Arab"), "uz": ("Uzbek", "Latn"),
    "vec": ("Venetian", "Latn"), "vep": ("Veps", "Latn"), "vi": ("Vietnamese", "Latn"),
    "vls": ("West Flemish", "Latn"), "vo": ("Volapuk", "Latn"), "wa": ("Walloon", "Latn"),
    "war": ("Waray", "Latn"), "wuu": ("Wu Chinese", "Hani"), "xal": ("Kalmyk", "Cyrl"),
    "xh": ("Xhosa", "Latn"), "xmf": ("Mingrelian", "Geor"), "yi": ("Yiddish", "Hebr"),
    "yo": ("Yoruba", "Latn"), "yue": ("Cantonese", "Hani"), "zh": ("Chinese", "Hani"),
    "zu": ("Zulu", "Latn"),
}  # fmt: skip

# Languages written in Latin or Cyrillic (or, for Mongolian, Cyrillic or Mongolian): the text decides.
MULTI_SCRIPT: dict[str, tuple[str, ...]] = {
    code: ("Latn", "Cyrl") for code in ("sr", "hbs", "bs", "az", "uz", "kk", "tk", "ky", "tg", "ku")
} | {"mn": ("Cyrl", "Mong")}
_SCRIPT_PATTERNS = {s: regex.compile(rf"\p{{Script={s}}}") for s in ("Latn", "Cyrl", "Mong")}
SCRIPT_SAMPLE = 1000  # characters read to tell a multi-script language's script


def from_lid176(label: str) -> str:
    """Our label for one of lid.176's."""
    return LID176_RENAMES.get(label, label)


def script_of(code: str | None, text: str | None) -> str | None:
    """The ISO 15924 script of `text` written in language `code` (null for a null language).

    Only multi-script languages look at the text, and only at its first
    characters: the column must cost nothing for the other 99% of documents.
    """
    if code is None:
        return None
    scripts = MULTI_SCRIPT.get(code)
    if scripts is None:
        return LABELS.get(code, ("", "Zyyy"))[1]
    sample = (text or "")[:SCRIPT_SAMPLE]
    return max(scripts, key=lambda s: len(_SCRIPT_PATTERNS[s].findall(sample)))


def check_label(code: str) -> str:
    """`code` when language ID can output it; a ValueError naming the labels meant otherwise.

    Why: a language list is a filter, and a code no backend outputs (`eng`, `english`, `no`) keeps
    nothing of that language without a word, so it is refused when the spec is read.
    """
    if code in LABELS:
        return code
    if code in LID176_RENAMES:
        raise ValueError(f"{code!r} is lid.176's code; refinery's label for it is {LID176_RENAMES[code]!r}")
    names = {name.lower(): label for label, (name, _) in LABELS.items()}
    meant = names.get(code.lower()) or next(
        (names[n] for n in difflib.get_close_matches(code.lower(), names, n=1, cutoff=0.8)), None
    )
    close = [meant] if meant else difflib.get_close_matches(code.lower(), LABELS, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"{code!r} is not a language label: labels are ISO 639-1 codes (639-3 where none exists), "
        f"listed in curation/langid/labels.py{hint}"
    )
