"""Storage failures as a user meets them through the installed `refinery` script, lake on S3.

The console script used to call the typer app directly, skipping `jobs.cli:main` and its handler,
so a lake that stopped answering mid-command was a 55-line traceback there while `python -m
jobs.cli` (what the other tests run) printed one line. Every call here runs the script itself,
against real servers on loopback: moto with authentication on (a wrong secret), a port nothing
listens on, and a web server that is not S3. A storage failure is one line and exit 1 in every
command; the secret never reaches the output.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from jobs.report import write_run_report
from pipelines.framework.runner import Runner
from pipelines.framework.spec import load_spec
from tests.s3_server import S3Server, _stop, start_server

WRONG_SECRET = "wrong-SECRET-Qx71vB"
S3_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")


def installed(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The `refinery` console script of this environment (`make install`), as a user runs it."""
    script = Path(sys.executable).parent / "refinery"
    if not script.exists():
        pytest.fail(f"no console script at {script}: run `make install`", pytrace=False)
    base = {k: v for k, v in os.environ.items() if k not in S3_VARIABLES and k != "REFINERY_LAKE"}
    return subprocess.run(
        [str(script), *args],
        cwd=cwd,
        env={**base, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1", "COLUMNS": "1000", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_line(shown: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """stderr is one `error:` line (the JVM's warning aside), nothing leaks, and the exit code is `code`."""
    output = shown.stdout + shown.stderr
    assert "Traceback" not in output and WRONG_SECRET not in output, output
    lines = [line for line in shown.stderr.splitlines() if not line.startswith("WARNING: Using incubator")]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert ".." not in lines[0].replace("`..`", ""), lines[0]
    assert shown.returncode == code, output
    return lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("args", [("status", "latest"), ("report", "latest")])
def test_installed_script_says_an_unreachable_lake_in_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}",
        "AWS_ACCESS_KEY_ID": "AKIACLOSEDPORT000001",
        "AWS_SECRET_ACCESS_KEY": WRONG_SECRET,
    }
    line = assert_one_line(installed(*args, "--lake", "s3://some-bucket/lake", cwd=tmp_path, env=env))
    assert "s3://some-bucket/lake" in line


@pytest.fixture(scope="module")
def auth_s3() -> Iterator[dict[str, str]]:
    """moto with authentication on: an IAM user allowed everything, its key, and a bucket with a lake."""
    import boto3

    # The first three requests (user, key, policy) go unauthenticated; every later one is checked.
    server, endpoint = start_server({**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    try:
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="a",
            aws_secret_access_key="b",
        )
        iam.create_user(UserName="curator")
        key = iam.create_access_key(UserName="curator")["AccessKey"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="curator", PolicyName="all", PolicyDocument=json.dumps(policy))
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )
        s3.create_bucket(Bucket="authb")
        s3.put_object(Bucket="authb", Key="lake/_runs/r1/run.json", Body=b"{}")
        yield {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": WRONG_SECRET,
        }
    finally:
        _stop(server)


COMMANDS = [
    ("runs",),
    ("tables",),
    ("tables", "demo/curated"),
    ("show", "latest"),
    ("quarantine",),
    ("dropped", "demo/decided"),
    ("status", "latest"),
    ("logs", "latest"),
    ("cancel", "latest"),
    ("report", "latest"),
    ("serve",),
    ("tables", "purge-raw", "--dataset", "demo"),
]


def test_a_refused_secret_is_named_and_exits_1_in_every_command(tmp_path: Path, auth_s3) -> None:
    for args in COMMANDS:
        line = assert_one_line(installed(*args, "--lake", "s3://authb/lake", cwd=tmp_path, env=auth_s3))
        assert "the credentials were refused" in line and "AWS_SECRET_ACCESS_KEY" in line, (args, line)
    for args in (
        ("shards", "info", "s3://authb/lake/shards/x"),
        ("shards", "verify", "s3://authb/lake/shards/x"),
    ):
        assert "credentials were refused" in assert_one_line(installed(*args, cwd=tmp_path, env=auth_s3))
    doctor = installed("doctor", "--no-spark", "--lake", "s3://authb/lake", cwd=tmp_path, env=auth_s3)
    assert doctor.returncode == 1 and "credentials were refused" in doctor.stdout
    assert WRONG_SECRET not in doctor.stdout + doctor.stderr


@pytest.fixture()
def web_server(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP file server, answering 404 as any web server does: not S3."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_endpoint_that_is_not_s3_is_said_so(tmp_path: Path, web_server: str) -> None:
    """It used to read "bucket ... does not exist: create it", which sent users to create a bucket."""
    env = {
        "AWS_ENDPOINT_URL": web_server,
        "AWS_ACCESS_KEY_ID": "AKIANOTS3000001",
        "AWS_SECRET_ACCESS_KEY": WRONG_SECRET,
    }
    for args in (
        ("runs", "--lake", "s3://curation-bucket/lake"),
        ("shards", "info", "s3://curation-bucket/x"),
    ):
        line = assert_one_line(installed(*args, cwd=tmp_path, env=env))
        assert (
            f"the endpoint {web_server} of s3://curation-bucket" in line and "does not look like S3" in line
        )
        assert "AWS_ENDPOINT_URL" in line and "does not exist" not in line


def _run_on_s3(spark, tmp_path: Path, lake: str) -> str:
    """A two-stage run (load, mark) whose lake is `lake`; its run id."""
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps({"text": f"document {i} " + "word " * i}) + "\n" for i in range(40)))
    spec = {
        "name": "s3-report",
        "lake": lake,
        "spark": {"master": "local[2]"},
        "stages": [
            {"stage": "tests.pipelines.stages_for_tests:LoadJsonl", "params": {"path": str(source)}},
            {"stage": "tests.pipelines.stages_for_tests:MarkShort", "params": {"min_words": 10}},
        ],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    loaded, stages = load_spec(path)
    record = Runner(loaded, stages, spec_path=str(path), spark=spark, progress=False).run()
    assert record.status == "succeeded", record.error
    return record.run_id


def test_report_of_a_run_with_a_damaged_table_goes_to_the_bucket(
    spark, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    """One damaged commit file leaves its table out of the report (named, with the file), not the report;
    `-o s3://...` writes the HTML to the bucket, never to a local folder `s3:`."""
    lake = f"s3://{s3_bucket}/lake"
    run_id = _run_on_s3(spark, tmp_path, lake)
    damaged = "lake/s3-report/marked/_delta_log/00000000000000000000.json"
    s3_server.client().put_object(Bucket=s3_bucket, Key=damaged, Body=b"garbage{not json")
    report = json.loads(write_run_report(spark, lake, run_id).read_text())
    assert (
        list(report["unreadable"]) == ["s3-report/marked@0"] and "s3-report/documents@0" in report["tables"]
    )
    assert damaged in report["unreadable"]["s3-report/marked@0"] and "no version" not in str(
        report["unreadable"]
    )

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    target = f"s3://{s3_bucket}/reports/r.html"
    shown = installed("report", run_id, "--lake", lake, "-o", target, cwd=cwd, env=s3_server.env)
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    assert (
        f"warning: s3-report/marked@0 is left out of the report: s3://{s3_bucket}/{damaged}" in shown.stderr
    )
    body = s3_server.client().get_object(Bucket=s3_bucket, Key="reports/r.html")["Body"].read()
    assert body.startswith(b"<!DOCTYPE html") or b"<html" in body[:500]
    assert b"tables left out" in body and b"s3-report/marked@0" in body and damaged.encode() in body
    assert list(cwd.iterdir()) == []

    missing = installed(
        "report", run_id, "--lake", lake, "-o", "s3://no-such-bucket/r.html", cwd=cwd, env=s3_server.env
    )
    assert "bucket 'no-such-bucket'" in assert_one_line(missing) and list(cwd.iterdir()) == []
    query = installed(
        "report", run_id, "--lake", lake, "-o", f"{target}?x={WRONG_SECRET}", cwd=cwd, env=s3_server.env
    )
    assert query.returncode == 2 and WRONG_SECRET not in query.stderr and list(cwd.iterdir()) == []
