"""The web app as a hostile page or user would use it, served by uvicorn on a real port.

A small lake built here (no Spark): a dataset whose `curated` table was written
unredacted at version 0 and redacted at version 1 (a PII stage writing over its
input), with a MinHash signature column of bytes; its quarantine, holding raw input
with an e-mail address; a dataset without redaction; and a run record carrying
credentials, host details and absolute paths.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from jobs.web.app import MAX_PAGE
from jobs.web.data import Limits
from jobs.web.screenshots import running_app, running_server
from pipelines.lake import Lake
from pipelines.runrecord import RunRecord, StageRecord

EMAIL = "jane.doe@example.com"
RAW_TEXT = f"Write to {EMAIL} for the minutes of the meeting. " * 3
REDACTED_TEXT = RAW_TEXT.replace(EMAIL, "<EMAIL_ADDRESS>")
MINHASH = pa.struct([("signature", pa.binary()), ("bands", pa.list_(pa.binary()))])
SECRETS = ("AKIAEXAMPLEKEY", "s3cr3t-value", "hf_tokenvalue", "hunter2", "envvalue42")
BIG_ROWS = 8_000_000


def _docs(text: str, redacted: bool) -> pa.Table:
    n = 30
    columns: dict[str, Any] = {
        "doc_id": [f"d{i:03d}" for i in range(n)],
        "text": [text] * n,
        "source": ["web"] * n,
        "drop_reason": [None if i % 3 else "low_quality" for i in range(n)],
        "quality_score": [i / n for i in range(n)],
        "minhash": pa.array(
            [{"signature": bytes([i, 255, 0]), "bands": [b"\x00\xff", b"\x80"]} for i in range(n)], MINHASH
        ),
    }
    if redacted:
        spans = pa.list_(
            pa.struct([("entity_type", pa.string()), ("start", pa.int32()), ("end", pa.int32())])
        )
        columns["pii_spans"] = pa.array(
            [[{"entity_type": "EMAIL_ADDRESS", "start": 9, "end": 29}]] * n, spans
        )
        columns["pii_counts"] = pa.array([[("EMAIL_ADDRESS", 3)]] * n, pa.map_(pa.string(), pa.int32()))
    return pa.table(columns)


def _quarantine(n: int, excerpt: str) -> pa.Table:
    return pa.table(
        {
            "source": ["web"] * n,
            "locator": [f"input.jsonl:{i}" for i in range(n)],
            "reason": ["bad_json"] * n,
            "excerpt": [excerpt] * n,
            "stage": ["ingest"] * n,
            "run_id": ["r1"] * n,
        }
    )


def _run_record(lake: Path) -> RunRecord:
    spec = {
        "name": "hostile",
        "lake": str(lake),
        "spark": {
            "master": "local[2]",
            "conf": {
                "spark.hadoop.fs.s3a.access.key": SECRETS[0],
                "spark.hadoop.fs.s3a.secret.key": SECRETS[1],
                "spark.executorEnv.HF_HOME": SECRETS[4],
                "spark.sql.shuffle.partitions": 4,
            },
        },
        "stages": [
            {
                "stage": "ingest",
                "params": {
                    "inputs": [{"name": "web", "path": "/home/alice/private/crawl", "format": "jsonl"}],
                    "hf_token": SECRETS[2],
                    "mirror": f"https://alice:{SECRETS[3]}@mirror.example/data",
                },
            }
        ],
    }
    record = RunRecord(
        run_id="r1",
        job="hostile",
        dataset="ds",
        lake=str(lake),
        spec_path="/home/alice/jobs/hostile.yaml",
        spec=spec,
        status="failed",
        pid=4242,
        host="alice-workstation.corp.example",
        log_path=str(lake / "_runs" / "r1" / "driver.log"),
        error="FileNotFoundError: [Errno 2] No such file or directory: '/home/alice/private/crawl/x.jsonl'",
        stages=[
            StageRecord(id="ingest", stage="ingest", status="failed", config=spec["stages"][0]["params"])
        ],
    )
    record.save()
    return record


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "lake"
    lake = Lake(root)
    lake.write_arrow(_docs(RAW_TEXT, redacted=False), "ds/curated")
    lake.write_arrow(_docs(REDACTED_TEXT, redacted=True), "ds/curated")
    lake.write_arrow(_quarantine(3, f'{{"text": "{EMAIL}", broken'), "ds/quarantine")
    lake.write_arrow(_quarantine(3, "<b>plain & visible</b>"), "plain/quarantine")
    ids = pa.array(np.random.default_rng(0).permutation(BIG_ROWS)).cast(pa.string())
    big = _quarantine(1, "x").schema
    lake.write_arrow(
        pa.table(
            {
                "source": pc.binary_join_element_wise("s", ids, ""),
                "locator": ids,
                "reason": ids,
                "excerpt": ids,
                "stage": ids,
                "run_id": ids,
            },
            schema=big,
        ),
        "big/quarantine",
    )
    _run_record(root)
    return root


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
