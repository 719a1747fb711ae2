"""Compiled regex programs reused across processes: exactly `re`'s program, and a fallback for anything odd."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from curation import regex_cache
from curation.regex_cache import build, cached_compile, cached_compiles, program

PATTERNS = [
    (r"(?P<word>\w+)-(\d+)|[^\W\d]+", re.IGNORECASE),
    (r"^(?:l|d|qu|j|n|s|t|m|c)['’](?=\w)", re.IGNORECASE | re.UNICODE),
    (r"(?<=[a-zà-ÿ])\.(?=[A-ZÀ-Ý])|\b(?:aujourd'hui|peut-être|c'est-à-dire)\b", 0),
    (r"(a|b)*?c{2,5}(?=d)(?!e)\1", re.MULTILINE | re.DOTALL),
]
TEXT = "Ab-12 cd Éf-3 45 l'homme qu’il peut-être c'est-à-dire fin.Début abcccd aaccccd\nbbccd"


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("REFINERY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(regex_cache, "MIN_SECONDS", 0.0)  # every compile is stored
    return tmp_path / "regex"


def _same(mine, ref) -> None:
    assert (mine.pattern, mine.flags, mine.groups, mine.groupindex) == (
        ref.pattern,
        ref.flags,
        ref.groups,
        ref.groupindex,
    )
    assert [m.groups() for m in mine.finditer(TEXT)] == [m.groups() for m in ref.finditer(TEXT)]
    assert [m.span() for m in mine.finditer(TEXT)] == [m.span() for m in ref.finditer(TEXT)]


def test_this_python_is_supported():
    # CI's Python must take the fast path; otherwise the cache silently does nothing.
    assert regex_cache.WORKS


@pytest.mark.parametrize(("pattern", "flags"), PATTERNS)
def test_the_program_is_the_one_re_builds(pattern, flags):
    _same(build(pattern, program(pattern, flags)), re.compile(pattern, flags))


@pytest.mark.parametrize(("pattern", "flags"), PATTERNS)
def test_a_stored_program_is_read_back_and_matches_the_same(cache_dir, pattern, flags, monkeypatch):
    first = cached_compile(pattern, flags)
    assert len(list(cache_dir.glob("*.marshal"))) == 1
    # The second compile must come from the file: compiling again would fail here.
    monkeypatch.setattr(regex_cache, "program", lambda *_: pytest.fail("compiled again"))
    second = cached_compile(pattern, flags)
    _same(first, re.compile(pattern, flags))
    _same(second, re.compile(pattern, flags))
    for stored in cache_dir.glob("*.marshal"):
        stored.unlink()


def test_a_damaged_or_foreign_file_is_compiled_afresh(cache_dir):
    pattern, flags = PATTERNS[0]
    cached_compile(pattern, flags)
    (stored,) = cache_dir.glob("*.marshal")
    stored.write_bytes(stored.read_bytes()[:40])  # truncated
    _same(cached_compile(pattern, flags), re.compile(pattern, flags))
    stored.write_bytes(b"not marshal at all")
    _same(cached_compile(pattern, flags), re.compile(pattern, flags))


def test_flags_and_patterns_get_their_own_files(cache_dir):
    cached_compile("abc", 0)
    cached_compile("abc", re.IGNORECASE)
    cached_compile("abd", 0)
    assert len(list(cache_dir.glob("*.marshal"))) == 3
    assert not cached_compile("abc", 0).match("ABC")
    assert cached_compile("abc", re.IGNORECASE).match("ABC")


def test_an_unwritable_folder_only_means_no_reuse(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    monkeypatch.setenv("REFINERY_CACHE_DIR", str(blocker))
    monkeypatch.setattr(regex_cache, "MIN_SECONDS", 0.0)
    _same(cached_compile(*PATTERNS[1]), re.compile(*PATTERNS[1]))


def test_only_the_block_goes_through_the_cache(cache_dir):
    with cached_compiles():
        re.compile("x(?=y)inside", re.IGNORECASE)
    re.compile("x(?=y)outside", re.IGNORECASE)
    assert len(list(cache_dir.glob("*.marshal"))) == 1
    assert re._compiler.compile.__module__ == "re._compiler"


def test_spacy_french_rules_built_from_the_cache_split_the_same(tmp_path):
    """French through a fresh process twice (the second reading the 1.45 MB pattern's program from
    disk) against spaCy built without the cache: the same words on real French text."""
    lingua = Path(__file__).parents[2] / ".." / "shared" / "data" / "langid" / "lingua"
    sentences = lingua / "language-testdata" / "sentences" / "fr.txt"
    if not sentences.exists():
        pytest.skip(f"{sentences} is absent (../shared/data not mounted)")
    script = (
        "import sys, spacy\n"
        "from curation.regex_cache import cached_compiles\n"
        "text = open(sys.argv[1], encoding='utf-8').read()\n"
        "if sys.argv[2] == 'cache':\n"
        "    with cached_compiles():\n"
        "        nlp = spacy.blank('fr')\n"
        "else:\n"
        "    nlp = spacy.blank('fr')\n"
        "print('\\n'.join(t.text for t in nlp.tokenizer(text)))\n"
    )
    env = {**os.environ, "REFINERY_CACHE_DIR": str(tmp_path)}

    def split(mode: str) -> str:
        run = subprocess.run(
            [sys.executable, "-c", script, str(sentences), mode],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=Path(__file__).parents[2],
        )
        return run.stdout

    plain, first, second = split("plain"), split("cache"), split("cache")
    assert list((tmp_path / "regex").glob("*.marshal")), "the French pattern was not stored"
    assert first == plain and second == plain
    assert len(plain.split("\n")) > 10_000
