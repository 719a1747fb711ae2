# ruff: noqa: F811  (fixtures imported from the fixtures module are re-bound as arguments)
"""TokenStream: determinism, elastic resume, mixing, small shard counts, bad shards (object storage: test_stream_s3.py)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from tests.training.test_stream_fixtures import (  # noqa: F401
    token_shards,
    two_sources,
    web_shards,
    web_texts,
    web_tokenizer,
)
from training.loader.sample_order import KeyedPermutation, Mixture
from training.loader.stream import Source, StreamLoader, TokenStream
from training.shards.format import Manifest, ShardError

SEQ, B = 32, 4


def _consume(
    path, world: int, workers: int, steps: int | None, state: dict | None, max_samples: int | None = None
) -> tuple[list[int], list[int], list[dict]]:
    """Every rank of a (simulated) world of `world` ranks with `workers` loader workers takes `steps` batches.

    Returns sample ids and positions seen by all ranks, and each rank's loader state afterwards.
    """
    ids, positions, states = [], [], []
    for rank in range(world):
        stream = TokenStream([path], SEQ, B, rank=rank, world_size=world, max_samples=max_samples)
        loader = StreamLoader(stream, num_workers=workers)
        if state:
            loader.load_state_dict(state)
        batches = loader if steps is None else (b for _, b in zip(range(steps), loader, strict=False))
        for batch in batches:
            ids += batch["sample_ids"].tolist()
            positions += batch["positions"].tolist()
        states.append(loader.state_dict())
    return ids, positions, states


def test_permutation_is_a_bijection_and_keyed():
    for n in (1, 2, 3, 17, 1000, 65_537):
        out = KeyedPermutation(n, key=42)(np.arange(n))
        assert sorted(out.tolist()) == list(range(n))
    a, b = KeyedPermutation(1000, 1)(np.arange(1000)), KeyedPermutation(1000, 2)(np.arange(1000))
    assert (a != b).mean() > 0.9
    assert np.array_equal(a, KeyedPermutation(1000, 1)(np.arange(1000)))


def test_order_is_a_pure_function_and_each_epoch_covers_every_window_once(web_shards):
    s1 = TokenStream([web_shards], SEQ, B, seed=7)
    s2 = TokenStream([str(web_shards)], SEQ, B, seed=7)
    n = s1.epoch_length
    first, second = s1.sample_ids(np.arange(n)), s1.sample_ids(np.arange(n, 2 * n))
    assert sorted(first.tolist()) == list(range(n)) == sorted(second.tolist())
    assert not np.array_equal(first, second)  # each epoch has its own order
    assert np.array_equal(first, s2.sample_ids(np.arange(n)))
    assert not np.array_equal(first, TokenStream([web_shards], SEQ, B, seed=8).sample_ids(np.arange(n)))
    b1, b2 = next(iter(s1)), next(iter(s2))
    assert torch.equal(b1["input_ids"], b2["input_ids"])
    assert torch.equal(b1["input_ids"][:, 1:], b1["labels"][:, :-1])


@pytest.mark.parametrize(("before", "after"), [((2, 2), (3, 1)), ((3, 1), (2, 2))])
def test_elastic_resume_loses_and_repeats_nothing(web_shards, before, after):
    epoch = min(TokenStream([web_shards], SEQ, B).epoch_length, 500)  # a stream cut at 500 samples: quicker
    ids_a, pos_a, states = _consume(web_shards, *before, steps=5, state=None, max_samples=epoch)
    assert len({s["samples_consumed"] for s in states}) == 1  # every rank agrees on the state
    state = states[0]
    assert state["samples_consumed"] == 5 * before[0] * B == len(ids_a)
    ids_b, pos_b, states_b = _consume(web_shards, *after, steps=None, state=state, max_samples=epoch)
    end = states_b[0]["samples_consumed"]
    assert sorted(pos_a + pos_b) == list(range(end))  # positions: contiguous, none twice
    assert len(set(ids_a + ids_b)) == len(ids_a) + len(ids_b) == end  # sample ids: none repeated
    uninterrupted = TokenStream([web_shards], SEQ, B).sample_ids(np.arange(state["samples_consumed"], end))
    assert sorted(ids_b) == sorted(uninterrupted.tolist())
    assert epoch - end < after[0] * B  # only the last partial step is left


def test_resume_in_process_continues_with_the_next_batch(web_shards):
    stream = TokenStream([web_shards], SEQ, B)
    it = iter(stream)
    for _ in range(3):
        next(it)
    expected = next(it)
    resumed = TokenStream([web_shards], SEQ, B)
    state = stream.state_dict()
    state["samples_consumed"] = 3 * B
    resumed.load_state_dict(state)
    assert torch.equal(next(iter(resumed))["input_ids"], expected["input_ids"])
    other = TokenStream([web_shards], SEQ + 1, B)
    with pytest.raises(ValueError, match="other data"):
        other.load_state_dict(state)


def test_mixing_proportions_hold_and_are_deterministic(two_sources):
    a, b = two_sources
    stream = TokenStream([Source(str(a), 3.0), Source(str(b), 1.0)], SEQ, B)
    sets, _ = stream.windows_at(np.arange(20_000))
    assert abs((sets == 0).mean() - 0.75) < 0.002
    for start in range(0, 20_000, 1_000):  # the interleave is smooth, not only right on average
        assert abs((sets[start : start + 200] == 0).mean() - 0.75) < 0.02
    again, _ = TokenStream([Source(str(a), 3.0), Source(str(b), 1.0)], SEQ, B).windows_at(np.arange(20_000))
    assert np.array_equal(sets, again)
    batch = next(iter(stream))
    assert batch["input_ids"].shape == (B, SEQ)
    mix = Mixture([0.5, 0.3, 0.2])
    s, inner = mix(np.arange(30_000))
    for i in range(3):  # inside each set's stream positions are consecutive: nothing skipped
        assert np.array_equal(np.sort(inner[s == i]), np.arange((s == i).sum()))


def test_fewer_shards_than_ranks_times_workers(tmp_path):
    path = token_shards(tmp_path / "one", [4_000])
    assert len(Manifest.load(path).shards) == 1
    ids, positions, states = _consume(path, world=3, workers=2, steps=4, state=None)
    assert len(ids) == 3 * 4 * B == len(set(ids)) == len(set(positions))
    assert states[0]["samples_consumed"] == 3 * 4 * B


def test_open_shards_stay_bounded_with_many_shards(tmp_path):
    path = token_shards(tmp_path / "many", [SEQ * 3] * 200, doc_len=SEQ)
    stream = TokenStream([path], SEQ, 16, max_open_shards=8)
    it = iter(stream)
    for _ in range(20):
        next(it)
    assert len(stream._shards.maps) <= 8


def test_windows_hold_the_shard_tokens(tmp_path):
    path = token_shards(tmp_path / "count", [1_000, 1_500], doc_len=1_000_000)
    stream = TokenStream([path], SEQ, B, shuffle=False)
    batch = next(iter(stream))
    # shard 0 is one document: ids 0..998 then EOS; unshuffled window i starts at token i * SEQ
    assert batch["input_ids"][1].tolist() == list(range(SEQ, 2 * SEQ))


def test_document_boundaries_restart_positions(web_shards):
    stream = TokenStream([web_shards], 256, 8, boundaries=True)
    eos = stream.manifest.eos_id
    batch = next(iter(stream))
    x, pos, doc = batch["input_ids"], batch["position_ids"], batch["doc_ids"]
    seen_boundary = False
    for row in range(x.shape[0]):
        assert pos[row, 0] == 0 and doc[row, 0] == 0
        for i in range(1, x.shape[1]):
            if x[row, i - 1] == eos:  # the token after an EOS starts a new document
                seen_boundary = True
                assert pos[row, i] == 0 and doc[row, i] == doc[row, i - 1] + 1
            else:
                assert pos[row, i] == pos[row, i - 1] + 1 and doc[row, i] == doc[row, i - 1]
    assert seen_boundary


def test_corrupted_or_missing_shard_is_reported_by_name(web_shards, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(web_shards, bad)
    victim = bad / "train" / "part-00002.ds"
    with open(victim, "r+b") as handle:
        handle.truncate(victim.stat().st_size - 6)
    stream = TokenStream([bad], SEQ, 64)
    with pytest.raises(ShardError, match="part-00002.ds is corrupted"):
        for _ in zip(range(40), stream, strict=False):
            pass
    with pytest.raises(Exception, match="part-00002.ds is corrupted"):  # also raised from a loader worker
        for _ in zip(range(40), StreamLoader(TokenStream([bad], SEQ, 64), num_workers=1), strict=False):
            pass
    victim.unlink()
    with pytest.raises(ShardError, match="part-00002.ds is missing"):
        for _ in zip(range(40), TokenStream([bad], SEQ, 64), strict=False):
            pass
    flipped = tmp_path / "flipped"
    shutil.copytree(web_shards, flipped)
    data = bytearray((flipped / "train" / "part-00001.ds").read_bytes())
    data[100] ^= 1
    (flipped / "train" / "part-00001.ds").write_bytes(bytes(data))
    with pytest.raises(ShardError, match="part-00001.ds is corrupted: its sha256"):
        for _ in zip(range(40), TokenStream([flipped], SEQ, 64, verify="sha256"), strict=False):
            pass
