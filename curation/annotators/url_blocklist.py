"""Domain blocklist from a user file: `url_blocked` is true when the URL's host or a parent domain is listed.

`ads.example.com` is blocked by `example.com` (any depth). For datatrove's and dolma's
semantics (registered domain or exact host, full URLs, hosts-file lines) see `url_filter`.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from curation.annotators.base import Annotator, AnnotatorConfig, BatchContext, declared_rule
from curation.blocklist import DomainBlocklist

FIELD = pa.field("url_blocked", pa.bool_())
RULE = declared_rule("url_blocklist", FIELD.name, "true", means="URL's domain is in the domain blocklist")


class UrlBlocklistConfig(AnnotatorConfig):
    path: str = Field(description="file of blocked domains, one per line (# comments), subdomains included")


class UrlBlocklist(Annotator):
    """Flags documents whose URL (the stage's `url_column`) is on a listed domain."""

    name = "url_blocklist"
    Config = UrlBlocklistConfig
    columns = (FIELD,)
    rules = (RULE,)
    rule_rank = 10

    def __init__(self, config: UrlBlocklistConfig):
        super().__init__(config)
        self.domains = DomainBlocklist.from_file(config.path)

    def compute(self, ctx: BatchContext) -> list[pa.Array]:
        return [self.domains.array(ctx.urls())]
