"""URL/domain and word blocklists from user files (none is bundled: lists are policy, the user's call).

Domain file: one domain per line (`#` comments allowed); a URL is blocked when
its host is a listed domain or a subdomain of one (`ads.example.com` is blocked by
`example.com`). Word file: one word or phrase per line, matched case-insensitively
on word boundaries; the column counts occurrences so `decide` can use a minimum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa


def read_list(path: str | Path) -> list[str]:
    """Non-empty, non-comment lines of a user list file, lower-cased."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"blocklist file {file} does not exist (one entry per line expected)")
    entries = []
    for line in file.read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if entry:
            entries.append(entry)
    return entries


def url_host(url: str | None) -> str:
    if not url:
        return ""
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname or ""
    except ValueError:
        return ""
    return host.lower().rstrip(".")


@dataclass(frozen=True)
class DomainBlocklist:
    domains: frozenset[str]

    @classmethod
    def from_file(cls, path: str | Path) -> DomainBlocklist:
        return cls(frozenset(d.removeprefix("www.").strip(".") for d in read_list(path)))

    def blocked(self, url: str | None) -> bool:
        parts = url_host(url).split(".")
        return any(".".join(parts[i:]) in self.domains for i in range(len(parts)))

    def array(self, urls: list[str | None]) -> pa.Array:
        return pa.array([self.blocked(u) for u in urls], pa.bool_())


@dataclass(frozen=True)
class WordBlocklist:
    pattern: re.Pattern[str]

    @classmethod
    def from_file(cls, path: str | Path) -> WordBlocklist:
        words = sorted(set(read_list(path)), key=len, reverse=True)
        if not words:
            raise ValueError(f"word blocklist {path} has no entries")
        return cls(re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?!\w)", re.IGNORECASE))

    def count(self, text: str | None) -> int:
        return sum(1 for _ in self.pattern.finditer(text or ""))

    def array(self, texts: list[str | None]) -> pa.Array:
        return pa.array([self.count(t) for t in texts], pa.int64())
