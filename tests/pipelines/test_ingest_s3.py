"""Ingest from object storage and the web (issue 14, test 5): real WARCs served by the loopback S3
server and by a loopback HTTP server, one truncated and one unreadable, a paths file with a base URL,
and connection drops mid-file that must cost a ranged re-read, never the file."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

import pytest

from pipelines.framework.lake import Lake
from pipelines.framework.stage import StageContext
from pipelines.framework.storage import Location, StorageError
from pipelines.ingest.inputs import InputSpec, list_input
from pipelines.ingest.readers import read_file, source
from pipelines.ingest.readers.base import FileTask
from pipelines.ingest.stage import Ingest, IngestConfig
from tests.pipelines.web_server import Faults, serve
from tests.s3_server import ACCESS_KEY, SECRET_KEY

WARCS = (
    "web/cc_warc_resiliparse/warcfile.warc.gz",
    "web/dolma_cc_samples/warc/sample-0000.warc.gz",
    "web/dolma_cc_samples/warc/sample-0001.warc.gz",
    "web/cc_whirlwind_single_page/whirlwind.warc.gz",
)
FAST = {"extractor": "resiliparse"}
TABLES = ("documents", "images", "quarantine")


@pytest.fixture(scope="module")
def crawl(shared_data: Path, tmp_path_factory) -> Path:
    """The real WARCs, a truncated copy of one (its first half) and garbage under a WARC name."""
    folder = tmp_path_factory.mktemp("crawl")
    for name in WARCS:
        (folder / Path(name).name).write_bytes((shared_data / name).read_bytes())
    whole = (shared_data / WARCS[2]).read_bytes()
    (folder / "cut.warc.gz").write_bytes(whole[: len(whole) // 2])
    (folder / "garbage.warc.gz").write_bytes(bytes(range(256)) * 64)
    return folder


def _upload(s3_server, bucket: str, folder: Path, prefix: str = "crawl") -> None:
    client = s3_server.client()
    for path in sorted(folder.iterdir()):
        client.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes())


def _ingest(
    spark, tmp_path: Path, spec: dict, lake_root: str | None = None
) -> tuple[dict, dict[str, list[dict]]]:
    """Run the stage on one input into a fresh lake (local unless `lake_root`); (metrics, rows per table)."""
    lake = Lake(lake_root or tmp_path / f"lake-{uuid.uuid4().hex[:6]}")
    stage = Ingest(IngestConfig(inputs=[{"name": "crawl", "format": "warc", "options": FAST, **spec}]))
    ctx = StageContext(spark=spark, lake=lake, dataset="t", run_id="r1", work_dir=tmp_path / "work")
    result = stage.run(ctx)
    rows = {}
    for name, staged in result.tables.items():
        lake.write(staged, ctx.table(name))
        rows[name] = lake.dataset(ctx.table(name)).to_table().to_pylist()
    return result.metrics, rows


def _documents(rows: dict[str, list[dict]]) -> dict[str, str]:
    return {r["doc_id"]: r["text"] for r in rows["documents"]}


def _reconciles(metrics: dict, rows: dict[str, list[dict]]) -> None:
    assert metrics["records_in"] == sum(len(rows[t]) for t in TABLES)
    assert sum(metrics["rows"]["crawl"].values()) == metrics["records_in"]


@pytest.fixture(scope="module")
def local_run(spark, crawl: Path, tmp_path_factory) -> tuple[dict, dict[str, list[dict]]]:
    """The same files read from local disk: what every remote run must equal."""
    return _ingest(spark, tmp_path_factory.mktemp("local"), {"path": str(crawl / "*.warc.gz")})


def _quarantine_by_file(rows: dict[str, list[dict]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for row in rows["quarantine"]:
        found.setdefault(row["locator"].rsplit(":", 1)[0], set()).add(row["reason"])
    return found


def test_warcs_from_s3_truncated_and_unreadable_are_quarantined_with_their_urls(
    spark, s3_server, s3_bucket, crawl, local_run, tmp_path
):
    _upload(s3_server, s3_bucket, crawl)
    lake = f"s3://{s3_bucket}/lake"  # the tasks write their tables' files through the I/O layer too
    metrics, rows = _ingest(spark, tmp_path, {"path": f"s3://{s3_bucket}/crawl/*.warc.gz"}, lake)
    _reconciles(metrics, rows)
    assert not list(Path.cwd().glob("s3:*")), "an S3 lake must not land in a local folder"
    keys = [
        o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="lake/")["Contents"]
    ]
    assert {f"lake/t/{t}/_delta_log/00000000000000000000.json" for t in TABLES} <= set(keys)
    local_docs = _documents(local_run[1])
    assert _documents(rows) == local_docs and len(local_docs) > 20
    url = f"s3://{s3_bucket}/crawl"
    by_file = _quarantine_by_file(rows)
    assert set(by_file) == {f"{url}/cut.warc.gz", f"{url}/garbage.warc.gz"}
    assert by_file[f"{url}/cut.warc.gz"] & {"truncated_record", "truncated_stream"}
    assert by_file[f"{url}/garbage.warc.gz"] == {"malformed_warc"}
    # Every quarantine row says where in the file: a byte offset after the URL.
    assert all(r["locator"].rsplit(":", 1)[1].removeprefix("gz+").isdigit() for r in rows["quarantine"])
    assert metrics["files"] == {"crawl": len(WARCS) + 2}
    assert metrics["bytes"]["crawl"] == sum(p.stat().st_size for p in crawl.iterdir())
    assert metrics["skipped_records"] == local_run[0]["skipped_records"]
    written = json.dumps([metrics, rows], default=str)
    assert SECRET_KEY not in written and ACCESS_KEY not in written


def test_paths_file_with_base_url_reads_each_key_and_quarantines_a_missing_one(
    spark, s3_server, s3_bucket, crawl, local_run, tmp_path
):
    _upload(s3_server, s3_bucket, crawl, prefix="crawl-data/CC-TEST/warc")
    keys = [f"crawl-data/CC-TEST/warc/{p.name}" for p in sorted(crawl.iterdir())]
    listing = "\n".join([*keys, "crawl-data/CC-TEST/warc/missing.warc.gz", ""]).encode()
    s3_server.client().put_object(Bucket=s3_bucket, Key="warc.paths.gz", Body=gzip.compress(listing))
    spec = {"paths_file": f"s3://{s3_bucket}/warc.paths.gz", "base_url": f"s3://{s3_bucket}/"}
    metrics, rows = _ingest(spark, tmp_path, spec)
    _reconciles(metrics, rows)
    assert metrics["files"] == {"crawl": len(keys) + 1} and metrics["files_unsized"] == {
        "crawl": len(keys) + 1
    }
    assert sorted(_documents(rows).values()) == sorted(_documents(local_run[1]).values())
    missing = [r for r in rows["quarantine"] if r["reason"] == "unreadable_file"]
    assert [r["locator"] for r in missing] == [f"s3://{s3_bucket}/crawl-data/CC-TEST/warc/missing.warc.gz:0"]
    # Locators name each key's URL: base_url joined with the line.
    assert {r["locator"].rsplit(":", 1)[0] for r in rows["documents"]} <= {
        f"s3://{s3_bucket}/{k}" for k in keys
    }


def test_http_inputs_survive_dropped_connections_by_ranged_rereads(spark, crawl, local_run, tmp_path):
    names = [Path(n).name for n in WARCS]
    faults = Faults(cut={names[1]: 5000, names[2]: 3000}, times={names[1]: 1, names[2]: 2})
    with serve(crawl, faults) as web:
        (tmp_path / "warc.paths").write_text("\n".join([*names, "missing.warc.gz"]) + "\n")
        spec = {"paths_file": str(tmp_path / "warc.paths"), "base_url": web.url}
        metrics, rows = _ingest(spark, tmp_path, spec)
        single, _ = _ingest(spark, tmp_path, {"path": f"{web.url}/{names[0]}"})
    _reconciles(metrics, rows)
    # The paths file's lines are the names the local run's relpaths are, so even the ids agree.
    served = {
        r["doc_id"]: r["text"] for r in local_run[1]["documents"] if r["locator"].split(":")[0] in names
    }
    assert _documents(rows) == served and served
    assert [r["reason"] for r in rows["quarantine"]] == ["unreadable_file"]
    assert rows["quarantine"][0]["locator"] == f"{web.url}/missing.warc.gz:0"
    # Each cut cost one ranged GET from the byte reached, not a read from the start.
    assert ("GET", names[1], 5000) in faults.log
    assert ("GET", names[2], 3000) in faults.log and ("GET", names[2], 6000) in faults.log
    assert single["files"] == {"crawl": 1} and single["bytes"] == {"crawl": (crawl / names[0]).stat().st_size}


def test_a_read_that_keeps_failing_is_one_quarantine_row_with_url_and_offset(crawl, monkeypatch):
    monkeypatch.setattr(source, "BASE_DELAY", 0.01)
    name = Path(WARCS[1]).name
    faults = Faults(cut={name: 4000}, times={name: 1}, no_ranges={name})
    with serve(crawl, faults) as web:
        url = f"{web.url}/{name}"
        rows = list(read_file(FileTask("crawl", url, name, "warc", FAST)))
    failed = [r for r in rows if r.get("reason") == "read_failed"]
    assert len(failed) == 1 and failed[0]["locator"] == f"{url}:4000"
    assert f"read failed at byte 4000 after {source.ATTEMPTS} attempts" in failed[0]["excerpt"]
    assert [m for m, n, _ in faults.log if n == name].count("GET") == source.ATTEMPTS


def test_object_storage_listing_filters_folders_and_names_what_is_missing(s3_server, s3_bucket, crawl):
    _upload(s3_server, s3_bucket, crawl)
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="crawl/notes.txt", Body=b"not a warc")
    client.put_object(Bucket=s3_bucket, Key="crawl/.hidden/x.warc.gz", Body=b"x")
    files, ignored = list_input(InputSpec(name="c", path=f"s3://{s3_bucket}/crawl", format="warc"))
    assert [f.relpath for f in files] == sorted(p.name for p in crawl.iterdir())
    assert ignored == [f"s3://{s3_bucket}/crawl/notes.txt"]
    assert all(f.size == (crawl / f.relpath).stat().st_size and f.mtime_ns for f in files)
    # The I/O layer hands out the bytes as stored, never gunzipped by the name.
    cut = crawl / "cut.warc.gz"
    assert Location.parse(f"s3://{s3_bucket}/crawl/cut.warc.gz").read_bytes() == cut.read_bytes()
    deep, _ = list_input(InputSpec(name="c", path=f"s3://{s3_bucket}/**/*.warc.gz"))
    assert [f.relpath for f in deep] == [f"crawl/{p.name}" for p in sorted(crawl.iterdir())]  # no .hidden/
    one, _ = list_input(InputSpec(name="c", path=f"s3://{s3_bucket}/crawl/cut.warc.gz"))
    assert [(f.relpath, f.format) for f in one] == [("cut.warc.gz", "warc")]
    with pytest.raises(FileNotFoundError, match=rf"no object or prefix at s3://{s3_bucket}/nothing"):
        list_input(InputSpec(name="c", path=f"s3://{s3_bucket}/nothing"))
    with pytest.raises(
        StorageError, match=r"bucket 'no-such-bucket' of s3://no-such-bucket/x/\*.warc.gz does not"
    ):
        list_input(InputSpec(name="c", path="s3://no-such-bucket/x/*.warc.gz"))
    with pytest.raises(StorageError, match=r"bucket 'no-such-bucket' of s3://no-such-bucket/p.gz does not"):
        list_input(InputSpec(name="c", paths_file="s3://no-such-bucket/p.gz", base_url="s3://x"))
    with pytest.raises(FileNotFoundError, match=rf"paths file s3://{s3_bucket}/p.gz does not exist"):
        list_input(InputSpec(name="c", paths_file=f"s3://{s3_bucket}/p.gz", base_url="s3://x"))


def test_paths_file_needs_a_base_url_for_relative_keys_and_inputs_one_source(tmp_path):
    (tmp_path / "warc.paths").write_text("crawl-data/a.warc.gz\n")
    with pytest.raises(ValueError, match="line 1 of the paths file.*set `base_url`"):
        list_input(InputSpec(name="c", paths_file=str(tmp_path / "warc.paths")))
    with pytest.raises(ValueError, match="exactly one of `path` and `paths_file`"):
        InputSpec(name="c", path="x", paths_file="y")
    with pytest.raises(ValueError, match="`base_url` goes with `paths_file`"):
        InputSpec(name="c", path="x", base_url="s3://b")


def test_locators_of_web_files_leave_out_credentials_and_keys_keep_their_characters():
    signed = FileTask(
        "c", "https://user:pw@example.org/x.warc.gz?X-Amz-Signature=abc#top", "x.warc.gz", "warc"
    )
    assert signed.locator(5) == "https://example.org/x.warc.gz:5"
    assert (
        FileTask("c", "s3://b/odd?key#1.warc", "odd?key#1.warc", "warc").locator(0)
        == "s3://b/odd?key#1.warc:0"
    )
    assert FileTask("c", "/data/a?b.warc", "a?b.warc", "warc").locator(0) == "a?b.warc:0"


class _DropsOnce:
    """A real S3 file; the first one opened fails, as a reset connection does, once it has handed out
    `at` bytes. `log` records every open and seek."""

    def __init__(self, real, at: int, log: list[tuple[str, int]]):
        self._real, self._at, self._log = real, at, log
        self._first = not log
        log.append(("open", 0))

    def seek(self, offset: int) -> None:
        self._log.append(("seek", offset))
        self._real.seek(offset)

    def read(self, size: int) -> bytes:
        if self._first:
            if self._real.tell() >= self._at:
                raise ConnectionResetError("connection reset by peer")
            size = min(size, self._at - self._real.tell())
        return self._real.read(size)

    def size(self) -> int:
        return self._real.size()

    def close(self) -> None:
        self._real.close()


def test_an_s3_read_that_drops_mid_file_resumes_at_the_byte_reached(s3_server, s3_bucket, crawl, monkeypatch):
    _upload(s3_server, s3_bucket, crawl)
    name = Path(WARCS[1]).name
    log: list[tuple[str, int]] = []
    real_open = Location.open_random
    monkeypatch.setattr(source, "BASE_DELAY", 0.01)
    monkeypatch.setattr(Location, "open_random", lambda loc: _DropsOnce(real_open(loc), 5000, log))
    remote = list(read_file(FileTask("crawl", f"s3://{s3_bucket}/crawl/{name}", name, "warc", FAST)))
    local = list(read_file(FileTask("crawl", str(crawl / name), name, "warc", FAST)))
    assert log == [("open", 0), ("open", 0), ("seek", 5000)]  # one drop, then a re-open at byte 5000
    assert [(r["id"], r["text"]) for r in remote if r["kind"] == "document"] == [
        (r["id"], r["text"]) for r in local if r["kind"] == "document"
    ]


@pytest.mark.parametrize(
    ("name", "fmt", "options"),
    [
        ("web/dolma_cc_samples/multiple_files/cc_en_head-0091.jsonl.gz", "jsonl", {}),
        ("images/datajuicer_test_images/demo-dataset-images-bytes.parquet", "image_parquet", {}),
        ("images/datajuicer_test_images/cat.jpg", "images", {"captions": "none"}),
    ],
)
def test_other_formats_read_from_s3_give_the_rows_of_a_local_read(
    s3_server, s3_bucket, shared_data: Path, name: str, fmt: str, options: dict
):
    local_path = shared_data / name
    s3_server.client().put_object(Bucket=s3_bucket, Key=f"in/{local_path.name}", Body=local_path.read_bytes())
    url = f"s3://{s3_bucket}/in/{local_path.name}"
    remote = list(read_file(FileTask("s", url, local_path.name, fmt, options)))
    local = list(read_file(FileTask("s", str(local_path), local_path.name, fmt, options)))
    assert remote and all(r["locator"].startswith(f"{url}:") for r in remote)
    assert [{**r, "locator": None} for r in remote] == [{**r, "locator": None} for r in local]
    assert all(r["kind"] in ("document", "image") for r in remote)


def test_a_documents_parquet_on_s3_is_read_with_random_access(
    s3_server, s3_bucket, shared_data: Path, tmp_path
):
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = (shared_data / "web/datajuicer_pretrain_source_samples/redpajama-c4-refined.jsonl").read_text()
    records = [json.loads(line) for line in lines.splitlines() if line.strip()]
    local_path = tmp_path / "docs.parquet"
    pq.write_table(pa.Table.from_pylist([{"text": r["text"]} for r in records]), local_path)
    s3_server.client().put_object(Bucket=s3_bucket, Key="docs.parquet", Body=local_path.read_bytes())
    remote = list(read_file(FileTask("s", f"s3://{s3_bucket}/docs.parquet", "docs.parquet", "parquet")))
    local = list(read_file(FileTask("s", str(local_path), "docs.parquet", "parquet")))
    assert [r["text"] for r in remote] == [r["text"] for r in local] == [r["text"] for r in records]


def test_a_paths_file_of_thousands_of_keys_is_split_across_tasks(spark, s3_server, s3_bucket, tmp_path):
    client = s3_server.client()
    keys = [f"shards/{i:05d}.jsonl" for i in range(2000)]
    for i, key in enumerate(keys):
        client.put_object(
            Bucket=s3_bucket, Key=key, Body=json.dumps({"text": f"document {i}"}).encode() + b"\n"
        )
    (tmp_path / "jsonl.paths").write_text("\n".join(keys) + "\n")
    lake = Lake(tmp_path / "lake")
    inputs = [{"name": "many", "paths_file": str(tmp_path / "jsonl.paths"), "base_url": f"s3://{s3_bucket}"}]
    stage = Ingest(IngestConfig(inputs=inputs, partitions=4))
    ctx = StageContext(spark=spark, lake=lake, dataset="t", run_id="r1", work_dir=tmp_path / "work")
    result = stage.run(ctx)
    assert result.metrics["files"] == {"many": 2000} and result.metrics["rows"] == {
        "many": {"documents": 2000}
    }
    assert len(result.tables["documents"].files) == 4  # one file per task, each task a quarter of the keys
    lake.write(result.tables["documents"], ctx.table("documents"))
    texts = {r["text"] for r in lake.dataset(ctx.table("documents")).to_table(columns=["text"]).to_pylist()}
    assert texts == {f"document {i}" for i in range(2000)}
