"""`python -m curation.langid.calibrate`: how the shipped calibration.json is made, and a user's own.

It runs as a user runs it (a child process) on a slice of lingua's real sentence
files: the confusable groups (bs/hr/sr, nb/nn/da, ms/id), English, and four
languages lid.176 has no label for (zu, xh, st, tn), 300 lines each.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from curation.cli import langid_app
from curation.langid.ensemble import CALIBRATION_FILE, Calibration, LangIdConfig

LANGUAGES = ("bs", "hr", "sr", "nb", "nn", "da", "ms", "id", "en", "zu", "xh", "st", "tn")
LINES = 300
runner = CliRunner(env={"COLUMNS": "400", "NO_COLOR": "1"})  # error boxes unwrapped


def _calibrate(folder: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "curation.langid.calibrate", str(folder), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _write(folder: Path, lines: dict[str, list[str]]) -> Path:
    folder.mkdir()
    for code, texts in lines.items():
        (folder / f"{code}.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def sentences(shared_data: Path) -> dict[str, list[str]]:
    root = shared_data / "langid/lingua/language-testdata/sentences"
    read = {code: (root / f"{code}.txt").read_text(encoding="utf-8").splitlines() for code in LANGUAGES}
    return {code: [line for line in lines if line.strip()][:LINES] for code, lines in read.items()}


@pytest.fixture(scope="module")
def calibrated(sentences: dict[str, list[str]], tmp_path_factory) -> tuple[Path, Path]:
    """(folder, calibration file) of one run on the slice."""
    root = tmp_path_factory.mktemp("calibrate")
    folder = _write(root / "sentences", sentences)
    out = root / "calibration.json"
    done = _calibrate(folder, out)
    assert done.returncode == 0, done.stderr
    return folder, out


def _close(a: object, b: object) -> bool:
    """Equal, floats to 1e-6: lingua's confidences differ in their last bits between processes."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_the_shipped_calibration_is_what_calibrate_makes_of_the_calibration_half(
    shared_data: Path, tmp_path: Path
):
    """calibration.json is reproducible from lingua's even lines alone: not edited by hand, not fitted
    on the report half, and not stale after a change to the fusion, routes or pair model (~2 min)."""
    out = tmp_path / "calibration.json"
    done = _calibrate(shared_data / "langid/lingua/language-testdata/sentences", out)
    assert done.returncode == 0, done.stderr
    assert _close(json.loads(out.read_text()), json.loads(CALIBRATION_FILE.read_text())), (
        "curation/langid/calibration.json differs from what `python -m curation.langid.calibrate` makes: "
        "rerun it and commit the result with the figures it changes"
    )


def test_calibration_never_reads_the_report_half(calibrated, sentences, tmp_path: Path):
    """Every odd line (the report half) swapped for another language's: the same calibration."""
    _, first = calibrated
    codes = list(sentences)
    swapped = {
        code: [
            line if i % 2 == 0 else sentences[codes[(k + 1) % len(codes)]][i]
            for i, line in enumerate(sentences[code])
        ]
        for k, code in enumerate(codes)
    }
    again = tmp_path / "again.json"
    done = _calibrate(_write(tmp_path / "swapped", swapped), again)
    assert done.returncode == 0, done.stderr
    assert swapped != sentences
    assert _close(json.loads(first.read_text()), json.loads(again.read_text()))


def test_a_calibration_of_ones_own_is_what_eval_and_detect_use(calibrated, sentences):
    folder, out = calibrated
    calibration = Calibration.load(out)
    assert "calibration half (even lines) of 13 files, 1950 texts" in calibration.source
    assert [(p.languages, p.detectors[0]) for p in calibration.pairs] == [(("ms", "id"), "lid176")]
    result = runner.invoke(
        langid_app, ["eval", str(folder), "-b", "fasttext", "-b", "ensemble", "--calibration", str(out)]
    )
    assert result.exit_code == 0, result.output
    backends = json.loads(result.output.strip().splitlines()[-1])["backends"]
    ours, lid176 = backends["ensemble"]["per_language"], backends["fasttext"]["per_language"]
    for code in (
        "zu",
        "xh",
        "st",
        "tn",
    ):  # lid.176 has no label for them; the calibrated ensemble asks lingua
        assert lid176[code]["accuracy"] == 0 and ours[code]["accuracy"] >= 0.8, code
    assert backends["ensemble"]["overall"] >= backends["fasttext"]["overall"] + 0.2
    malay = sentences["ms"][1]  # a report-half line
    shown = runner.invoke(langid_app, ["detect", malay, "--calibration", str(out)])
    assert shown.exit_code == 0 and shown.output.split("\t")[2] == calibration.pairs[0].name, shown.output


def test_too_few_texts_of_a_pair_leave_it_without_a_pair_model(sentences, tmp_path: Path):
    folder = _write(tmp_path / "few", {code: sentences[code][:12] for code in ("ms", "id", "en")})
    out = tmp_path / "few.json"
    done = _calibrate(folder, out)
    assert done.returncode == 0, done.stderr
    assert "ms/id" in done.stderr and "no pair model" in done.stderr
    assert Calibration.load(out).pairs == []


def test_a_folder_without_language_files_or_with_bytes_not_utf8_is_named(tmp_path: Path):
    """calibrate and eval read folders alike: a usage error naming the folder, or the file and line."""
    done = _calibrate(tmp_path, tmp_path / "out.json")
    assert done.returncode == 2 and f"{tmp_path}: no <language>.txt files there" in done.stderr
    shown = runner.invoke(langid_app, ["eval", str(tmp_path)])
    assert shown.exit_code == 2 and "no <language>.txt files there" in shown.output
    (tmp_path / "en.txt").write_bytes(b"The first line is fine.\nThe second is Latin-1: caf\xe9.\n")
    done = _calibrate(tmp_path, tmp_path / "out.json")
    assert done.returncode == 2 and f"{tmp_path / 'en.txt'}:2: not UTF-8 (byte 0xe9)" in done.stderr
    shown = runner.invoke(langid_app, ["eval", str(tmp_path), "-b", "fasttext"])
    assert shown.exit_code == 2 and "en.txt:2: not UTF-8 (byte 0xe9)" in shown.output
    assert not (tmp_path / "out.json").exists()


def test_a_broken_calibration_file_names_the_file_and_its_fields(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"threshold": 2, "routes": {}}))
    with pytest.raises(
        ValidationError, match=r"calibration .*bad\.json: threshold: .*; weight: Field required"
    ):
        LangIdConfig(calibration=str(bad))
    shown = runner.invoke(langid_app, ["detect", "some text", "--calibration", str(bad)])
    assert shown.exit_code == 2 and "threshold" in shown.output and "weight" in shown.output
    missing = runner.invoke(langid_app, ["detect", "some text", "--calibration", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "curation.langid.calibrate" in missing.output
