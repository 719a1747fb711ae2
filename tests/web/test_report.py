"""Report data from Spark aggregations, and the static HTML report, on the real test lake."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import typer
from markupsafe import escape
from typer.testing import CliRunner

from jobs.report import ReportUnreadable, load_run_report, stage_thresholds
from jobs.report_cli import report as report_cmd
from jobs.web.render import render_static_report
from pipelines.framework.drop_reason import DROP_REASON, describe
from tests.web.lakebuild import XSS_TEXT


def test_funnel_reconciles_with_the_run_record(web_lake):
    lake, record = web_lake
    report = load_run_report(lake, record.run_id)
    funnel = {s["id"]: s for s in report["funnel"]}
    annotate = funnel["annotate"]
    assert annotate["in"]["docs"] == annotate["out"]["docs"] == record.stage("annotate").rows_in
    newly = sum(c["docs"] for c in annotate["dropped"].values())
    assert annotate["in"]["kept_docs"] - annotate["out"]["kept_docs"] == newly
    assert {r: c["docs"] for r, c in annotate["dropped"].items()} == record.stage("annotate").dropped
    assert funnel["redact"]["dropped"] == {}  # reasons carried over are not counted again
    assert annotate["in"]["chars"] >= annotate["out"]["kept_chars"] > 0
    assert funnel["annotate"]["docs_per_second"] > 0


def test_sections_follow_the_columns(web_lake):
    lake, record = web_lake
    tables = load_run_report(lake, record.run_id)["tables"]
    curated = tables[f"{record.dataset}/curated@0"]
    assert {DROP_REASON, "lang", "source"} <= set(curated["breakdowns"])
    langs = {v["value"] for v in curated["breakdowns"]["lang"]["values"]}
    assert {"en", "zh", "fr"} <= langs  # the multilingual sample
    hists = {h["column"]: h for h in curated["histograms"]}
    assert {"_chars", "word_count", "quality_score", "lang_score"} <= set(hists)
    for h in hists.values():
        assert sum(h["kept"]) + sum(h["dropped"]) == h["count"]
    assert [t["value"] for t in hists["quality_score"]["thresholds"]] == [0.3]
    assert curated["pii"]["entities"] and curated["pii"]["documents_with_pii"] >= 1
    assert curated["lists"]["drop_reasons"]["values"]
    documents = tables[f"{record.dataset}/documents@0"]
    assert not documents["has_drop_reason"] and documents["pii"] is None
    images = tables[f"{record.dataset}/images@0"]
    assert max(g["size"] for g in images["groups"]["sha256"]["largest"]) == 3  # img3 = img6 = img7
    quarantine = tables[f"{record.dataset}/quarantine@0"]
    assert quarantine["totals"]["docs"] > 0 and quarantine["breakdowns"]["reason"]["values"]


def test_each_reason_is_reported_with_its_registered_line(web_lake):
    lake, record = web_lake
    report = load_run_report(lake, record.run_id)
    dropped = record.stage("annotate").dropped
    assert dropped and {r: describe(r) for r in dropped} == {r: report["reasons"][r] for r in dropped}
    html = render_static_report(report)
    for reason in dropped:
        assert f'{reason} <span class="meaning">— {escape(describe(reason))}</span></td>' in html


def test_shards_come_from_the_manifest(web_lake):
    lake, record = web_lake
    report = load_run_report(lake, record.run_id)
    (shards,) = report["shards"]
    assert sum(s["tokens"] for s in shards["shards"]) == shards["total_tokens"] > 0
    assert sum(m["tokens"] for m in shards["mix"]) == shards["total_tokens"]
    stage = next(s for s in report["funnel"] if s["id"] == "shards")
    assert stage["out"]["tokens"] == shards["total_tokens"]
    assert (
        stage["out"]["docs"] == next(s for s in report["funnel"] if s["id"] == "redact")["out"]["kept_docs"]
    )


def test_thresholds_are_read_from_stage_configs():
    found = stage_thresholds(
        {"min_quality_score": 0.5, "word_count_max": 9, "label": "x"}, "s", {"quality_score", "word_count"}
    )
    assert {(t.column, t.op, t.value) for t in found} == {
        ("quality_score", "lt", 0.5),
        ("word_count", "gt", 9.0),
    }


def test_static_report_is_one_offline_file(web_lake, tmp_path):
    lake, record = web_lake
    out = tmp_path / "report.html"

    app = typer.Typer()
    app.command()(report_cmd)
    result = CliRunner().invoke(app, [record.run_id, "-o", str(out), "--lake", str(lake)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert html.count("<svg") > 10
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing loaded from elsewhere
    assert "Content-Security-Policy" in html
    assert XSS_TEXT[:20] not in html or "&lt;script&gt;" in html
    json.loads((lake / "_runs" / record.run_id / "report.json").read_text())


def test_a_damaged_stored_report_is_named_everywhere_and_recomputed_on_request(web_lake, tmp_path):
    """A report.json cut short is not "not computed": the pages and the API name the file and the command,
    and `refinery report` says so before it computes the report again (it was recomputed silently)."""
    from fastapi.testclient import TestClient

    from jobs.web.app import create_app

    lake, record = tmp_path / "lake", web_lake[1]
    shutil.copytree(web_lake[0], lake)
    stored = lake / "_runs" / record.run_id / "report.json"
    stored.write_text(stored.read_text()[:200])
    client = TestClient(create_app(lake), base_url="http://localhost")
    runs = client.get("/")
    assert runs.status_code == 200 and ">damaged</td>" in runs.text
    page = client.get(f"/runs/{record.run_id}")
    assert page.status_code == 200 and "cannot be read" in page.text and "--recompute" in page.text
    assert str(lake) not in page.text  # the lake's absolute path is shortened, as in every page
    api = client.get(f"/api/runs/{record.run_id}/report")
    assert api.status_code == 500 and "cannot be read" in api.json()["error"]
    table = f"{record.dataset}/curated"
    dataset = client.get("/dataset", params={"table": table})  # it skipped the damaged report in silence
    assert dataset.status_code == 200 and "A newer report was skipped" in dataset.text
    assert "cannot be read" in dataset.text and str(lake) not in dataset.text
    assert "No report covers this version" in dataset.text
    compare = client.get("/compare", params={"table": table, "a": 0, "b": 0})
    assert compare.status_code == 200 and compare.text.count("A report was skipped") == 1
    stored.write_text('{"report_version": 99, "tables": {}}')  # another version's layout: named, not parsed
    api = client.get("/api/dataset", params={"table": table}).json()
    assert api["report"] is None and "report_version 99" in api["damaged_reports"][0]

    app = typer.Typer()
    app.command()(report_cmd)
    result = CliRunner().invoke(app, [record.run_id, "--lake", str(lake)])
    assert result.exit_code == 0, result.output
    assert "cannot be read" in result.output and "recomputing" in result.output
    assert load_run_report(lake, record.run_id)["run_id"] == record.run_id


def test_a_report_of_another_version_is_not_taken_for_one(web_lake, tmp_path):
    lake, record = tmp_path / "lake", web_lake[1]
    (lake / "_runs" / record.run_id).mkdir(parents=True)
    (lake / "_runs" / record.run_id / "report.json").write_text('{"report_version": 99}')
    with pytest.raises(ReportUnreadable, match="report_version 99, expected 1.*--recompute"):
        load_run_report(lake, record.run_id)
    (lake / "_runs" / record.run_id / "report.json").write_text("[1, 2]")
    with pytest.raises(ReportUnreadable, match="a JSON list, not an object"):
        load_run_report(lake, record.run_id)
