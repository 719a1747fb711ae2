"""Schemathesis against the app's own OpenAPI schema, on a real server over the hostile lake.

Every GET route is called with generated parameters, valid and invalid (wrong types, huge
integers, arbitrary Unicode), for a bounded number of examples per route
(`REFINERY_FUZZ_EXAMPLES`, default 25; the longer runs are in BENCHMARKS.md). Two checks: no
response is a server error, and no request value that could open markup comes back unescaped
in an HTML page. The schema's string parameters are widened with the lake's own names (tables,
run ids, columns, document ids, reasons) and with hostile strings, so that the fuzzer reaches
the queries and the templates instead of stopping at 404s.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from PIL import Image

from jobs.web.app import create_app
from jobs.web.screenshots import running_server
from pipelines.framework.lake import Lake
from tests.web.hostile_lake import build_lake

EXAMPLES = int(os.environ.get("REFINERY_FUZZ_EXAMPLES", "25"))
HOSTILE = [
    "<script>alert(1)</script>",
    '"><svg onload=alert(1)>',
    "'><img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "../../etc/passwd",
    "ds/../../etc",
    "\x00\x1b[2J\u202e",
    "x" * 5000,
]


def _png(color: tuple[int, int, int]) -> bytes:
    out = BytesIO()
    Image.new("RGB", (64, 48), color).save(out, format="PNG")
    return out.getvalue()


def fuzz_lake(root: Path) -> Path:
    """The hostile lake plus an images table (two equal PNGs, one other, one corrupt)."""
    build_lake(root)
    blobs = [_png((200, 10, 10)), _png((200, 10, 10)), _png((10, 10, 200)), b"\x89PNG not really"]
    Lake(root).write_arrow(
        pa.table(
            {
                "image_id": [f"i{i}" for i in range(len(blobs))],
                "source": ["web"] * len(blobs),
                "format": ["png"] * len(blobs),
                "width": [64] * len(blobs),
                "height": [48] * len(blobs),
                "sha256": ["same", "same", "other", "broken"],
                "bytes": pa.array(blobs, pa.binary()),
            }
        ),
        "ds/images",
    )
    return root


# Real values per parameter name in the lake `fuzz_lake` builds (the schema is made at collection time).
VOCABULARY: dict[str, list[Any]] = {
    "table": ["ds/curated", "ds/quarantine", "ds/images", "plain/quarantine"],
    "run_id": ["r1"],
    "column": ["quality_score", "text", "minhash", "pii_counts", "doc_id", "width", "excerpt", "bytes"],
    "id": ["d001", "d002", "i0", "i3"],
    "reason": ["bad_json", "low_quality", "__kept__"],
    "lang": ["en"],
    "source": ["web"],
    "version": [0, 1],
    "a": [0, 1],
    "b": [0, 1],
}


def widened(schema: dict[str, Any], words: dict[str, list[Any]]) -> dict[str, Any]:
    """The OpenAPI schema with each known parameter also allowed to take the lake's values and, for
    strings, the hostile ones (an enum beside the declared type: still a valid request)."""
    schema = copy.deepcopy(schema)
    for operation in (op for ops in schema["paths"].values() for op in ops.values()):
        for param in operation.get("parameters", []):
            values = words.get(param["name"])
            if values is None:
                continue
            extra = values + (HOSTILE if isinstance(values[0], str) else [])
            param["schema"] = {"anyOf": [param["schema"], {"enum": extra}]}
    return schema


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory) -> Path:
    return fuzz_lake(tmp_path_factory.mktemp("fuzz") / "lake")


@pytest.fixture(scope="module")
def fuzz_base(fuzz_root) -> Iterator[str]:
    with running_server(fuzz_root) as url:
        yield url


def reflected_markup(case: Any, body: str) -> list[str]:
    """Request values that could open markup (`<`, `>`, a quote, 8+ characters) found verbatim in `body`."""
    values = [*(case.query or {}).values(), *(case.path_parameters or {}).values()]
    risky = [
        v for v in values if isinstance(v, str) and len(v) >= 8 and any(c in v for c in "<>\"'") and v in body
    ]
    return risky


@schemathesis.check
def input_is_escaped(ctx: Any, response: Any, case: Any) -> bool | None:
    """No request value that could open markup comes back verbatim in an HTML page."""
    content_type = response.headers.get("content-type", [""])[0]
    if "text/html" in content_type:
        found = reflected_markup(case, response.text)
        if found:
            raise AssertionError(f"unescaped request value in the page: {found[0][:200]!r}")
    return None


schema = schemathesis.openapi.from_dict(widened(create_app(".").openapi(), VOCABULARY))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=os.environ.get("REFINERY_FUZZ_EXAMPLES") is None,
)
def test_no_server_error_and_no_unescaped_input(case, fuzz_base):
    from schemathesis.checks import not_a_server_error

    response = case.call(base_url=fuzz_base)
    case.validate_response(response, checks=[not_a_server_error, input_is_escaped])
