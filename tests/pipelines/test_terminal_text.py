"""The terminal sanitiser: hostile control sequences come out visible and inert."""

from __future__ import annotations

from pipelines.framework.terminal_text import for_terminal, path_for_display


def test_escape_sequences_are_shown_not_sent():
    hostile = "title\x1b]0;pwned\x07 clear\x1b[2J end\x9b31m"
    shown = for_terminal(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown
    assert shown == "title\\x1b]0;pwned\\x07 clear\\x1b[2J end\\x9b31m"


def test_bidi_overrides_and_separators_are_visible():
    shown = for_terminal("invoice\u202egpj.exe\u2066x\u2069\u2028y")
    assert shown == "invoice\\u202egpj.exe\\u2066x\\u2069\\u2028y"


def test_newlines_kept_only_when_asked():
    assert for_terminal("a\nb\tc\r") == "a\\nb\\tc\\r"
    assert for_terminal("a\nb\x1b", keep_newlines=True) == "a\nb\\x1b"


def test_invalid_utf8_shown_as_byte_escapes():
    assert for_terminal(b"caf\xe9 \xff ok") == "caf\\xe9 \\xff ok"
    name = b"caf\xe9.jsonl".decode("utf-8", errors="surrogateescape")
    assert path_for_display(name) == "caf\\xe9.jsonl"
    assert path_for_display(b"/data/caf\xe9.jsonl") == "/data/caf\\xe9.jsonl"


def test_printable_text_is_untouched():
    text = "Grüße, 日本語, emoji 👍🏽, עברית, [bold]markup[/bold]"
    assert for_terminal(text) == text
    assert for_terminal(None) == ""


def test_cut_never_splits_an_escape():
    shown = for_terminal("ab\x1bcd", max_chars=5)
    assert shown == "ab…"
    assert for_terminal("ab\x1bcd", max_chars=7) == "ab\\x1b…"
    assert for_terminal("short", max_chars=10) == "short"
