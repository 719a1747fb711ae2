"""A small lake with the shapes that have hurt the web app, built without Spark (shared by the web tests).

Dataset `ds`: `curated` written unredacted at version 0 and redacted at version 1 (a PII
stage writing over its input), with a MinHash struct of bytes; its quarantine, holding raw
input with an e-mail address. Dataset `plain`: a quarantine without redaction. Optionally
`big/quarantine`, millions of rows with a unique reason each (a whole-table GROUP BY that
takes seconds). Dataset `spoof`: documents whose ids, sources, URIs and text hold bidi
overrides and control characters beside ordinary Arabic, Hebrew, CJK and emoji text, and
`spoof/augmented`, the same rows with augmented copies (new ids, `augmented_from` = the parent).
And a run record carrying credentials, host details and absolute paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.framework.drop_reason import DROP_REASON
from pipelines.framework.lake import Lake
from pipelines.framework.runrecord import RunRecord, StageRecord

EMAIL = "jane.doe@example.com"
RAW_TEXT = f"Write to {EMAIL} for the minutes of the meeting. " * 3
REDACTED_TEXT = RAW_TEXT.replace(EMAIL, "<EMAIL_ADDRESS>")
MINHASH = pa.struct([("signature", pa.binary()), ("bands", pa.list_(pa.binary()))])
# Characters that act on the text around them: bidi embeddings, overrides and isolates, C0 controls
# (NUL, BEL, backspace, ESC), DEL and C1 controls.
CONTROL_CHARS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\x00\x07\x08\x1b\x7f\x85\x9b"
# Text that must come out untouched: right-to-left scripts with their bidi marks, CJK, emoji sequences.
NON_LATIN = "مرحبا بالعالم\u200f · שלום עולם\u200e · 你好，世界 · こんにちは · 한국어 · 🙂 👩\u200d👩\u200d👧 · Ελληνικά"
SPOOF_ID = "inv\u202etxt.exe"
SPOOF_URI = "https://example.com/\u202egpj.exe"
SPOOF_TEXT = f"Invoice {CONTROL_CHARS} tail\n\tindented line\n{NON_LATIN}"
AUGMENTED_ID = "s001-copy"
SPOOF_SCHEMA = pa.schema([(name, pa.string()) for name in ("doc_id", "text", "source", "uri", DROP_REASON)])
SECRETS = ("AKIAEXAMPLEKEY", "s3cr3t-value", "hf_tokenvalue", "hunter2", "envvalue42", "sigvalue77")


def _docs(text: str, redacted: bool) -> pa.Table:
    n = 30
    columns: dict[str, Any] = {
        "doc_id": [f"d{i:03d}" for i in range(n)],
        "text": [text] * n,
        "source": ["web"] * n,
        DROP_REASON: [None if i % 3 else "low_quality" for i in range(n)],
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


def _spoof(augmented: bool) -> pa.Table:
    """Three documents (one spoofing its id, source, URI and text); with `augmented`, the augment
    stage's output: the same rows and a copy of two of them, each copy naming its parent."""
    ids = ["s000", "s001", SPOOF_ID]
    columns: dict[str, list[Any]] = {
        "doc_id": ids,
        "text": [NON_LATIN, f"An ordinary document. {NON_LATIN}", SPOOF_TEXT],
        "source": ["web", "web", "web\x1b[31m\u202e"],
        "uri": ["https://example.com/a", "https://example.com/b", SPOOF_URI],
        DROP_REASON: [None, None, None],
    }
    if not augmented:
        return pa.table(columns, schema=SPOOF_SCHEMA)
    columns = {name: values + values[1:] for name, values in columns.items()}
    columns["doc_id"] = ids + [AUGMENTED_ID, f"{SPOOF_ID}-copy"]
    columns["augmented_from"] = [None, None, None, "s001", SPOOF_ID]
    return pa.table(columns, schema=SPOOF_SCHEMA.append(pa.field("augmented_from", pa.string())))


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
                    "signed_url": f"https://bucket.example/part-0?X-Amz-Expires=60&token={SECRETS[5]}&v=2",
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


def build_lake(root: Path, big_rows: int = 0) -> Path:
    """Write the tables and the run record under `root`; returns `root`."""
    lake = Lake(root)
    lake.write_arrow(_docs(RAW_TEXT, redacted=False), "ds/curated")
    lake.write_arrow(_docs(REDACTED_TEXT, redacted=True), "ds/curated")
    lake.write_arrow(_quarantine(3, f'{{"text": "{EMAIL}", broken'), "ds/quarantine")
    lake.write_arrow(_quarantine(3, "<b>plain & visible</b>"), "plain/quarantine")
    lake.write_arrow(_spoof(augmented=False), "spoof/documents")
    lake.write_arrow(_spoof(augmented=True), "spoof/augmented")
    if big_rows:
        ids = pa.array(np.random.default_rng(0).permutation(big_rows)).cast(pa.string())
        columns = {name: ids for name in _quarantine(1, "x").schema.names}
        columns["source"] = pc.binary_join_element_wise("s", ids, "")
        lake.write_arrow(pa.table(columns, schema=_quarantine(1, "x").schema), "big/quarantine")
    _run_record(root)
    return root
