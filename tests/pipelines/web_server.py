"""A real HTTP server on 127.0.0.1 for ingest's http(s) input tests, with the faults a crawl meets.

It serves one folder with byte ranges (`Range: bytes=N-`, as S3 and Common Crawl's servers do), and
can cut the body of chosen files after some bytes while still declaring the full length: the
connection drop that readers/source.py must survive by re-opening at the byte reached. Every
request is logged, so a test can tell a resumed read (a ranged GET) from a read started over.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Faults:
    """`cut`: file name -> bytes sent before the connection drops; `times` per name (-1: always);
    `no_ranges`: names whose ranged GETs get 503 (a resume that cannot succeed)."""

    cut: dict[str, int] = field(default_factory=dict)
    no_ranges: set[str] = field(default_factory=set)
    times: dict[str, int] = field(default_factory=dict)
    log: list[tuple[str, str, int]] = field(default_factory=list)  # (method, name, first byte)


@dataclass(frozen=True)
class WebServer:
    url: str
    faults: Faults


def _handler(folder: Path, faults: Faults) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            return

        def _file(self) -> Path | None:
            name = self.path.lstrip("/").split("?", 1)[0]
            target = folder / name
            if "/" in name or not target.is_file():
                self.send_error(404)
                return None
            return target

        def do_HEAD(self) -> None:
            target = self._file()
            faults.log.append(("HEAD", self.path.lstrip("/"), 0))
            if target is not None:
                self.send_response(200)
                self.send_header("Content-Length", str(target.stat().st_size))
                self.end_headers()

        def do_GET(self) -> None:
            target = self._file()
            if target is None:
                return
            data = target.read_bytes()
            start = 0
            if (ranged := self.headers.get("Range", "")).startswith("bytes="):
                start = int(ranged[len("bytes=") :].split("-", 1)[0])
            faults.log.append(("GET", target.name, start))
            if start and target.name in faults.no_ranges:
                self.send_error(503)
                return
            body = data[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            left = faults.times.get(target.name, 0)
            if target.name in faults.cut and left != 0:
                faults.times[target.name] = left - 1
                self.wfile.write(body[: faults.cut[target.name]])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def serve(folder: Path, faults: Faults | None = None) -> Iterator[WebServer]:
    """Serve `folder` on a free loopback port for the duration of the block."""
    faults = faults or Faults()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(folder, faults))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebServer(f"http://127.0.0.1:{server.server_address[1]}", faults)
    finally:
        server.shutdown()
        server.server_close()
