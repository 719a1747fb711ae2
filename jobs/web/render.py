"""Jinja2 rendering shared by the web app and the static HTML report.

Autoescape is on for every template (documents are hostile), and every value a
template writes passes through `visible.shown`, which shows control and bidi-override
characters as escapes (see jobs/web/visible.py). Links built from data go through
`safe_href`, which only lets http(s) URLs free of such characters become links: a
`javascript:` or `data:` URL in a document, or one holding a U+202E, is shown as text.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from jobs.web import charts
from jobs.web.visible import linkable, plain, shown
from pipelines.framework.drop_reason import DROP_REASON

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
TEMPLATE_DIR = WEB_DIR / "templates"


def safe_href(url: Any) -> Markup:
    """An <a> for http(s) URLs; anything else (javascript:, data:, relative) as escaped text.

    A URL holding a control or bidi character is text too: a browser drops some of them from the
    address it follows, and an override makes the link's text read as another address.
    """
    text = "" if url is None else str(url)
    if linkable(text) and _scheme(text) in ("http", "https"):
        return Markup('<a href="{0}" rel="noopener noreferrer nofollow">{0}</a>').format(text)
    return shown(text)


def _scheme(url: str) -> str:
    """The URL's scheme, lower case; "" for text that is not a URL (`http://[x` makes urlsplit raise)."""
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return ""


def query(base: str, **params: Any) -> str:
    """A URL with query parameters; None and empty values are left out."""
    kept = {k: v for k, v in params.items() if v is not None and v != ""}
    return f"{base}?{urlencode(kept)}" if kept else base


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=shown,
    )
    env.filters.update(fmt=charts.fmt, safe_href=safe_href, plain=plain)
    env.globals.update(charts=charts, query=query, static=False, DROP_REASON=DROP_REASON)
    return env


def render_static_report(report: dict[str, Any]) -> str:
    """One self-contained HTML file: CSS inlined (allowed by its hash), charts inline SVG, no script."""
    css = (STATIC_DIR / "style.css").read_text()
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    csp = (
        f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; script-src 'none'; base-uri 'none'"
    )
    return (
        environment().get_template("report.html").render(report=report, css=Markup(css), csp=csp, static=True)
    )
