"""Leak tests: labelled PII values of presidio-research's sentences, looked for verbatim in every output.

A real job (`refinery run`: ingest, the real `pii` stage, shards) runs over presidio-research's labelled
sentences; then the report is written (`refinery report`) and the web app serves the lake. Each *labelled*
value (not what our own analyzer finds, which would hide whatever it misses) is searched for in the curated
table (per document), the shards (decoded tokens and the `.docs.parquet` sidecar), the HTML report, the
driver's output and the web app's pages. The sentences are the `report` half of `pii.evaluate.split`
(the half detection is not tuned on) of generated_small (42) plus 150 of generated_large's.

`pytest -k leak` runs exactly these tests.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from dataclasses import dataclass
from html import escape
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pii.evaluate import ENTITY_MAPPING, load_samples, split
from pii.settings import DEFAULT_ENTITIES
from tests.cli_run import refinery

REPO = Path(__file__).resolve().parents[2]
DATASET = "leak"
LARGE_SLICE = 150  # report-half records of generated_large, after all of generated_small's report half

# Highest share of labelled values per entity type that may survive verbatim in the curated table:
# the one place these bounds live. Measured on 2026-12-03 with the default pii settings on this test's
# 192 sentences: at commit 74d8080 PERSON 34 of 106 values survived (32.1%); at 775ed42 (issue 17's
# recognizers) PERSON 33 of 106 (31.1%) and PHONE_NUMBER 1 of 11 (9.1%), while CREDIT_CARD 0/12,
# US_SSN 0/12, EMAIL_ADDRESS 0/6, IBAN_CODE 0/3 and IP_ADDRESS 0/1 were all redacted. Each bound is
# the measured rate rounded up to the next 5%. After issue 17's second opinion and truecasing (second
# session, 2026-12-03) PERSON 29 of 106 survive (27.4%; `profile: presidio_default` 37, 34.9%).
MAX_SURVIVAL_RATE: dict[str, float] = {
    "PERSON": 0.30,
    "PHONE_NUMBER": 0.10,
    "CREDIT_CARD": 0.0,
    "US_SSN": 0.0,
    "IP_ADDRESS": 0.0,
    "EMAIL_ADDRESS": 0.0,
    "IBAN_CODE": 0.0,
}


@dataclass
class LeakRun:
    """The job's outputs and the labelled values of every input sentence (by doc_id)."""

    lake: Path
    run_id: str
    labels: dict[str, list[tuple[str, str]]]  # doc_id -> [(entity type, value)]
    driver_output: str
    report_html: str

    def values(self) -> set[str]:
        return {value for pairs in self.labels.values() for _, value in pairs}


def _sentences(shared_data: Path) -> list[dict]:
    folder = shared_data / "pii" / "presidio-research"
    small = split(load_samples(folder / "generated_small.json"), "report")
    large = split(load_samples(folder / "generated_large.json"), "report")[:LARGE_SLICE]
    return small + large


