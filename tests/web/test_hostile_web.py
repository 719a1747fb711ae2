"""The web app as a hostile page or user would use it, served by uvicorn on a real port, over the lake of
`tests/web/hostile_lake.py` (an unredacted older version, a MinHash column of bytes, quarantined PII, a run
record holding credentials, and an 8-million-row table for the limits)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from jobs.web.public_record import public_report
from jobs.web.query_pool import Limits
from jobs.web.screenshots import free_port, running_app, running_server
from jobs.web.site import MAX_PAGE
from tests.web.hostile_lake import EMAIL, SECRETS, build_lake

BIG_ROWS = 8_000_000


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    return build_lake(tmp_path_factory.mktemp("hostile") / "lake", big_rows=BIG_ROWS)


@pytest.fixture(scope="module")
def base(lake) -> Iterator[str]:
    with running_server(lake) as url:
        yield url


@pytest.fixture(scope="module")
def web(base) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=60) as client:
        yield client


# ------------------------------------------------------------------ redaction per pinned version
def test_an_unredacted_older_version_never_shows_its_text(web):
    old = web.get("/api/docs", params={"table": "ds/curated", "version": 0})
    assert old.status_code == 200 and old.json()["redacted"] == "ds/curated"
    assert EMAIL not in old.text and all(
        "excerpt" not in r for p in old.json()["panes"].values() for r in p["rows"]
    )
    assert EMAIL not in web.get("/docs", params={"table": "ds/curated", "version": 0}).text
    doc = web.get("/api/doc", params={"table": "ds/curated", "version": 0, "id": "d001"})
    assert doc.status_code == 200 and "text" not in doc.json()["row"] and EMAIL not in doc.text
    assert EMAIL not in web.get("/doc", params={"table": "ds/curated", "version": 0, "id": "d001"}).text
    new = web.get("/api/docs", params={"table": "ds/curated", "version": 1}).json()
    assert new["redacted"] is None
    assert "<EMAIL_ADDRESS>" in new["panes"]["kept"]["rows"][0]["excerpt"]


# ------------------------------------------------------------------------- DNS rebinding
def _raw_get(base: str, path: str, host: str) -> tuple[int, bytes]:
    """A request with exactly this Host header, as a rebound page's browser would send it."""
    port = int(base.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_foreign_host_header_is_refused(base):
    port = base.rsplit(":", 1)[1]
    for path in ("/api/runs/r1", "/api/docs?table=ds/curated", "/api/quarantine", "/", "/healthz"):
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", "localhost:1"):
            status, body = _raw_get(base, path, host)
            assert status == 421, (path, host, status)
            assert b"r1" not in body and b"curated" not in body
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
        assert _raw_get(base, "/api/runs/r1", host)[0] == 200, host


def test_extra_allowed_hosts(lake):
    with running_server(lake, allowed_hosts=["refinery.lan"]) as url:
        port = url.rsplit(":", 1)[1]
        assert _raw_get(url, "/api/tables", f"refinery.lan:{port}")[0] == 200
        assert _raw_get(url, "/api/tables", f"other.lan:{port}")[0] == 421


# ------------------------------------------------------------------------------ run records
def test_run_records_are_served_without_secrets_or_host_details(web, lake):
    bodies = [
        web.get("/api/runs/r1").text,
        web.get("/runs/r1").text,
        web.get("/api/runs").text,
    ]
    for body in bodies:
        for secret in (*SECRETS, "alice-workstation", "4242", "/home/alice", str(lake)):
            assert secret not in body, secret
    record = json.loads(bodies[0])
    assert record["host"] is None and record["pid"] is None and record["log_path"] is None
    conf = record["spec"]["spark"]["conf"]
    assert conf["spark.hadoop.fs.s3a.secret.key"] == "[withheld]"
    assert conf["spark.sql.shuffle.partitions"] == 4  # settings that are not secrets stay readable
    params = record["spec"]["stages"][0]["params"]
    assert params["inputs"][0]["path"] == ".../crawl" and params["inputs"][0]["name"] == "web"
    assert params["mirror"] == "https://[withheld]@mirror.example/data"
    assert params["signed_url"] == "https://bucket.example/part-0?X-Amz-Expires=60&token=[withheld]&v=2"
    assert record["error"].endswith("'.../x.jsonl'")


# ------------------------------------------------------------------------------ quarantine
def test_quarantine_excerpts_are_withheld_where_the_dataset_is_redacted(web):
    api = web.get("/api/quarantine", params={"table": "ds/quarantine"})
    assert api.status_code == 200 and api.json()["redacted"] == "ds/curated"
    rows = api.json()["rows"]["rows"]
    assert rows and all("excerpt" not in r and r["excerpt_chars"] > 0 for r in rows)
    for path in ("/quarantine", "/docs", "/api/docs"):
        response = web.get(path, params={"table": "ds/quarantine"})
        assert response.status_code == 200 and EMAIL not in response.text, path
    plain = web.get("/api/quarantine", params={"table": "plain/quarantine"}).json()
    assert plain["redacted"] is None and plain["rows"]["rows"][0]["excerpt"] == "<b>plain & visible</b>"
    assert (
        "&lt;b&gt;plain &amp; visible&lt;/b&gt;"
        in web.get("/quarantine", params={"table": "plain/quarantine"}).text
    )


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/docs", {"table": "ds/curated", "column": "text", "low": 0}, 400),
        ("/docs", {"table": "ds/curated", "column": "text", "low": 0}, 400),
        ("/api/docs", {"table": "ds/curated", "column": "minhash", "high": 1}, 400),
        ("/api/docs", {"table": "ds/curated", "column": "no_such", "low": 0}, 400),
        ("/api/docs", {"table": "ds/curated", "low": "abc"}, 422),
        ("/api/docs", {"table": "ds/curated", "page": MAX_PAGE + 1}, 422),
        ("/api/docs", {"table": "ds/curated", "page": 10**30}, 422),
        ("/api/docs", {"table": "ds/curated", "page": -1}, 422),
        ("/docs", {"table": "ds/curated", "page": 2**63}, 422),
        ("/api/quarantine", {"page": 2**63}, 422),
        ("/quarantine", {"page": MAX_PAGE + 1}, 422),
        ("/api/images", {"page": MAX_PAGE + 1}, 422),
        ("/api/docs", {"table": "ds/curated", "version": 10**30}, 404),
        ("/api/docs", {"table": "ds/curated", "version": -1}, 404),
        ("/api/compare", {"table": "ds/curated", "a": 2**63}, 404),
        ("/api/doc", {"table": "ds/quarantine", "id": "x"}, 404),
    ],
)
def test_bad_parameters_are_4xx_with_a_message(web, path, params, status):
    response = web.get(path, params=params)
    assert response.status_code == status, response.text[:300]
    assert response.text.strip()
    if path.startswith("/api/") and status == 400:
        assert "column" in response.json()["error"]


