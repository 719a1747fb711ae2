"""A lake with damaged tables, as a tester made one: every route reports the damage, none is a bare 500.

Over the lake of `tests/web/hostile_lake.py` with four tables damaged: `spoof/documents` lost its
data files (`rm *.parquet`), `junk/documents` and `bad/quarantine` have a data file that is not Parquet, and
`plain/quarantine` and `ds/curated` (the dataset's redacted table) hold garbage in their first commit. Also the parameters a route cannot do without (`table`, `id`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from jobs.web.app import create_app
from pipelines.framework.lake import Lake
from tests.web.hostile_lake import AUGMENTED_ID, EMAIL, build_lake

DATA_GONE = "spoof/documents"
NOT_PARQUET = ("junk/documents", "bad/quarantine")
LOG_GARBAGE = ("plain/quarantine", "ds/curated")
DAMAGED = (DATA_GONE, *NOT_PARQUET, *LOG_GARBAGE)
# Every route that reads a table, with the parameters that reach the read.
TABLE_ROUTES = (
    "/dataset",
    "/compare",
    "/docs",
    "/doc",
    "/lineage",
    "/images",
    "/thumb",
    "/quarantine",
)


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    root = build_lake(tmp_path_factory.mktemp("damaged") / "lake")
    for part in (root / DATA_GONE).glob("*.parquet"):
        part.unlink()
    Lake(root).write_arrow(pa.table({"doc_id": ["j0"], "text": ["junk"]}), NOT_PARQUET[0])
    Lake(root).write_arrow(pa.table({"reason": ["bad_json"], "excerpt": ["{"]}), NOT_PARQUET[1])
    for table in NOT_PARQUET:
        for part in (root / table).glob("*.parquet"):
            part.write_bytes(b"not parquet at all")
    for table in LOG_GARBAGE:
        (root / table / "_delta_log" / "00000000000000000000.json").write_text("garbage{\n")
    return root


@pytest.fixture(scope="module")
def client(lake) -> TestClient:
    return TestClient(create_app(lake), base_url="http://localhost", raise_server_exceptions=False)


def said_damaged(response, lake: Path) -> bool:
    """The app's damaged answer: a 500 that says what cannot be read and what to do, without the lake's path."""
    text = response.text
    return (
        response.status_code == 500
        and "cannot be read" in text
        and "Restore the table" in text
        and str(lake) not in text
        and "Internal Server Error" not in text
    )


def test_the_listing_marks_a_damaged_table_and_shows_the_others(client, lake):
    listed = client.get("/api/tables")
    assert listed.status_code == 200, listed.text[:300]
    tables = {t["table"]: t for t in listed.json()}
    for table in LOG_GARBAGE:
        assert tables[table]["rows"] is None and "cannot be read" in tables[table]["damaged"]
    assert tables["ds/quarantine"] == {"table": "ds/quarantine", "version": 0, "rows": 3, "damaged": None}
    assert tables["spoof/augmented"]["rows"] == 5  # the log of DATA_GONE still reads: counts come from it
    page = client.get("/tables")
    assert page.status_code == 200 and str(lake) not in page.text
    assert re.search(r"<td>plain/quarantine</td>.*damaged: table &#39;plain/quarantine&#39;", page.text, re.S)
    assert 'href="/dataset?table=ds%2Fquarantine"' in page.text


@pytest.mark.parametrize("table", DAMAGED)
@pytest.mark.parametrize("path", TABLE_ROUTES)
def test_every_route_on_a_damaged_table_says_so(client, lake, path, table):
    for route in (path, f"/api{path}" if path != "/thumb" else path):
        response = client.get(route, params={"table": table, "id": "s001"})
        assert response.status_code != 500 or said_damaged(response, lake), (route, response.text[:500])
        if table in LOG_GARBAGE:  # nothing reads such a table: every route that names it must say so
            assert said_damaged(response, lake), (route, response.text[:500])


@pytest.mark.parametrize(
    ("table", "why"), [(DATA_GONE, "No files found"), (NOT_PARQUET[0], "No magic bytes")]
)
def test_documents_on_a_table_whose_data_files_are_damaged(client, lake, table, why):
    for path in ("/docs", "/doc", "/api/docs", "/api/doc"):
        response = client.get(path, params={"table": table, "id": "s001"})
        assert said_damaged(response, lake), (path, response.text[:300])
    page = client.get("/doc", params={"table": table, "id": "s001"}).text
    assert "<h1>Damaged file in the lake</h1>" in page and why in page


def test_pages_over_the_whole_lake_pass_over_a_damaged_table(client):
    for path in ("/", "/tables", "/docs", "/api/docs", "/quarantine", "/images", "/healthz"):
        response = client.get(path)
        assert response.status_code in (200, 404), (path, response.text[:300])
        assert response.status_code == 200 or path == "/images", path  # the hostile lake has no images
    # The redacted default (ds/curated) cannot be read, nor can the first other one's data: both passed over.
    docs = client.get("/api/docs").json()
    assert docs["table"] == "spoof/augmented" and len(docs["passed_over"]) == 1
    assert NOT_PARQUET[0] in docs["passed_over"][0] and "Passed over: table" in client.get("/docs").text
    quarantine = client.get("/api/quarantine").json()
    assert quarantine["table"] == "ds/quarantine" and NOT_PARQUET[1] in quarantine["passed_over"][0]


def test_lineage_marks_an_unreadable_table_and_answers_for_the_others(client, lake):
    response = client.get("/api/lineage", params={"table": "spoof/augmented", "id": "s001"})
    assert response.status_code == 200, response.text[:300]
    entries = {e["table"]: e for e in response.json()["tables"]}
    gone = entries[DATA_GONE]
    assert gone["state"] == "unreadable" and gone["present"] is None and gone["version"] == 0
    assert "No files found" in gone["error"] and str(lake) not in gone["error"]
    assert entries["spoof/augmented"]["state"] == "kept" and entries["spoof/augmented"]["present"] is True
    page = client.get("/lineage", params={"table": "spoof/augmented", "id": "s001"})
    assert page.status_code == 200 and '<span class="damaged">unreadable: table' in page.text
    copy = client.get("/api/lineage", params={"table": "spoof/augmented", "id": AUGMENTED_ID}).json()
    assert copy["augmented_from"] == "s001"  # the copy's parent is still found in the readable table
    missing = client.get("/api/lineage", params={"table": "spoof/augmented", "id": "nowhere"})
    assert missing.status_code == 404 and DATA_GONE in missing.json()["error"]


def test_a_damaged_redacted_table_still_withholds_raw_text(client):
    """`ds/curated` holds the dataset's redacted text and its log is garbage: the raw quarantine excerpts
    of `ds` stay withheld (the damaged table may be the redacted one), never shown for want of a check."""
    api = client.get("/api/quarantine", params={"table": "ds/quarantine"})
    assert api.status_code == 200 and api.json()["redacted"] == "ds/curated"
    assert all("excerpt" not in r for r in api.json()["rows"]["rows"])
    page = client.get("/quarantine", params={"table": "ds/quarantine"})
    assert page.status_code == 200 and EMAIL not in page.text


@pytest.mark.parametrize(
    ("path", "params", "missing"),
    [
        ("/lineage", {}, "table"),
        ("/api/lineage", {"id": "s001"}, "table"),
        ("/api/lineage", {"table": "spoof/augmented"}, "id"),
        ("/lineage", {"table": "spoof/augmented", "id": ""}, "id"),
        ("/doc", {"id": "s001"}, "table"),
        ("/api/doc", {"table": "spoof/augmented"}, "id"),
        ("/api/dataset", {}, "table"),
        ("/compare", {"table": ""}, "table"),
        ("/thumb", {"table": "ds/quarantine"}, "id"),
    ],
)
def test_a_missing_required_parameter_is_a_400_naming_it(client, path, params, missing):
    response = client.get(path, params=params)
    assert response.status_code == 400, response.text[:300]
    assert f"{missing}: required" in response.text and "None" not in response.text
    if not path.startswith("/api/"):
        assert "<h1>Bad request</h1>" in response.text


def test_a_run_record_that_is_not_its_folders_run_is_named_not_a_bare_500(tmp_path):
    """A run folder copied under another name, or a run.json that is not JSON: the run page says which."""
    import shutil

    from pipelines.framework.runrecord import RunRecord

    root = tmp_path / "lake"
    RunRecord(
        run_id="r1", job="j", dataset="j", lake=str(root), created_at="2026-12-05T00:00:00.000+00:00"
    ).save()
    runs = root / "_runs"
    shutil.copytree(runs / "r1", runs / "zz-1")
    (runs / "bad-1").mkdir()
    (runs / "bad-1" / "run.json").write_text("{not json")
    client = TestClient(create_app(root), base_url="http://localhost", raise_server_exceptions=False)
    assert client.get("/runs/r1").status_code == 200
    for run_id in ("zz-1", "bad-1"):
        page = client.get(f"/runs/{run_id}")
        assert page.status_code == 500 and "Internal Server Error" not in page.text, page.text
        assert "run.json" in page.text and str(root) not in page.text
    assert client.get("/").status_code == 200
