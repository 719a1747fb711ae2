"""`refinery dedup files`: the sub-app on real files, through typer's CliRunner."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from typer.testing import CliRunner

from dedup.cli import app


def test_dedup_files_prints_text_and_image_clusters(spark, shared_data: Path, tmp_path: Path) -> None:
    images = shared_data / "images/datajuicer_test_images"
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("img1.png", "img4.png", "img2.jpg", "img5.jpg", "cat.jpg"):
        (folder / name).write_bytes((images / name).read_bytes())
    (folder / "broken.jpg").write_bytes((images / "cat.jpg").read_bytes()[:200])
    jsonl = shared_data / "dedup/datajuicer_demo_dedup/demo-dataset-deduplication.jsonl"
    result = CliRunner().invoke(app, ["files", str(jsonl), str(folder), "--threshold", "0.7", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["documents"] == 14 and report["images"] == 6
    assert any(len(c["members"]) >= 2 for c in report["text_clusters"])
    groups = sorted(sorted(Path(m).name for m in c["members"]) for c in report["image_clusters"])
    assert groups == [["img1.png", "img4.png"], ["img2.jpg", "img5.jpg"]]
    assert any("broken.jpg" in p for p in report["problems"])


def test_dedup_files_rejects_threshold_with_bands(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    result = CliRunner().invoke(
        app, ["files", str(tmp_path), "--threshold", "0.7", "--bands", "4", "--rows", "4"]
    )
    assert result.exit_code != 0
    assert "either threshold or bands" in result.output


def test_dedup_files_reads_compressed_jsonl_and_reports_bad_lines(spark, tmp_path: Path) -> None:
    """A line without text is skipped and named; so is a line that is not JSON, and the lines after it
    are read; `.jsonl.gz` is read like `.jsonl`."""
    text = "the same long sentence about the river and the old mill stands here again " * 3
    good = [json.dumps({"text": text}), json.dumps({"title": "no text"}), json.dumps({"text": text})]
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as handle:
        handle.write("\n".join(good) + "\n")
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"text": text}) + "\n{not json\n" + json.dumps({"text": "x"})
    )
    result = CliRunner().invoke(app, ["files", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["documents"] == 4
    assert [len(c["members"]) for c in report["text_clusters"]] == [3]
    problems = report["problems"]
    assert len(problems) == 2
    assert any("a.jsonl.gz:2" in p and "no text field" in p for p in problems)
    assert any("b.jsonl:2" in p and "not valid JSON" in p for p in problems)
