"""Every page and JSON endpoint of the web app on the real test lake; hostile input stays text."""

from __future__ import annotations

import http.client
import re
from io import BytesIO

import pytest
from markupsafe import escape
from PIL import Image

from jobs.web.app import CSP
from jobs.web.data import EXCERPT_CHARS
from jobs.web.screenshots import pages, running_server
from pipelines.framework.drop_reason import DROP_REASON, describe
from tests.web.stages_for_web import LANGUAGE


def _hostile(client, dataset: str, table: str = "curated") -> dict:
    rows = client.get("/api/docs", params={"table": f"{dataset}/{table}", "source": "hostile"}).json()
    return next(r for pane in rows["panes"].values() for r in pane["rows"])


def test_every_page_renders_with_security_headers(client, web_lake):
    _, record = web_lake
    for name, path in pages(record.run_id, record.dataset):
        response = client.get(path)
        assert response.status_code == 200, (name, response.text[:500])
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "<svg" in response.text or name in (
            "runs",
            "tables",
            "documents",
            "documents-filtered",
            "images",
            "quarantine",
        )


def test_json_endpoints(client, web_lake):
    _, record = web_lake
    ds = record.dataset
    assert [r["run_id"] for r in client.get("/api/runs").json()] == [record.run_id]
    assert client.get(f"/api/runs/{record.run_id}").json()["status"] == "succeeded"
    assert client.get(f"/api/runs/{record.run_id}/report").json()["funnel"]
    tables = {t["table"]: t for t in client.get("/api/tables").json()}
    assert {f"{ds}/documents", f"{ds}/curated", f"{ds}/images", f"{ds}/quarantine"} <= set(tables)
    dataset = client.get("/api/dataset", params={"table": f"{ds}/curated"}).json()
    assert dataset["report"]["totals"]["docs"] == dataset["rows"] == tables[f"{ds}/curated"]["rows"]
    compare = client.get("/api/compare", params={"table": f"{ds}/curated", "a": 0, "b": 0}).json()
    assert compare["diff"]["rows"] == 0 and all(
        r["delta"] == 0 for r in compare["diff"]["breakdowns"]["lang"]
    )
    images = client.get("/api/images", params={"table": f"{ds}/images"}).json()
    assert images["images"]["total"] == 16 and max(g["size"] for g in images["groups"]) == 3
    quarantine = client.get("/api/quarantine").json()
    assert quarantine["rows"]["total"] > 0 and quarantine["reasons"]
    assert client.get("/healthz").json()["status"] == "ok"


def test_run_and_dataset_pages_show_each_reason_with_its_line(client, web_lake):
    _, record = web_lake
    dropped = record.stage("annotate").dropped
    assert dropped
    run_page = client.get(f"/runs/{record.run_id}").text
    table = f"{record.dataset}/curated"
    dataset_page = client.get("/dataset", params={"table": table}).text
    reasons = client.get("/api/dataset", params={"table": table}).json()["reasons"]
    for reason in dropped:
        line = describe(reason)
        assert line and reasons[reason] == line
        meaning = re.escape(f' <span class="meaning">— {escape(line)}</span>')
        assert re.search(rf"{reason}: [\d.kMG]+(?: \([\d.kMG]+ chars\))?{meaning}", run_page), reason
        assert re.search(rf"<td>{reason}{meaning}</td>", dataset_page), reason


def test_document_filters_and_pagination(client, web_lake):
    _, record = web_lake
    table = f"{record.dataset}/curated"
    data = client.get("/api/docs", params={"table": table}).json()
    kept, dropped = data["panes"]["kept"], data["panes"]["dropped"]
    assert (
        kept["total"] + dropped["total"] == client.get("/api/dataset", params={"table": table}).json()["rows"]
    )
    assert all(r[DROP_REASON] is None for r in kept["rows"]) and all(r[DROP_REASON] for r in dropped["rows"])
    assert all(len(r["excerpt"]) <= EXCERPT_CHARS for r in kept["rows"])
    second = client.get("/api/docs", params={"table": table, "page": 1}).json()["panes"]["kept"]["rows"]
    assert {r["doc_id"] for r in second}.isdisjoint({r["doc_id"] for r in kept["rows"]})
    lang = client.get("/api/docs", params={"table": table, "reason": LANGUAGE}).json()["panes"]["matching"]
    assert lang["total"] > 0 and {r[DROP_REASON] for r in lang["rows"]} == {LANGUAGE}
    scored = client.get(
        "/api/docs", params={"table": table, "column": "quality_score", "low": 0.5, "high": 0.9}
    ).json()
    assert all(0.5 <= r["quality_score"] <= 0.9 for p in scored["panes"].values() for r in p["rows"])
    fr = client.get("/api/docs", params={"table": table, "lang": "fr", "source": "multilingual"}).json()
    assert all(r["lang"] == "fr" for p in fr["panes"].values() for r in p["rows"])


