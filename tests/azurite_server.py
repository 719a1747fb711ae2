"""Azurite, Microsoft's Azure Storage emulator, on 127.0.0.1 for the az:// tests.

Azurite is the official emulator (npm package `azurite`): it speaks the Blob REST API over HTTP and
checks every request's SharedKey signature, so pyarrow's AzureFileSystem and delta-rs's object store
talk to it exactly as they would to an Azure account. `make install` (which `.ci/run` runs) installs it under
`.emulators/` (ignored by git). It runs in memory, on a free port, with a test account whose key is
distinctive enough that a grep over every output finds any leak of it.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.child_server import child_server, exported, missing_emulator

REPO = Path(__file__).resolve().parents[1]
ACCOUNT = "refineryaz"
ACCOUNT_KEY = "cmVmaW5lcnktYXp1cml0ZS10ZXN0LXNlY3JldC1WYjdReDJMbTk="  # base64, as Azure keys are


def azurite_program() -> str | None:
    local = REPO / ".emulators" / "node_modules" / ".bin" / "azurite-blob"
    return str(local) if local.exists() else shutil.which("azurite-blob")


@dataclass(frozen=True)
class AzuriteServer:
    endpoint: str
    env: dict[str, str]

    def filesystem(self):
        """A client built here, not through the code under test: for setup and for checking."""
        import pyarrow.fs as pa_fs

        authority = self.endpoint.split("://", 1)[1].split("/", 1)[0]
        return pa_fs.AzureFileSystem(
            account_name=ACCOUNT,
            account_key=ACCOUNT_KEY,
            blob_storage_authority=authority,
            blob_storage_scheme="http",
            dfs_storage_authority=authority,
            dfs_storage_scheme="http",
        )

    def new_container(self) -> str:
        name = f"refinery-{uuid.uuid4().hex[:12]}"
        self.filesystem().create_dir(name)
        return name

    def blobs(self, container: str) -> dict[str, bytes]:
        """Every blob in the container, read with a client of its own."""
        import pyarrow.fs as pa_fs

        fs = self.filesystem()
        infos = fs.get_file_info(pa_fs.FileSelector(container, recursive=True))
        out = {}
        for info in infos:
            if info.type == pa_fs.FileType.File:
                with fs.open_input_stream(info.path, compression=None) as stream:
                    out[info.path] = stream.read()
        return out


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteServer]:
    """Azurite, and the four variables a user of an Azure-compatible server sets, exported."""
    program = azurite_program()
    if program is None:
        missing_emulator(
            "Azurite is not installed: `make install` installs it under .emulators/ where npm exists"
        )
    argv = [program, "--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence"]
    argv += ["--silent", "--skipApiVersionCheck", "--disableTelemetry"]
    with child_server(
        "Azurite",
        argv,
        r"listens on http://127\.0\.0\.1:(\d+)",
        {"AZURITE_ACCOUNTS": f"{ACCOUNT}:{ACCOUNT_KEY}"},
    ) as port:
        endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
        env = {
            "AZURE_STORAGE_ENDPOINT": endpoint,
            "AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT,
            "AZURE_STORAGE_ACCOUNT_KEY": ACCOUNT_KEY,
            "AZURE_ALLOW_HTTP": "true",
        }
        with exported(env):
            yield AzuriteServer(endpoint, env)


@pytest.fixture()
def az_container(azurite: AzuriteServer) -> str:
    """A fresh, empty container per test."""
    return azurite.new_container()
