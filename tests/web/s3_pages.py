"""The web app served from a lake URL by `refinery serve` in its own process, for the object-storage tests.

Its own process, as a user runs it, and for a reason: delta-rs keeps the Python interpreter while it
lists a table's history over HTTP, and the tests' S3 server is a thread of the test process, which
could then never answer. A server process of its own leaves the test process free to serve S3.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from jobs.web.screenshots import free_port, pages
from tests.cli_run import REPO


@contextmanager
def serving(lake: str) -> Iterator[str]:
    """`refinery serve --lake LAKE` on a free loopback port; yields its base URL, stops it after."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "serve", "--lake", lake, "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                fetch(base + "/api/tables")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"serve did not start: {server.stderr.read().decode()[-2000:]}"
                    ) from None
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=300) as response:  # noqa: S310 - a loopback test server
        return response.read().decode()


def served_pages(lake: str, run_id: str, dataset: str) -> dict[str, str]:
    """{path: body} of every page kind and the run's JSON endpoints; each must answer 200."""
    paths = [path for _, path in pages(run_id, dataset)]
    paths += ["/api/runs", f"/api/runs/{run_id}", f"/api/runs/{run_id}/report"]
    with serving(lake) as base:
        bodies = {}
        for path in paths:
            try:
                bodies[path] = fetch(base + path)
            except urllib.error.HTTPError as exc:
                raise AssertionError(f"{path}: HTTP {exc.code}: {exc.read().decode()[:1000]}") from None
        return bodies
