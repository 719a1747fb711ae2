"""The I/O layer against local disk and a real S3 server on loopback."""

from __future__ import annotations

import pickle

import pytest

from pipelines.framework.storage import Location, StorageError
from pipelines.framework.storage_settings import StorageSettings, scrub
from tests.cli_run import refinery
from tests.s3_server import SECRET_KEY


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> Location:
    if request.param == "local":
        return Location.parse(tmp_path / "root")
    bucket = request.getfixturevalue("s3_bucket")
    return Location.parse(f"s3://{bucket}/root")


def test_write_read_list_glob_move_delete(root: Location) -> None:
    (root / "a/one.json").write_text("1")
    (root / "a/b/two.json").write_text("2")
    (root / "c.txt").write_bytes(b"three")
    assert (root / "a/one.json").read_text() == "1"
    assert [e.location.relative_to(root) for e in root.list()] == ["a/b/two.json", "a/one.json", "c.txt"]
    assert [e.location.relative_to(root) for e in root.glob("**/*.json")] == ["a/b/two.json", "a/one.json"]
    assert [e.location.relative_to(root) for e in root.glob("*.json")] == []
    assert [c.name for c in root.children()] == ["a"]
    assert (root / "c.txt").size() == 5 and (root / "a").is_dir() and (root / "c.txt").is_file()
    (root / "c.txt").move_to(root / "d.txt")
    assert not (root / "c.txt").exists() and (root / "d.txt").read_bytes() == b"three"
    (root / "a").delete_tree()
    assert [e.location.relative_to(root) for e in root.list()] == ["d.txt"]
    (root / "missing").delete()
    (root / "missing").delete_tree()


def test_streams_round_trip_and_locations_pickle(root: Location) -> None:
    with (root / "big.bin").open_write() as out:
        for i in range(64):
            out.write(bytes([i]) * 65536)
    with (root / "big.bin").open_read() as stream:
        assert len(stream.read()) == 64 * 65536
    again = pickle.loads(pickle.dumps(root / "big.bin"))
    assert again == root / "big.bin" and again.size() == 64 * 65536


def test_names_cannot_leave_their_root(tmp_path) -> None:
    with pytest.raises(ValueError, match="would leave"):
        Location.parse(tmp_path) / "../escape"


def test_plain_paths_and_file_urls_are_the_same_location(tmp_path) -> None:
    assert Location.parse(f"file://{tmp_path}") == Location.parse(tmp_path)
    with pytest.raises(StorageError, match="unsupported scheme"):
        Location.parse("ftp://host/x")
    with pytest.raises(StorageError, match="name a bucket"):
        Location.parse("s3://")


def test_missing_bucket_and_wrong_endpoint_fail_fast_naming_the_url(s3_server, monkeypatch) -> None:
    with pytest.raises(
        StorageError, match=r"bucket 'no-such-bucket' of s3://no-such-bucket/lake does not exist"
    ):
        Location.parse("s3://no-such-bucket/lake").require_reachable()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with pytest.raises(
        StorageError, match=r"cannot reach s3://any-bucket/lake at http://127.0.0.1:9.*AWS_ENDPOINT_URL"
    ):
        Location.parse("s3://any-bucket/lake").require_reachable()


def test_plain_http_endpoint_needs_allow_http(s3_server, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ALLOW_HTTP", "false")
    with pytest.raises(StorageError, match="AWS_ALLOW_HTTP=true"):
        _ = Location.parse("s3://bucket/lake").fs


def test_settings_hold_variable_names_never_secrets(s3_server) -> None:
    with pytest.raises(ValueError) as err:
        StorageSettings(secret_key_env="abc/def+secretvalue")
    assert "secretvalue" not in str(err.value)
    assert scrub(f"boom {SECRET_KEY} boom") == "boom *** boom"
    options = Location.parse("s3://bucket/lake").delta_storage_options()
    assert options["conditional_put"] == "etag" and options["AWS_ALLOW_HTTP"] == "true"
    assert SECRET_KEY not in repr(Location.parse("s3://bucket/lake"))


@pytest.mark.parametrize(
    "url", ["s3://user:pa55word@bucket/lake", "gs://pa55word@bucket", "az://k:pa55word@c/x"]
)
def test_a_bucket_url_with_credentials_is_refused_without_showing_them(url) -> None:
    """pyarrow would fail on it with the password in its message (and a traceback): refused up front."""
    with pytest.raises(StorageError, match=r"\*\*\*@.*cannot carry credentials") as info:
        Location.parse(url)
    assert "pa55word" not in str(info.value)
    shown = refinery("shards", "info", url)
    assert shown.returncode != 0 and "Traceback" not in shown.stderr
    assert "pa55word" not in shown.stdout + shown.stderr and "cannot carry credentials" in shown.stderr
