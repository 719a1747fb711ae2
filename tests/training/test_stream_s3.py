# ruff: noqa: F811  (fixtures imported from the fixtures module are re-bound as arguments)
"""Shard sets on object storage (issue 14, test 6): written to the S3 server on loopback by the shard
writer, verified on their URL, streamed by TokenStream through its bounded cache, and trained on with an
exact resume. The server is a real HTTP S3 endpoint (tests/s3_server.py); nothing is mocked."""

from __future__ import annotations

import shutil
from itertools import islice

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from pipelines.framework.storage import Location
from tests.training.test_stream_fixtures import web_shards, web_texts, web_tokenizer  # noqa: F401
from tests.training.test_train import _config, _losses
from training.loader.shard_cache import ShardCache
from training.loader.stream import StreamLoader, TokenStream
from training.shards.cli import shards_app
from training.shards.format import Manifest, ShardError
from training.shards.sample import build_text_shards
from training.trainer import checkpoint
from training.trainer.train import train

SEQ, B = 32, 4
runner = CliRunner()


@pytest.fixture()
def s3_shards(s3_bucket, web_texts, web_tokenizer) -> str:
    """The web shard set, written by the shard writer straight to the S3 server (no local copy)."""
    url = f"s3://{s3_bucket}/lake/shards/web"
    build_text_shards(url, [t for _, t in web_texts], web_tokenizer, train_shards=4, validation_shards=1)
    return url


def test_shards_written_to_s3_are_the_local_bytes_and_verify_on_their_url(s3_shards, web_shards):
    remote, local = Manifest.load(s3_shards), Manifest.load(web_shards)
    assert remote.shards == local.shards  # same hashes and sizes: the writer is byte-identical on S3
    names = {e.location.relative_to(Location.parse(s3_shards)) for e in Location.parse(s3_shards).list()}
    assert "manifest.json" in names and not any(n.endswith(".tmp") or "/." in n for n in names)
    result = runner.invoke(shards_app, ["verify", s3_shards, "--no-source", "--json"])
    assert result.exit_code == 0, result.output
    assert '"ok": true' in result.output and f'"shards": {len(local.shards)}' in result.output
    info = runner.invoke(shards_app, ["info", s3_shards, "--json"])
    assert info.exit_code == 0 and f'"tokens": {local.total_tokens}' in info.output


def test_a_flipped_byte_on_s3_fails_verify_and_the_sha256_check(s3_shards):
    manifest = Manifest.load(s3_shards)
    target = Location.parse(s3_shards) / (manifest.shards[1].name + ".ds")
    data = bytearray(target.read_bytes())
    data[100] ^= 1
    target.write_bytes(bytes(data))
    result = runner.invoke(shards_app, ["verify", s3_shards, "--no-source"])
    assert result.exit_code == 1 and manifest.shards[1].name in result.output and "sha256" in result.output
    with pytest.raises(ShardError, match="is corrupted: its sha256"):
        for _ in zip(range(40), TokenStream([s3_shards], SEQ, 64, verify="sha256"), strict=False):
            pass


@pytest.mark.parametrize("workers", [0, 2])
def test_s3_shards_stream_through_a_bounded_cache_in_the_local_order(
    s3_shards, web_shards, tmp_path, workers
):
    """Same batches as the local copy, while the cache never holds more than its bound (2 of 4 shards)."""
    shard_bytes = max(e.ds_bytes for e in Manifest.load(web_shards).shards)
    bound = 2 * shard_bytes + 100
    remote = TokenStream([s3_shards], SEQ, B, cache_dir=tmp_path / "cache", cache_max_bytes=bound)
    local = TokenStream([web_shards], SEQ, B)
    batches = zip(range(30), StreamLoader(remote, num_workers=workers), local, strict=False)
    for _, r, lo in batches:
        assert torch.equal(r["input_ids"], lo["input_ids"])  # same data, same order, wherever it lives
        assert remote.cache.size() <= bound
    assert 0 < remote.cache.size() <= bound
    assert remote.fingerprint() == local.fingerprint()  # a state saved on one resumes on the other


def test_a_cached_shard_evicted_by_another_worker_stays_readable_through_its_handle(s3_shards, tmp_path):
    """Two workers share one cache: the one that fetched a shard reads it whole after the other evicts it.

    The cache hands out open handles, not paths: a path found or renamed into place could be unlinked by
    the other worker before it was opened (a FileNotFoundError that once failed the 2-worker stream).
    """
    manifest = Manifest.load(s3_shards)
    first, second = manifest.shards[0], manifest.shards[1]
    root = Location.parse(s3_shards)
    bound = max(first.ds_bytes, second.ds_bytes) + 1  # room for one shard only
    mine, other = ShardCache(tmp_path / "cache", bound), ShardCache(tmp_path / "cache", bound)
    with mine.open(root / (first.name + ".ds"), first.ds_bytes) as handle:
        with other.open(root / (second.name + ".ds"), second.ds_bytes):
            assert not any(p.name == first.name + ".ds" for p in (tmp_path / "cache").glob("*/*"))
        tokens = np.memmap(handle, dtype=np.uint8, mode="r")
        assert tokens.tobytes() == (root / (first.name + ".ds")).read_bytes()
    with mine.open(root / (first.name + ".ds"), first.ds_bytes) as again:  # fetched anew, evicting the other
        assert len(again.read()) == first.ds_bytes
    assert mine.size() <= bound