def _labelled(record: dict) -> list[tuple[str, str]]:
    """(entity type, value) of the spans whose type the pii stage redacts by default."""
    out = []
    for span in record["spans"]:
        kind = ENTITY_MAPPING.get(span["entity_type"], span["entity_type"])
        if kind in DEFAULT_ENTITIES:
            out.append((kind, record["full_text"][span["start_position"] : span["end_position"]]))
    return out


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = refinery(*args, cwd=cwd, env={"REFINERY_SPARK_UI": "0"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def leak_run(shared_data, tmp_path_factory) -> LeakRun:
    base = tmp_path_factory.mktemp("leak")
    records = _sentences(shared_data)
    source = base / "sentences.jsonl"
    source.write_text("".join(json.dumps({"text": r["full_text"]}) + "\n" for r in records))
    spec = {
        "name": DATASET,
        "lake": str(base / "lake"),
        "spark": {"master": "local[2]"},
        "stages": [
            {"stage": "ingest", "params": {"inputs": [{"name": "presidio", "path": str(source)}]}},
            {"stage": "pii", "params": {"input": "documents", "output": "curated"}},
            {
                "stage": "shards",
                "params": {
                    "input": "curated",
                    "tokenizer": str(REPO / "samples" / "tokenizer.json"),
                    "shard_tokens": 2000,
                },
            },
        ],
    }
    (base / "leak.yaml").write_text(yaml.safe_dump(spec))
    run = _cli("run", "leak.yaml", "--quiet", "--run-id", "leak-run", cwd=base)
    _cli("report", "leak-run", "-o", "report.html", "--lake", "lake", "--master", "local[2]", cwd=base)

    from pipelines.framework.lake import Lake

    raw = Lake(base / "lake").dataset(f"{DATASET}/documents").to_table(columns=["doc_id", "text"])
    by_text = {r["full_text"]: _labelled(r) for r in records}
    labels = dict(zip(raw["doc_id"].to_pylist(), (by_text[t] for t in raw["text"].to_pylist()), strict=True))
    assert len(labels) == len(records)
    return LeakRun(
        lake=base / "lake",
        run_id="leak-run",
        labels=labels,
        driver_output=run.stdout + run.stderr + _run_logs(base / "lake" / "_runs" / "leak-run"),
        report_html=(base / "report.html").read_text(encoding="utf-8"),
    )


def _run_logs(folder: Path) -> str:
    """Every log and error file the run left beside its record."""
    return "".join(
        p.read_text(errors="replace") for p in sorted(folder.glob("*")) if p.suffix in (".log", ".txt")
    )


def _survival(labels: dict[str, list[tuple[str, str]]], texts: dict[str, str]) -> dict[str, tuple[int, int]]:
    """Per entity type: (labelled values found verbatim in their own document's text, labelled values)."""
    found, total = Counter(), Counter()
    for doc_id, pairs in labels.items():
        for kind, value in pairs:
            total[kind] += 1
            found[kind] += value in (texts.get(doc_id) or "")
    return {kind: (found[kind], total[kind]) for kind in total}


def _assert_under_threshold(survival: dict[str, tuple[int, int]]) -> None:
    rates = {kind: found / total for kind, (found, total) in survival.items()}
    over = {k: f"{survival[k][0]}/{survival[k][1]}" for k, r in rates.items() if r > MAX_SURVIVAL_RATE[k]}
    assert over == {}, f"survival above MAX_SURVIVAL_RATE: {over} (all: {survival})"


def _surviving_values(run: LeakRun) -> set[str]:
    """Values that survive in at least one curated document: the most any other output may show."""
    texts = _curated_texts(run)
    return {v for doc_id, pairs in run.labels.items() for _, v in pairs if v in (texts[doc_id] or "")}


def _found_in(run: LeakRun, blob: str) -> set[str]:
    """Labelled values present in an output that holds many documents (raw or HTML-escaped)."""
    return {v for v in run.values() if v in blob or escape(v) in blob}


def _curated_texts(run: LeakRun) -> dict[str, str]:
    from pipelines.framework.lake import Lake

    table = Lake(run.lake).dataset(f"{DATASET}/curated").to_table(columns=["doc_id", "text"])
    return dict(zip(table["doc_id"].to_pylist(), table["text"].to_pylist(), strict=True))


def test_curated_table_leak_rate_per_entity_type(leak_run):
    texts = _curated_texts(leak_run)
    assert set(texts) == set(leak_run.labels)
    survival = _survival(leak_run.labels, texts)
    assert survival["PERSON"][1] > 100 and survival["PHONE_NUMBER"][1] > 5  # enough labels to measure
    _assert_under_threshold(survival)


def test_shards_leak_no_more_than_the_curated_table(leak_run):
    from training.shards.format import Manifest, shard_paths
    from training.shards.reader import ShardReader
    from training.tokenizer.load import load_tokenizer

    folder = leak_run.lake / "shards" / "default"
    manifest = Manifest.load(folder)
    tokenizer = load_tokenizer(REPO / "samples" / "tokenizer.json")
    decoded, sidecars = {}, []
    for entry in manifest.shards:
        reader = ShardReader.from_manifest(folder, manifest, entry.name)
        doc_ids = reader.docs().column("doc_id").to_pylist()
        for i, doc_id in enumerate(doc_ids):
            decoded[doc_id] = tokenizer.decode(reader.document(i).tolist(), skip_special_tokens=True)
        sidecars.append(
            json.dumps(pq.read_table(shard_paths(folder, entry.name)[2]).to_pylist(), default=str)
        )
    assert len(decoded) == len(leak_run.labels)
    _assert_under_threshold(_survival(leak_run.labels, decoded))
    curated = _surviving_values(leak_run)
    assert _found_in(leak_run, "".join(decoded.values())) <= curated
    assert _found_in(leak_run, "".join(sidecars)) == set()


def test_report_leaks_no_labelled_value(leak_run):
    assert leak_run.run_id in leak_run.report_html
    assert _found_in(leak_run, leak_run.report_html) <= _surviving_values(leak_run)


def test_driver_log_leaks_no_labelled_value(leak_run):
    assert "leak-run" in leak_run.driver_output  # the output really is this run's
    assert _found_in(leak_run, leak_run.driver_output) == set()


def test_web_pages_leak_no_more_than_the_curated_table(leak_run):
    from fastapi.testclient import TestClient

    from jobs.web.app import create_app

    client = TestClient(create_app(leak_run.lake), base_url="http://localhost")
    paths = [
        "/",
        f"/runs/{leak_run.run_id}",
        "/tables",
        f"/dataset?table={DATASET}/curated",
        f"/api/runs/{leak_run.run_id}/report",
    ]
    for table in ("curated", "documents"):  # the raw table's pages show the redacted sibling
        paths += [f"/docs?table={DATASET}/{table}&page={page}" for page in range(4)]
        paths += [f"/doc?table={DATASET}/{table}&id={doc_id}" for doc_id in leak_run.labels]
    pages = []
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        pages.append(response.text)
    shown = "".join(pages)
    assert "&lt;PERSON&gt;" in shown or "<PERSON>" in shown  # redacted text is on show
    assert _found_in(leak_run, shown) <= _surviving_values(leak_run)
