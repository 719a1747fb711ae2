# ruff: noqa: F811  (pytest fixtures imported from the shared corpus module are re-bound as arguments)
"""`refinery tokenizer` on bad paths and out-of-range options: one line that says what is wrong.

A tokenizer path that is a folder, a device, a FIFO or empty is named as such (not "does not
exist"); an output that cannot be written fails naming the file; sample options that select no row
and vocabulary sizes no shard can hold are refused instead of reported as "no kept rows".
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.framework.storage_settings import StorageError
from tests.training.test_shards_fixtures import SCHEMA, corpus_rows, small_tokenizer, write_corpus  # noqa: F401
from training.shards.cli import tokenizer_app
from training.tokenizer.build import train_bpe
from training.tokenizer.load import load_tokenizer, save_tokenizer

runner = CliRunner()


def _line(output: str) -> str:
    """The output with rich's wrapping undone (it breaks long lines at spaces)."""
    return " ".join(output.split())


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda tmp: tmp, "is a folder, not a tokenizer.json"),
        (lambda tmp: Path("/dev/null"), "is not a regular file"),
        (lambda tmp: tmp / "missing.json", "does not exist"),
    ],
)
def test_info_says_what_the_path_is(tmp_path, make, says):
    result = runner.invoke(tokenizer_app, ["info", str(make(tmp_path))])
    assert result.exit_code == 1 and says in _line(result.output), result.output


def test_an_empty_path_and_a_fifo_are_named_not_read(tmp_path):
    with pytest.raises(FileNotFoundError, match="the tokenizer path is empty"):
        load_tokenizer("")
    fifo = tmp_path / "tokenizer.json"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            load_tokenizer(fifo)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout=60)
    if reader.is_alive():  # blocked opening it: a writer end releases it, then the test fails
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("load_tokenizer blocked on a FIFO")
    assert isinstance(outcome[0], FileNotFoundError) and "is not a regular file" in str(outcome[0])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc takes no new files on Linux")
def test_an_unwritable_output_is_named_by_the_probe_and_by_save(small_tokenizer):
    from training.tokenizer.load import check_writable

    with pytest.raises(StorageError, match=r"cannot write tokenizer /proc/x\.json"):
        check_writable(Path("/proc/x.json"))
    with pytest.raises(StorageError, match=r"cannot write tokenizer /proc/x\.json"):
        save_tokenizer(load_tokenizer(small_tokenizer), "/proc/x.json")


def test_save_writes_whole_files_and_refuses_a_folder(small_tokenizer, tmp_path):
    tokenizer = load_tokenizer(small_tokenizer)
    out = save_tokenizer(tokenizer, tmp_path / "sub" / "tok.json")
    assert load_tokenizer(out).get_vocab_size() == tokenizer.get_vocab_size()
    assert sorted(p.name for p in out.parent.iterdir()) == ["tok.json"]  # no probe or temp file left
    with pytest.raises(StorageError, match="it is a folder"):
        save_tokenizer(tokenizer, tmp_path / "sub")


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--max-documents", "0", "--max-documents) must be at least 1, got 0"),
        ("--max-documents", "-5", "--max-documents) must be at least 1, got -5"),
        ("--sample-fraction", "0", "--sample-fraction) must be in (0, 1], got 0.0"),
        ("--vocab-size", str(2**32 + 1), "at most the ids a uint32 shard can hold"),
    ],
)
def test_out_of_range_options_are_refused_by_name(lake, shared_data, tmp_path, option, value, says):
    write_corpus(lake, "test/curated", shared_data)
    out = tmp_path / "tok.json"
    args = ["train", "--table", "test/curated", "-o", str(out), "--lake", str(lake.root), option, value]
    result = runner.invoke(tokenizer_app, args)
    assert result.exit_code == 1 and says in _line(result.output), result.output
    assert "no kept rows" not in result.output and not out.exists()


def test_a_vocabulary_smaller_than_asked_is_said(capsys):
    tokenizer = train_bpe(iter(["one two three"] * 5), vocab_size=5000)
    trained = tokenizer.get_vocab_size(with_added_tokens=True)
    assert trained < 5000
    assert (
        f"trained a vocabulary of {trained} tokens, fewer than the 5000 asked for" in capsys.readouterr().err
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc takes no new files on Linux")
def test_train_refuses_an_unwritable_output_before_it_reads_the_lake(tmp_path):
    """The output is probed first: the table named here does not even exist, and the error is the
    output's, not the table's (it used to train for minutes, then fail to save)."""
    from tests.cli_run import refinery

    shown = refinery(
        "tokenizer",
        "train",
        "--table",
        "no/such",
        "-o",
        "/proc/x.json",
        "--lake",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert shown.returncode == 1, shown.stdout + shown.stderr
    assert "cannot write tokenizer /proc/x.json" in shown.stderr and "Traceback" not in shown.stderr