def test_binary_columns_are_never_sent_as_json(web):
    docs = web.get("/api/docs", params={"table": "ds/curated"})
    assert docs.status_code == 200
    doc = web.get("/api/doc", params={"table": "ds/curated", "id": "d002"})
    assert doc.status_code == 200 and "minhash" not in doc.json()["row"]
    assert doc.json()["row"]["quality_score"] == pytest.approx(2 / 30)
    assert web.get("/doc", params={"table": "ds/curated", "id": "d002"}).status_code == 200
    filtered = web.get("/api/docs", params={"table": "ds/curated", "column": "quality_score", "low": 0.5})
    assert filtered.status_code == 200 and filtered.json()["panes"]["kept"]["total"] > 0


# --------------------------------------------------------------------------------- limits
def test_counts_stop_at_the_cap(lake):
    with running_server(lake, limits=Limits(max_count=7)) as url:
        rows = httpx.get(f"{url}/api/quarantine", params={"table": "big/quarantine"}, timeout=60).json()[
            "rows"
        ]
    assert rows["total"] == 7 and rows["more"] is True and len(rows["rows"]) == 20


def test_a_query_past_its_time_limit_is_a_503(lake):
    with running_server(lake, limits=Limits(timeout_s=0.2)) as url:
        response = httpx.get(f"{url}/api/quarantine", params={"table": "big/quarantine"}, timeout=60)
    assert response.status_code == 503 and "limit" in response.json()["error"]


def test_a_slow_query_does_not_hold_up_a_cheap_one(lake):
    """A whole-table GROUP BY (the reason menu of an 8-million-row quarantine) is in flight while a small
    table's page is asked for: the small one is answered while the big one still runs."""
    with running_app(lake, limits=Limits(timeout_s=120, memory_limit="2GB")) as (url, app):
        pool = app.state.view.pool
        slow: dict[str, Any] = {}
        thread = threading.Thread(
            target=lambda: slow.update(
                response=httpx.get(f"{url}/api/quarantine", params={"table": "big/quarantine"}, timeout=120)
            )
        )
        started = threading.Event()
        thread.start()
        while thread.is_alive() and not started.is_set():
            if any("GROUP BY" in sql for sql in pool.running()):
                started.set()
            else:
                started.wait(0.005)
        assert started.is_set(), slow.get("response")
        cheap = httpx.get(f"{url}/api/quarantine", params={"table": "plain/quarantine"}, timeout=60)
        in_flight = pool.running()
        thread.join()
    assert cheap.status_code == 200 and cheap.json()["rows"]["total"] == 3
    assert any("GROUP BY" in sql for sql in in_flight), (
        "the slow query had ended before the cheap one was answered"
    )
    assert slow["response"].status_code == 200


