"""Per-language kept and dropped counts in the run report, on a real multilingual run.

The job: real `ingest` of documents built from lingua's sentences (consecutive sentences of
one language's file joined into one document) and real RedPajama web text, real
`annotate` (language ID, Gopher, C4, FineWeb) and real `decide` keeping English and German
only. The counts are checked against the decided table read back with pyarrow, outside Spark.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import deltalake
import pytest
import yaml

from jobs.report import load_run_report, write_run_report
from jobs.report_languages import language_section, run_languages
from jobs.web.render import render_static_report
from pipelines.framework.drop_reason import DROP_REASON
from pipelines.framework.lake import Lake
from pipelines.framework.runner import Runner
from pipelines.framework.spec import load_spec

SENTENCES = Path("langid/lingua/language-testdata/sentences")
WEB = Path("web/datajuicer_pretrain_source_samples")
LANGS = ("en", "de", "fr", "es")
DOCS_PER_LANG, SENTENCES_PER_DOC = 6, 14
KEPT_LANGS = ["en", "de"]


def _lingua_documents(shared_data: Path, folder: Path) -> Path:
    """JSONL documents of consecutive lingua sentences, DOCS_PER_LANG per language."""
    lines = []
    for lang in LANGS:
        sentences = (shared_data / SENTENCES / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
        for d in range(DOCS_PER_LANG):
            text = " ".join(sentences[d * SENTENCES_PER_DOC : (d + 1) * SENTENCES_PER_DOC])
            lines.append(json.dumps({"text": text, "url": f"https://lingua.example/{lang}/{d}"}))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lingua.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lang_run(spark, shared_data, tmp_path_factory):
    """(lake folder, run record, report) of the multilingual job, its report computed."""
    base = tmp_path_factory.mktemp("langrun")
    lake = base / "lake"
    inputs = [
        {"name": "lingua", "path": str(_lingua_documents(shared_data, base / "inputs")), "format": "jsonl"},
        {"name": "web", "path": str(shared_data / WEB), "format": "jsonl"},
    ]
    spec = {
        "name": "langdemo",
        "lake": str(lake),
        "spark": {"master": "local[2]"},
        "stages": [
            {"stage": "ingest", "params": {"inputs": inputs}},
            {
                "stage": "annotate",
                "params": {
                    "input": "documents",
                    "output": "annotated",
                    "annotators": ["langid", "gopher", "c4", "fineweb"],
                },
            },
            {
                "stage": "decide",
                "params": {"input": "annotated", "output": "decided", "languages": KEPT_LANGS},
            },
        ],
    }
    spec_path = base / "langdemo.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    loaded, stages = load_spec(spec_path)
    record = Runner(loaded, stages, spec_path=str(spec_path), spark=spark, progress=False).run()
    assert record.status == "succeeded", record.error
    write_run_report(spark, lake, record.run_id)
    return lake, record, load_run_report(lake, record.run_id)


def _decided_counts(lake: Path, dataset: str) -> dict[str | None, Counter]:
    """Documents per language and drop reason, read from the decided table without Spark."""
    rows = deltalake.DeltaTable(str(lake / dataset / "decided")).to_pyarrow_table(
        columns=["lang", DROP_REASON]
    )
    counts: dict[str | None, Counter] = {}
    for lang, reason in zip(
        rows.column("lang").to_pylist(), rows.column(DROP_REASON).to_pylist(), strict=True
    ):
        counts.setdefault(lang, Counter())[reason] += 1
    return counts


def test_the_run_shows_the_decided_table_per_language(lang_run):
    lake, record, report = lang_run
    section = report["languages"]
    assert section["stage"] == "decide"
    assert section["table"].startswith(f"{record.dataset}/decided@")
    expected = _decided_counts(lake, record.dataset)
    got = {e["lang"]: e for e in section["languages"]}
    assert set(got) == set(expected)
    for lang, counts in expected.items():
        entry = got[lang]
        dropped = {r: n for r, n in counts.items() if r is not None}
        assert (entry["docs"], entry["kept"], entry["dropped"]) == (
            sum(counts.values()),
            counts[None],
            sum(dropped.values()),
        )
        top = sorted(dropped.items(), key=lambda p: (-p[1], p[0]))[:3]
        assert [(r["reason"], r["docs"]) for r in entry["reasons"]] == top
        assert entry["other_reasons"] == sum(dropped.values()) - sum(n for _, n in top)
    total = section["total"]
    assert total["docs"] == total["kept"] + total["dropped"] == record.stage("decide").rows_in
    assert section["other"] is None
    assert [e["docs"] for e in section["languages"]] == sorted(
        (e["docs"] for e in section["languages"]), reverse=True
    )


def test_languages_decide_does_not_keep_are_dropped_for_their_language(lang_run):
    _, _, report = lang_run
    got = {e["lang"]: e for e in report["languages"]["languages"]}
    assert {"en", "de", "fr", "es"} <= set(got)  # lid.176 and lingua name lingua's own sentences
    for lang in ("fr", "es"):
        assert got[lang]["kept"] == 0
        assert got[lang]["reasons"][0] == {"reason": "language", "docs": got[lang]["dropped"]}
    assert got["en"]["kept"] > 0
    for lang in KEPT_LANGS:  # dropped, if at all, by a quality rule, never for the language
        assert "language" not in {r["reason"] for r in got[lang]["reasons"]}


def test_a_table_before_language_id_has_no_section(lang_run):
    _, record, report = lang_run
    documents = next(t for k, t in report["tables"].items() if k.startswith(f"{record.dataset}/documents@"))
    assert documents["languages"] is None


def test_a_stage_that_adds_rows_is_not_the_runs_section(lang_run):
    """Augmentation's copies would count a document twice: the last row-preserving stage's table is shown."""
    _, _, report = lang_run
    decide = next(s for s in report["funnel"] if s["id"] == "decide")
    augmented = {**report["tables"][decide["output"]]}
    augment = {
        "id": "augment",
        "output": "langdemo/augmented@0",
        "in": decide["out"],
        "out": {**decide["out"], "docs": decide["out"]["docs"] + 5},
    }
    chosen = run_languages([*report["funnel"], augment], {**report["tables"], augment["output"]: augmented})
    assert chosen["stage"] == "decide" and chosen["table"] == decide["output"]


def test_languages_past_the_top_are_summed(lang_run, spark, monkeypatch):
    lake, record, report = lang_run
    monkeypatch.setattr("jobs.report_languages.TOP_LANGUAGES", 2)
    section = language_section(Lake(lake).read(spark, f"{record.dataset}/decided"))
    full = report["languages"]
    assert section["languages"] == full["languages"][:2]
    rest = full["languages"][2:]
    assert section["other"] == {
        "docs": sum(e["docs"] for e in rest),
        "kept": sum(e["kept"] for e in rest),
        "dropped": sum(e["dropped"] for e in rest),
        "count": len(rest),
    }
    assert section["total"] == full["total"]


def test_run_page_and_static_report_list_each_language(lang_run):
    from fastapi.testclient import TestClient

    from jobs.web.app import create_app

    lake, record, report = lang_run
    page = TestClient(create_app(lake), base_url="http://localhost").get(f"/runs/{record.run_id}")
    assert page.status_code == 200
    for html in (page.text, render_static_report(report)):
        assert "<h2>languages</h2>" in html
        for e in report["languages"]["languages"]:
            row = (
                f'<tr><td>{e["lang"] or "(none)"}</td><td class="num">{e["docs"]}</td>'
                f'<td class="num">{e["kept"]}</td><td class="num">{e["dropped"]}</td>'
            )
            assert row in html
        assert "language: " in html  # fr and es: dropped for their language


def test_report_without_html_prints_each_language_in_the_terminal(lang_run):
    """`refinery report RUN` with the report stored used to print nothing at all."""
    from tests.cli_run import refinery

    lake, record, report = lang_run
    ran = refinery("report", record.run_id, "--lake", str(lake), env={"COLUMNS": "100"}, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    lines = [" ".join(line.strip("│ ").split()) for line in ran.stdout.splitlines()]
    assert f"report of run {record.run_id} (succeeded):" in ran.stdout
    for e in report["languages"]["languages"]:
        assert any(
            line.startswith(f"{e['lang'] or 'none'} │ {e['docs']} │ {e['kept']} │") for line in lines
        ), e
        for reason in e["reasons"]:
            assert f"{reason['reason']} {reason['docs']}" in ran.stdout
    total = report["languages"]["total"]
    assert any(
        line.startswith(f"all │ {total['docs']} │ {total['kept']} │ {total['dropped']}") for line in lines
    )
    assert "computing the report" not in ran.stderr  # stored: no Spark
