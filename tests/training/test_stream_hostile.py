# ruff: noqa: F811  (fixtures imported from the fixtures module are re-bound as arguments)
"""TokenStream and the trainer on damaged shard sets: every failure is one ShardError naming the file.

The damage is what a copied, edited or half-restored set holds: a manifest whose counts disagree with
its dtype or with each other, ids past the vocabulary, a FIFO or a folder where a shard file belongs,
an index that is not whole uint64 values or not increasing, and a shard name holding terminal escapes.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.training.test_stream_fixtures import token_shards, web_shards, web_texts, web_tokenizer  # noqa: F401
from training.loader.stream import TokenStream
from training.shards.format import ShardError
from training.trainer.cli import app
from training.trainer.config import TrainConfig
from training.trainer.train import train

SEQ, B = 32, 4
VOCAB = 1000


@pytest.fixture()
def counting(tmp_path: Path) -> Path:
    """Two uint16 shards of counting ids below a 1,000-id vocabulary, with their indexes."""
    return token_shards(tmp_path / "set", [4000, 4000], vocab=VOCAB)


def _edit_manifest(folder: Path, **changes) -> None:
    """Set top-level fields, or fields of the first shard entry with a `shard_` prefix."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        if key.startswith("shard_"):
            manifest["shards"][0][key.removeprefix("shard_")] = value
        else:
            manifest[key] = value
    path.write_text(json.dumps(manifest))


def _drain(stream: TokenStream) -> None:
    for _ in stream:
        pass


def _finite(folder: Path, **kwargs) -> TokenStream:
    stream = TokenStream([folder], SEQ, B, shuffle=False, **kwargs)
    stream.max_samples = stream.epoch_length // B * B
    return stream


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"dtype": "uint32"}, "uint32 tokens"),
        ({"shard_tokens": 10**15}, "ds_bytes"),
        ({"shard_tokens": 2**50, "shard_ds_bytes": 2**51}, "more than any real shard"),
        ({"shard_documents": 10**12}, "documents in 4000 tokens"),
    ],
)
def test_manifest_counts_that_disagree_are_refused_at_open_naming_the_shard(counting, changes, says):
    _edit_manifest(counting, **changes)
    with pytest.raises(ShardError, match=says) as caught:
        TokenStream([counting], SEQ, B)
    assert "part-00000.ds does not match its manifest" in str(caught.value)
    assert "refinery shards verify" in str(caught.value)


def test_a_count_past_int64_is_a_shard_error_not_an_overflow(counting):
    _edit_manifest(counting, shard_tokens=10**30)
    with pytest.raises(ShardError, match="tokens"):
        TokenStream([counting], SEQ, B)


def test_an_id_past_the_vocabulary_names_the_shard_offset_and_id(counting):
    ds = counting / "train" / "part-00001.ds"
    tokens = np.fromfile(ds, dtype="<u2")
    tokens[1234] = 60000
    tokens.tofile(ds)
    with pytest.raises(ShardError, match=r"part-00001\.ds holds token id 60000 at token 1234") as caught:
        _drain(_finite(counting))
    assert "refinery shards verify" in str(caught.value)


def test_a_manifest_vocab_smaller_than_the_ids_is_caught_by_the_loader(counting):
    _edit_manifest(counting, vocab_size=10)
    with pytest.raises(ShardError, match=r"past the vocabulary \(10 ids"):
        _drain(_finite(counting))


def test_sets_that_disagree_on_the_vocabulary_are_not_mixed(counting, tmp_path):
    other = token_shards(tmp_path / "other", [4000], vocab=VOCAB)
    _edit_manifest(other, vocab_size=VOCAB + 64)
    with pytest.raises(ValueError, match="vocab_size differ"):
        TokenStream([counting, other], SEQ, B)


def test_a_fifo_in_place_of_a_shard_fails_instead_of_hanging(counting):
    ds = counting / "train" / "part-00000.ds"
    ds.unlink()
    os.mkfifo(ds)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            _drain(_finite(counting))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=60)
    if reader.is_alive():  # blocked in open(): a writer end releases it, then the test fails
        os.close(os.open(ds, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the loader blocked opening a FIFO")
    assert isinstance(outcome[0], ShardError) and "part-00000.ds is not a regular file" in str(outcome[0])


def test_a_folder_in_place_of_a_shard_is_named(counting):
    ds = counting / "train" / "part-00000.ds"
    ds.unlink()
    ds.mkdir()
    with pytest.raises(ShardError, match=r"part-00000\.ds is a folder"):
        _drain(_finite(counting))


def test_an_index_of_partial_uint64_values_is_named(counting):
    index = counting / "train" / "part-00000.ds.index"
    index.write_bytes(index.read_bytes()[:-3])
    with pytest.raises(ShardError, match=r"part-00000\.ds\.index is corrupted: .* bytes on disk"):
        _drain(_finite(counting, boundaries=True))


def test_an_index_out_of_order_is_named(counting):
    index = counting / "train" / "part-00000.ds.index"
    ends = np.fromfile(index, dtype="<u8")
    ends[3] = 2**63 + 5
    ends.tofile(index)
    with pytest.raises(
        ShardError, match=r"part-00000\.ds\.index is corrupted: its offsets are not increasing"
    ):
        _drain(_finite(counting, boundaries=True))


def _config(shards: Path, out: Path, **data) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "data": {"train": [str(shards)], "seq_len": SEQ, "batch_size": B, **data},
            "steps": 1,
            "eval_batches": 0,
            "out_dir": str(out),
            "device": "cpu",
            "progress": False,
        }
    )


def test_the_trainer_refuses_a_manifest_vocab_below_its_tokenizer(web_shards, web_tokenizer, tmp_path):
    edited = tmp_path / "edited"
    shutil.copytree(web_shards, edited)
    _edit_manifest(edited, vocab_size=10)
    with pytest.raises(ValueError, match="says vocab_size 10, but its tokenizer .* has 384 ids"):
        train(_config(edited, tmp_path / "run", tokenizer=str(web_tokenizer)))


def test_the_trainer_cli_prints_a_hostile_shard_name_escaped(counting, tmp_path):
    name = "train/\x1b[31mRED\x1b]0;pwned\x07[bold]x"
    _edit_manifest(counting, shard_name=name)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(_config(counting, tmp_path / "run").model_dump_json())
    result = CliRunner().invoke(app, [str(cfg)])
    assert result.exit_code == 1, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    shown = "".join(result.output.split())  # rich wraps long lines, inside words too
    assert "\\x1b[31mRED\\x1b]0;pwned\\x07[bold]x.dsismissing" in shown