def test_refinery_serve_checks_the_host_with_its_port(lake, tmp_path):
    """`refinery serve` tells the app its port, and `--allow-host` adds a name."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "serve", "--lake", str(lake), "--port", str(port)]
        + ["--allow-host", "refinery.lan"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "serve.log").open("w"),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if _raw_get(base, "/healthz", f"127.0.0.1:{port}")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        assert _raw_get(base, "/api/tables", f"127.0.0.1:{port}")[0] == 200
        assert _raw_get(base, "/api/tables", f"refinery.lan:{port}")[0] == 200
        assert _raw_get(base, "/api/tables", f"evil.example:{port}")[0] == 421
        assert _raw_get(base, "/api/tables", "127.0.0.1:1")[0] == 421
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_reports_are_served_with_paths_shortened(lake):
    """A run report holds shard manifest and tokenizer paths; its vocabulary tokens are not secrets."""
    stored = {
        "run_id": "r1",
        "shards": [
            {
                "path": str(lake / "shards" / "default" / "manifest.json"),
                "tokenizer": "/home/alice/models/tokenizer.json",
                "eos": {"token": "<|endoftext|>", "id": 0},
                "tokens": 1234,
            }
        ],
    }
    served = public_report(stored, lake)
    assert served["shards"][0] == {
        "path": "lake/shards/default/manifest.json",
        "tokenizer": ".../tokenizer.json",
        "eos": {"token": "<|endoftext|>", "id": 0},
        "tokens": 1234,
    }


def test_a_partitioned_table_is_read_with_its_partition_column(tmp_path):
    """Tables written by other Delta writers may be partitioned: the partition column lives in the log,
    not in the files, so such a table is scanned through delta-rs and still filters and counts right."""
    from deltalake import write_deltalake

    root = tmp_path / "lake"
    rows = pa.table({"doc_id": ["a", "b", "c"], "text": ["one", "two", "three"], "source": ["x", "y", "x"]})
    write_deltalake(str(root / "ext" / "documents"), rows, partition_by=["source"])
    with running_server(root) as url:
        data = httpx.get(
            f"{url}/api/docs", params={"table": "ext/documents", "source": "x"}, timeout=60
        ).json()
    pane = data["panes"]["matching"]
    assert pane["total"] == 2 and {r["source"] for r in pane["rows"]} == {"x"}
    assert sorted(r["excerpt"] for r in pane["rows"]) == ["one", "three"]


def test_simultaneous_requests_each_see_their_own_table(base):
    """Each request registers its snapshot on its own cursor: many at once, on different tables and
    versions, neither collide (no 500) nor read one another's table."""
    from concurrent.futures import ThreadPoolExecutor

    asks = [
        ("/api/quarantine", {"table": "plain/quarantine"}, "plain/quarantine"),
        ("/api/quarantine", {"table": "ds/quarantine"}, "ds/quarantine"),
        ("/api/docs", {"table": "ds/curated", "version": 0}, "ds/curated"),
        ("/api/docs", {"table": "ds/curated", "version": 1}, "ds/curated"),
    ] * 12

    def ask(item: tuple[str, dict[str, Any], str]) -> tuple[int, dict[str, Any], dict[str, Any]]:
        path, params, _ = item
        response = httpx.get(base + path, params=params, timeout=120)
        return response.status_code, params, response.json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(ask, asks))
    for status, params, body in answers:
        assert status == 200, (params, body)
        if params["table"] == "plain/quarantine":
            assert body["rows"]["rows"][0]["excerpt"] == "<b>plain & visible</b>"
        elif params["table"] == "ds/quarantine":
            assert body["rows"]["total"] == 3 and "excerpt" not in body["rows"]["rows"][0]
        else:
            rows = body["panes"]["kept"]["rows"]
            assert ("excerpt" in rows[0]) == (params["version"] == 1)


def test_the_memory_limit_covers_the_scan(lake):
    """DuckDB reads the Parquet files itself, so a whole-table aggregation over the 8-million-row table
    is held to the app's memory limit: with 32 MB and no spill space it is refused with a 503, not
    allowed to grow the process."""
    with running_server(lake, limits=Limits(memory_limit="32MB", spill_limit="0B")) as url:
        response = httpx.get(f"{url}/api/quarantine", params={"table": "big/quarantine"}, timeout=120)
        assert response.status_code == 503 and "memory" in response.json()["error"]
        small = httpx.get(f"{url}/api/quarantine", params={"table": "plain/quarantine"}, timeout=60)
        assert small.status_code == 200
