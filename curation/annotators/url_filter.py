"""URL/domain blocklist with datatrove's and dolma's matching: `url_filter_blocked`, `url_filter_match`.

The list file holds one entry a line (blank lines and `#` lines skipped), in any
mix of three forms:

- a domain (`danger.org`): blocks that registered domain and every subdomain
  (`hey.danger.org`); match `domain`;
- a host under a registered domain (`bad.nice.com`): blocks exactly that host,
  not `nice.com` nor `x.bad.nice.com` (datatrove's URLFilter); match `subdomain`;
- a full URL (`http://example.com/foo/bar`): blocks that URL whatever its scheme,
  with or without a trailing slash, not longer or shorter paths (dolma's URL
  tagger); match `url`.

Hosts-file lines (`0.0.0.0 example2.com`, `::1 example3.com`) list the names after
the address, so published ad and malware host lists load unchanged. The
registered domain comes from the Public Suffix List snapshot bundled with
tldextract (never downloaded), so `foo.co.uk` is a domain and `co.uk` is not.
A document without a URL is never blocked.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import tldextract
from pydantic import Field

from curation.annotators.base import Annotator, AnnotatorConfig, BatchContext, declared_rule
from curation.blocklist import url_host

BLOCKED = pa.field("url_filter_blocked", pa.bool_())
MATCH = pa.field("url_filter_match", pa.string())
RULE = declared_rule(
    "url_filter", BLOCKED.name, "true", means="URL, host or domain is in the url_filter list"
)

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@lru_cache(maxsize=100_000)
def registered_domain(host: str) -> str:
    """The host's domain under its public suffix (`hey.danger.org` -> `danger.org`), "" if none."""
    return _EXTRACT(host).top_domain_under_public_suffix


def _is_address(token: str) -> bool:
    try:
        ipaddress.ip_address(token)
    except ValueError:
        return False
    return True


def url_key(url: str) -> str:
    """A URL without scheme and trailing slashes, host lower-cased: how listed URLs are compared."""
    rest = url.strip().split("://", 1)[-1]
    host, slash, path = rest.partition("/")
    return (host.lower() + slash + path).rstrip("/")


def list_entries(path: str | Path) -> tuple[frozenset[str], frozenset[str]]:
    """(domains and hosts, URL keys) listed in a file; hosts-file lines give the names after the address."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"url_filter list {file} does not exist (one domain, host or URL per line)")
    names: set[str] = set()
    urls: set[str] = set()
    for line in file.read_text(encoding="utf-8").splitlines():
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        for entry in tokens[1:] if len(tokens) > 1 and _is_address(tokens[0]) else tokens[:1]:
            key = url_key(entry)
            if "/" in key:
                urls.add(key)
            elif key.rstrip("."):
                names.add(key.rstrip("."))
    if not names and not urls:
        raise ValueError(f"url_filter list {file} has no entries")
    return frozenset(names), frozenset(urls)


class UrlFilterConfig(AnnotatorConfig):
    path: str = Field(
        description="list file: domains, hosts or full URLs, one per line (hosts-file lines too)"
    )


class UrlFilter(Annotator):
    """Flags documents whose URL is listed, with how it matched (domain, subdomain or url)."""

    name = "url_filter"
    Config = UrlFilterConfig
    columns = (BLOCKED, MATCH)
    rules = (RULE,)
    rule_rank = 15

    def __init__(self, config: UrlFilterConfig):
        super().__init__(config)
        self.names, self.urls = list_entries(config.path)

    def match(self, url: str | None) -> str | None:
        """How `url` is listed: "domain", "subdomain", "url", or None."""
        host = url_host(url)
        if host and registered_domain(host) in self.names:
            return "domain"
        if host in self.names:
            return "subdomain"
        if url and url_key(url) in self.urls:
            return "url"
        return None

    def compute(self, ctx: BatchContext) -> list[pa.Array]:
        matches = [self.match(url) for url in ctx.urls()]
        return [pa.array([m is not None for m in matches], pa.bool_()), pa.array(matches, pa.string())]