def test_hostile_document_is_escaped_everywhere(client, web_lake):
    _, record = web_lake
    table = f"{record.dataset}/curated"
    doc = _hostile(client, record.dataset)
    for path, params in (
        ("/docs", {"table": table, "source": "hostile"}),
        ("/doc", {"table": table, "id": doc["doc_id"]}),
    ):
        html = client.get(path, params=params).text
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
        assert "<script" not in html.lower() and "<img src=x" not in html and "<svg onload" not in html
        assert 'href="javascript:' not in html
        assert "javascript:window.__xss=5" in html  # the URL is shown, as text
    assert (
        "<EMAIL_ADDRESS>"
        in client.get("/api/doc", params={"table": table, "id": doc["doc_id"]}).json()["row"]["text"]
    )


def test_raw_text_is_withheld_where_a_redacted_table_exists(client, web_lake):
    _, record = web_lake
    raw = f"{record.dataset}/documents"
    data = client.get("/api/docs", params={"table": raw}).json()
    assert data["redacted"] == f"{record.dataset}/curated"
    assert all("excerpt" not in r for p in data["panes"].values() for r in p["rows"])
    doc = _hostile(client, record.dataset, "documents")
    assert "text" not in client.get("/api/doc", params={"table": raw, "id": doc["doc_id"]}).json()["row"]
    assert "jane.doe@example.com" not in client.get("/docs", params={"table": raw}).text
    assert (
        client.get("/api/docs").json()["table"] == f"{record.dataset}/curated"
    )  # the default is the redacted one


def test_thumbnails_are_bounded_pngs(client, web_lake):
    _, record = web_lake
    table = f"{record.dataset}/images"
    first = client.get("/api/images", params={"table": table}).json()["images"]["rows"][0]
    response = client.get("/thumb", params={"table": table, "id": first["image_id"]})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert max(Image.open(BytesIO(response.content)).size) <= 160
    assert client.get("/thumb", params={"table": table, "id": "nope"}).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/runs/..%2F..%2Fetc%2Fpasswd",
        "/runs/../../etc/passwd",
        "/dataset?table=../../etc",
        "/dataset?table=webdemo/../../x",
        "/docs?table=/etc/passwd",
        "/thumb?table=../images&id=x",
        "/static/../pyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/api/runs/..",
        "/dataset?table=webdemo/curated&version=99",
    ],
)
def test_paths_cannot_escape_the_lake(raw_server, path):
    status, body = _raw_get(raw_server, path)
    assert status == 404
    assert b"[project]" not in body and b"root:" not in body


@pytest.fixture(scope="module")
def raw_server(web_lake):
    """A real uvicorn server: the test client would normalise `..` segments before sending them."""
    with running_server(web_lake[0]) as base:
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


def _raw_get(server: tuple[str, int], path: str) -> tuple[int, bytes]:
    """GET with the request target sent byte for byte (http.client does not resolve dot segments)."""
    connection = http.client.HTTPConnection(*server, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_nothing_changes_state(client, web_lake):
    _, record = web_lake
    for path in ("/", f"/runs/{record.run_id}", "/api/runs", "/docs"):
        assert client.post(path).status_code == 405
        assert client.delete(path).status_code == 405


def test_lineage_shows_a_document_in_every_table_and_where_it_was_dropped(client, web_lake):
    _, record = web_lake
    ds, reason = record.dataset, next(iter(record.stage("annotate").dropped))
    found = client.get("/api/docs", params={"table": f"{ds}/curated", "reason": reason}).json()
    doc = next(r for pane in found["panes"].values() for r in pane["rows"])
    lineage = client.get("/api/lineage", params={"table": f"{ds}/curated", "id": doc["doc_id"]}).json()
    tables = [e["table"] for e in lineage["tables"]]
    assert (
        tables[0] == f"{ds}/documents" and f"{ds}/curated" in tables
    )  # oldest first; no images or quarantine
    assert all(e["present"] for e in lineage["tables"])
    by_table = {e["table"]: e for e in lineage["tables"]}
    assert not by_table[f"{ds}/documents"]["decides"] and by_table[f"{ds}/curated"]["drop_reason"] == reason
    page = client.get("/lineage", params={"table": f"{ds}/curated", "id": doc["doc_id"]})
    assert page.status_code == 200 and f"dropped: {reason}" in page.text
    doc_page = client.get("/doc", params={"table": f"{ds}/curated", "id": doc["doc_id"]}).text
    assert 'class="lineage" href="/lineage?table=' in doc_page
    missing = client.get("/api/lineage", params={"table": f"{ds}/curated", "id": "no-such-document"})
    assert missing.status_code == 404 and "in any table" in missing.json()["error"]
    hostile = _hostile(client, ds)  # its id and reason are web text: escaped like every page
    html = client.get("/lineage", params={"table": f"{ds}/curated", "id": hostile["doc_id"]}).text
    assert "<script" not in html.lower()
