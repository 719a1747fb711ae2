"""A real headless Chromium (Debian's, driven by Playwright) loads every page of the running app."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.web.screenshots import CHROMIUM, browser, pages, running_server
from pipelines.framework.drop_reason import describe

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing: apt-get install -y chromium"
)
CHART_PAGES = {"run", "dataset", "compare"}


def test_pages_render_charts_without_errors_and_hostile_text_never_runs(web_lake):
    lake, record = web_lake
    with running_server(lake) as base, browser() as chromium:
        page = chromium.new_page()
        problems: list[str] = []
        page.on(
            "console",
            lambda m: (
                problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None
            ),
        )
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        for name, path in pages(record.run_id, record.dataset):
            response = page.goto(base + path)
            assert response is not None and response.status == 200, name
            if name in CHART_PAGES:
                assert page.locator("svg.chart").count() > 0, name
                assert page.locator("svg.chart rect").count() > 0, name
        assert page.evaluate("document.images.length >= 0")
        images = page.goto(base + f"/images?table={record.dataset}/images")
        assert images.status == 200
        assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")

        doc_list = base + f"/docs?table={record.dataset}/curated&source=hostile"
        for url in (doc_list, base + f"/docs?table={record.dataset}/documents&source=hostile"):
            page.goto(url)
            assert page.evaluate("typeof window.__xss") == "undefined"
            assert page.locator('img[src="x"]').count() == 0
            assert page.locator("svg[onload]").count() == 0
            assert page.locator('a[href^="javascript:"]').count() == 0
        page.goto(doc_list)
        assert "<script>window.__xss=1</script>" in page.inner_text("main")
        page.click("main article a")
        assert "<img src=x onerror=" in page.inner_text("pre.text")
        assert page.evaluate("typeof window.__xss") == "undefined"
        page.click("a.lineage")  # the hostile document in every table: its id is web text too
        assert "in every table" in page.inner_text("h1") and page.locator("main table tr").count() > 2
        assert page.evaluate("typeof window.__xss") == "undefined"
        page.goto(base + f"/runs/{record.run_id}")
        shown = page.inner_text("main")
        assert all(f"— {describe(reason)}" in shown for reason in record.stage("annotate").dropped)
        assert problems == []