def test_elastic_resume_on_s3_reads_every_position_once_in_the_local_order(s3_shards, web_shards, tmp_path):
    """2 ranks x 2 workers stop after 3 steps; 3 ranks x 1 worker resume from the saved state: every position
    is read once, and each holds the sample the uninterrupted local stream has there."""

    def run(world: int, workers: int, steps: int | None, state: dict | None) -> tuple[dict[int, int], dict]:
        seen: dict[int, int] = {}
        states = []
        for rank in range(world):
            stream = TokenStream(
                [s3_shards], SEQ, B, rank=rank, world_size=world, max_samples=120, cache_dir=tmp_path / "c"
            )
            loader = StreamLoader(stream, num_workers=workers)
            if state:
                loader.load_state_dict(state)
            for batch in loader if steps is None else islice(loader, steps):
                seen.update(zip(batch["positions"].tolist(), batch["sample_ids"].tolist(), strict=True))
            states.append(loader.state_dict())
        assert all(s == states[0] for s in states)  # every rank agrees on the state
        return seen, states[0]

    first, state = run(2, 2, 3, None)
    assert state["samples_consumed"] == 3 * 2 * B
    second, end = run(3, 1, None, state)
    assert end["samples_consumed"] == 120 and not set(first) & set(second)
    together = first | second
    assert sorted(together) == list(range(120))
    local = TokenStream([web_shards], SEQ, B).sample_ids(np.arange(120))
    assert [together[p] for p in range(120)] == local.tolist()


def test_a_shard_missing_on_s3_is_a_clear_error(s3_shards, tmp_path):
    manifest = Manifest.load(s3_shards)
    (Location.parse(s3_shards) / (manifest.shards[0].name + ".ds")).delete()
    stream = TokenStream([s3_shards], SEQ, 64, cache_dir=tmp_path / "cache", shuffle=False)
    with pytest.raises(ShardError, match=f"{manifest.shards[0].name}.ds is missing"):
        next(iter(stream))


def test_trainer_reads_s3_shards_and_resumes_exactly(s3_shards, web_shards, tmp_path):
    """Mirrors test_train's kill-and-resume on local shards: steps 5-6 after a resume equal, bit for bit,
    an uninterrupted run on S3 and one on the local copy of the same shards."""
    cache = str(tmp_path / "cache")
    local = tmp_path / "local"
    train(_config(web_shards, local))
    straight = tmp_path / "straight"
    train(_config(s3_shards, straight, data__cache_dir=cache))
    resumed = tmp_path / "resumed"
    train(_config(s3_shards, resumed, data__cache_dir=cache), stop_after=4)  # stopped after step 4
    assert checkpoint.latest(resumed / "checkpoints").name == "step_00000004"
    shutil.rmtree(cache)  # the resumed run fetches again: the cache is not part of the state
    train(_config(s3_shards, resumed, data__cache_dir=cache))
    a, b, lo = _losses(straight), _losses(resumed), _losses(local)
    assert a == lo  # S3 or local disk: the same batches, so the same losses
    assert [a[s] for s in (5, 6)] == [b[s] for s in (5, 6)]
    state_a = torch.load(straight / "checkpoints" / "step_00000006" / "model.pt", weights_only=True)
    state_b = torch.load(resumed / "checkpoints" / "step_00000006" / "model.pt", weights_only=True)
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    trainer_state = torch.load(resumed / "checkpoints" / "step_00000006" / "trainer.pt", weights_only=False)
    assert trainer_state["loader"]["samples_consumed"] == 6 * 4


def test_a_step_on_s3_traces_as_on_the_local_copy_without_fetching_a_token(s3_shards, web_shards, tmp_path):
    """`refinery trace` reads the index and provenance only: with every .ds object gone it still answers,
    and the shard, offset and documents it names are those of the same step on the local copy."""
    from training.trace import trace_step
    from training.trainer.config import TrainConfig
    from training.trainer.train import train_stream

    def traced(where: str) -> list[dict]:
        data = {"train": [where], "seq_len": SEQ, "batch_size": B, "cache_dir": str(tmp_path / "cache")}
        cfg = TrainConfig.model_validate({"data": data, "optim": {"grad_accum": 2}})
        return [{**t.as_dict(), "shard_set": None} for t in trace_step(cfg, train_stream(cfg), 5, 2)]

    for entry in Manifest.load(s3_shards).shards:
        (Location.parse(s3_shards) / f"{entry.name}.ds").delete()
    remote = traced(s3_shards)
    assert len(remote) == 2 * 2 * B and remote == traced(str(web_shards))
