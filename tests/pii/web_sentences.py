"""The hand-labelled web sentences (tests/data/pii_web_sentences.jsonl) in presidio-research's record format.

Sentences from dolma's Apache-2.0 samples are stored with their text. The trafilatura pages are
third-party and stay in the shared data folder, so for them the file holds only the page, a hash of
the sentence and the labels; the sentence is found again here by extracting the page's main text the
way it was drawn (resiliparse, main content), splitting it into sentences and matching the hash.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "pii_web_sentences.jsonl"
PAGES = Path("web") / "trafilatura_eval" / "trafilatura_tests.tar.xz"
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“(])|\n+")
ENTITIES = ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "LOCATION"]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _page_sentences(shared_data: Path, names: set[str]) -> dict[str, list[str]]:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    out = {}
    with tarfile.open(shared_data / PAGES) as tar:
        for member in tar:
            name = member.name.split("/")[-1]
            if member.isfile() and name in names:
                raw = tar.extractfile(member).read()
                text = extract_plain_text(bytes_to_str(raw, detect_encoding(raw)), main_content=True)
                out[name] = [s.strip() for s in SENTENCE_SPLIT.split(text)]
    return out


def load_web_sentences(shared_data: Path) -> list[dict]:
    """Records `{full_text, spans: [{entity_type, start_position, end_position}]}`; a sentence that cannot
    be found again (another resiliparse version) is an error naming it, never silently skipped."""
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    pages = {r["source"].split("/", 1)[1] for r in rows if "text" not in r}
    sentences = _page_sentences(shared_data, pages)
    records = []
    for row in rows:
        if "text" in row:
            text = row["text"]
        else:
            page = row["source"].split("/", 1)[1]
            found = [s for s in sentences.get(page, []) if _digest(s) == row["sha256"]]
            if not found:
                raise LookupError(f"sentence {row['sha256']} of {row['source']} not found in the page's text")
            text = found[0]
        spans = [{"entity_type": t, "start_position": s, "end_position": e} for t, s, e in row["spans"]]
        records.append({"full_text": text, "spans": spans})
    return records
