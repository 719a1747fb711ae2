"""Control and bidi-override characters in data are shown as escapes on every page, never emitted raw;
ordinary non-Latin text is untouched; and an augmented copy's lineage leads to its parent.

Over the `spoof` dataset of `tests/web/hostile_lake.py`: a document whose id, source, URI and text hold
U+202E and its kin, NUL, ESC, DEL and C1 controls, beside Arabic, Hebrew, CJK and emoji text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from markupsafe import Markup

from jobs.web import charts
from jobs.web.app import create_app
from jobs.web.render import environment, safe_href
from jobs.web.screenshots import CHROMIUM, browser, running_server
from jobs.web.visible import CONTROLS, plain, shown
from tests.web.hostile_lake import AUGMENTED_ID, CONTROL_CHARS, NON_LATIN, SPOOF_ID, SPOOF_TEXT, build_lake

RLO = "<span class=ctl>\\u202e</span>"
PAGES = [
    ("/doc", {"table": "spoof/documents", "id": SPOOF_ID}),
    ("/doc", {"table": "spoof/augmented", "id": f"{SPOOF_ID}-copy"}),
    ("/docs", {"table": "spoof/documents"}),
    ("/docs", {"table": "spoof/augmented", "source": "web\x1b[31m\u202e"}),
    ("/lineage", {"table": "spoof/documents", "id": SPOOF_ID}),
    ("/lineage", {"table": "spoof/augmented", "id": f"{SPOOF_ID}-copy"}),
    ("/doc", {"table": "spoof/documents", "id": f"no such {SPOOF_ID}\x00"}),  # the 404 page echoes the id
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    return build_lake(tmp_path_factory.mktemp("visible") / "lake")


@pytest.fixture(scope="module")
def client(lake) -> TestClient:
    return TestClient(create_app(lake), base_url="http://localhost")


@pytest.mark.parametrize(("path", "params"), PAGES)
def test_control_characters_are_shown_as_escapes_never_emitted(client, path, params):
    html = client.get(path, params=params).text
    raw = sorted({f"U+{ord(c):04X}" for c in CONTROLS.findall(html)})
    assert raw == [], f"{path} emits {raw}"
    assert RLO in html or "\\u202e" in html
    if path == "/doc" and "no such" not in params["id"]:
        assert f"inv{RLO}txt.exe" in html
        assert (
            "\n\tindented line\n" in html and NON_LATIN in html
        )  # newline, tab and scripts kept as they are


def test_the_excerpt_shows_every_control_character(client):
    html = client.get("/docs", params={"table": "spoof/documents"}).text
    for char in CONTROL_CHARS:
        code = f"\\x{ord(char):02x}" if ord(char) <= 0xFF else f"\\u{ord(char):04x}"
        assert f"<span class=ctl>{code}</span>" in html, code
    assert NON_LATIN in html
    # A menu value is an attribute: the same escapes as text, no markup inside the quotes.
    assert '<option value="web\\x1b[31m\\u202e" >web\\x1b[31m\\u202e (1)</option>' in html


def test_a_uri_holding_a_control_character_is_text_not_a_link(client):
    html = client.get("/doc", params={"table": "spoof/documents", "id": SPOOF_ID}).text
    assert f"<td>https://example.com/{RLO}gpj.exe</td>" in html and 'href="https://example.com/' not in html
    plain_doc = client.get("/doc", params={"table": "spoof/documents", "id": "s000"}).text
    assert '<a href="https://example.com/a" rel="noopener noreferrer nofollow">' in plain_doc
    for url in ("https://a.example/\u202ex", "https://a.example/\x00", "http://a\tb.example/", "http://[x"):
        assert "href" not in safe_href(url), ascii(url)


def test_json_keeps_the_data_as_it_is(client):
    row = client.get("/api/doc", params={"table": "spoof/documents", "id": SPOOF_ID}).json()["row"]
    assert row["text"] == SPOOF_TEXT and row["doc_id"] == SPOOF_ID


def test_one_hook_for_every_template_and_chart():
    """`finalize` covers every expression a template writes, a template built from a string too."""
    env = environment()
    assert (
        env.from_string("{{ x }}").render(x="a\u202eb\x00")
        == "a<span class=ctl>\\u202e</span>b<span class=ctl>\\x00</span>"
    )
    assert (
        env.from_string('<i title="{{ x | plain }}"></i>').render(x='"\u2066')
        == '<i title="&#34;\\u2066"></i>'
    )
    assert (
        env.from_string("{{ x }}").render(x=Markup("<b>\u202e</b>")) == "<b>\u202e</b>"
    )  # the app's own markup
    kept = f"{NON_LATIN}\n\t\r\u200f\u200e\u061c\u200d"
    assert shown(kept) == plain(kept) == kept
    assert (
        shown("<\u009b>") == "&lt;<span class=ctl>\\x9b</span>&gt;"
        and shown("\ud800") == "<span class=ctl>\\ud800</span>"
    )
    svg = charts.bars([("web\u202e\x1b", 1, 2)], "sources\u2067")
    assert not CONTROLS.search(svg) and "web\\u202e\\x1b" in svg and "sources\\u2067" in svg


def test_the_lineage_of_an_augmented_copy_leads_to_its_parent(client):
    api = client.get("/api/lineage", params={"table": "spoof/augmented", "id": AUGMENTED_ID}).json()
    assert api["augmented_from"] == "s001"
    states = {e["table"]: e["state"] for e in api["tables"]}
    assert states == {"spoof/documents": "absent", "spoof/augmented": "kept"}
    page = client.get("/lineage", params={"table": "spoof/augmented", "id": AUGMENTED_ID}).text
    assert f"Document {AUGMENTED_ID} is an augmented copy of document s001" in page
    assert '<a class="parent" href="/lineage?table=spoof%2Faugmented&amp;id=s001">' in page
    parent = client.get("/api/lineage", params={"table": "spoof/augmented", "id": "s001"}).json()
    assert parent["augmented_from"] is None and {e["state"] for e in parent["tables"]} == {"kept"}
    assert (
        "augmented copy of"
        not in client.get("/lineage", params={"table": "spoof/augmented", "id": "s001"}).text
    )


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing: apt-get install -y chromium")
def test_a_browser_shows_the_override_instead_of_obeying_it(lake):
    """Chromium's rendered text holds the escape where the data held U+202E, styled apart from the text."""
    with running_server(lake) as base, browser() as chromium:
        page = chromium.new_page()
        page.goto(f"{base}/doc?table=spoof/documents&id=inv%E2%80%AEtxt.exe")
        shown_text = page.inner_text("main")
        assert "inv\\u202etxt.exe" in shown_text and "\u202e" not in shown_text
        assert NON_LATIN.split(" · ")[0] in shown_text
        color = page.evaluate("getComputedStyle(document.querySelector('span.ctl')).color")
        body = page.evaluate("getComputedStyle(document.querySelector('pre.text')).color")
        assert color != body
