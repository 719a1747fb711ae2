"""Start an emulator program (Azurite, fake-gcs-server) as a child that dies with the test process.

The emulators are separate programs (Node, Go), so the fixtures run them behind a small Python
keeper, as tests/s3_server.py runs moto: the keeper starts the program, prints the port once the
program says it listens, and stops it when its stdin closes, which also happens when the test
process is killed. No emulator outlives a test session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import skip_unless_required

# The keeper: argv[1] is a regex whose first group is the port; the rest is the program to run.
KEEPER = r"""
import re, subprocess, sys, threading
ready, argv = re.compile(sys.argv[1]), sys.argv[2:]
child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
seen = []
for line in child.stdout:
    seen.append(line)
    match = ready.search(line)
    if match:
        print(match.group(1), flush=True)
        break
else:
    print("EXITED " + " | ".join(s.strip() for s in seen[-5:]), flush=True)
    sys.exit(1)
threading.Thread(target=lambda: [None for _ in child.stdout], daemon=True).start()  # keep the pipe drained
sys.stdin.read()
child.terminate()
try:
    child.wait(timeout=10)
except subprocess.TimeoutExpired:
    child.kill()
"""


@contextmanager
def child_server(name: str, argv: list[str], ready: str, env: dict[str, str]) -> Iterator[int]:
    """Run `argv` until the block ends; yield the port its output names (regex `ready`, group 1)."""
    keeper = subprocess.Popen(
        [sys.executable, "-c", KEEPER, ready, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **env},
    )
    line = keeper.stdout.readline().strip() if keeper.stdout else ""
    if not line.isdigit():
        keeper.kill()
        keeper.wait()
        pytest.fail(f"{name} did not start: {line!r}", pytrace=False)
    try:
        yield int(line)
    finally:
        if keeper.stdin:
            keeper.stdin.close()
        try:
            keeper.wait(timeout=20)
        except subprocess.TimeoutExpired:
            keeper.kill()
            keeper.wait()


def missing_emulator(message: str) -> None:
    skip_unless_required(message, "REFINERY_REQUIRE_EMULATORS")


@contextmanager
def exported(env: dict[str, str]) -> Iterator[None]:
    """Set `env` in this process for the block, restoring what was there before."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
