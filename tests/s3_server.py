"""A real S3-compatible HTTP server on 127.0.0.1 for the object-storage tests.

moto's ThreadedMotoServer speaks the S3 REST protocol over HTTP, enforces conditional puts
(`If-None-Match`, which delta-rs's `conditional_put: etag` commits rely on) and runs inside the test
process, so CI needs nothing installed by hand. The code under test talks HTTP to it exactly as it
would to AWS or MinIO: through pyarrow's S3 client and delta-rs's object_store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

# Fake credentials, distinctive enough that a grep over every output finds any leak of them.
ACCESS_KEY = "AKIAREFINERYTESTKEY7"
SECRET_KEY = "refinery-test-secret-Zq8vW3nK5pL1xY9"


# The child: start the server on a free loopback port, print the port, serve until stdin closes
# (so it also ends when the test process dies).
SERVER_SCRIPT = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


def _stop(server: subprocess.Popen[str]) -> None:
    if server.stdin:
        server.stdin.close()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def start_server(env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """The server's child process (stop it with `_stop`) and its endpoint URL; `env` is the child's."""
    pytest.importorskip("moto.server", reason="moto[server] is a dev dependency: pip install -e '.[dev]'")
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    line = server.stdout.readline() if server.stdout else ""
    if not line.strip().isdigit():
        server.kill()
        pytest.fail(f"the S3 test server did not start (it printed {line!r})", pytrace=False)
    return server, f"http://127.0.0.1:{int(line)}"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    env: dict[str, str]

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def new_bucket(self) -> str:
        name = f"refinery-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """The server, and the five standard variables a user sets, exported for this test session."""
    server, endpoint = start_server()
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield S3Server(env["AWS_ENDPOINT_URL"], env)
    finally:
        _stop(server)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture()
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket per test."""
    return s3_server.new_bucket()
