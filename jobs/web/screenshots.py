"""Drive the web app in headless Chromium: the page list the browser tests visit, and screenshots for docs.

`python -m jobs.web.screenshots --lake LAKE --out docs/screenshots` starts the app
on a free 127.0.0.1 port, opens the main pages of the newest run with a report and
saves one PNG per page (viewport-sized, so each stays small).
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pages(run_id: str, dataset: str) -> list[tuple[str, str]]:
    """(name, path) of every page kind, for the run `run_id` whose tables live under `dataset`."""
    curated = f"{dataset}/curated"
    return [
        ("runs", "/"),
        ("run", f"/runs/{run_id}"),
        ("tables", "/tables"),
        ("dataset", f"/dataset?table={curated}"),
        ("documents", f"/docs?table={curated}"),
        ("documents-filtered", f"/docs?table={curated}&reason=language"),
        ("compare", f"/compare?table={curated}&a=0&b=0"),
        ("images", f"/images?table={dataset}/images"),
        ("quarantine", f"/quarantine?table={dataset}/quarantine"),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(lake: Path, **options: Any) -> Iterator[str]:
    """The app served by uvicorn in a background thread; yields its base URL."""
    with running_app(lake, **options) as (base, _):
        yield base


@contextmanager
def running_app(lake: Path, **options: Any) -> Iterator[tuple[str, Any]]:
    """`create_app(lake, **options)` served by uvicorn in a background thread; yields (base URL, app)."""
    import uvicorn

    from jobs.web.app import create_app

    port = free_port()
    app = create_app(lake, port=port, **options)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright (no downloaded browser, no network)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def take(lake: Path, out: Path) -> list[Path]:
    from jobs.report import load_run_report
    from pipelines.framework.runrecord import list_runs

    run = next(r for r in list_runs(lake) if load_run_report(lake, r.run_id))
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with running_server(lake) as base, browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        for name, path in pages(run.run_id, run.dataset):
            page.goto(base + path)
            target = out / f"{name}.png"
            page.screenshot(path=str(target))
            saved.append(target)
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lake", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    for path in take(args.lake, args.out):
        print(path, path.stat().st_size)


if __name__ == "__main__":
    main()
