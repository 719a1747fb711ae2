# ruff: noqa: F811  (fixtures imported from the fixtures modules are re-bound as arguments)
"""`refinery trace`: a step's sequences recomputed from the config are the ones the loader fed, with their
documents and, for a set the shards stage wrote, each document's source row."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from jobs.cli import app
from tests.training.test_shards_fixtures import built_shards, corpus_rows, small_tokenizer  # noqa: F401
from tests.training.test_stream_fixtures import two_sources, web_texts, web_tokenizer  # noqa: F401
from training.loader.stream import Source, TokenStream
from training.shards.format import Manifest
from training.shards.reader import ShardReader
from training.trace import step_positions, trace_step
from training.trainer.config import TrainConfig
from training.trainer.train import train_stream

SEQ, BATCH, ACCUM, WORLD = 32, 3, 2, 2


def _config(sources: list[dict], out: Path) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "data": {"train": sources, "seq_len": SEQ, "batch_size": BATCH},
            "optim": {"grad_accum": ACCUM},
            "out_dir": str(out),
            "seed": 7,
        }
    )


def _fed(cfg: TrainConfig, rank: int, micro_batches: int) -> list[np.ndarray]:
    """What the loader gives `rank` of a WORLD-rank run: each micro-batch's windows (inputs + last label)."""
    stream = TokenStream(
        [Source(s.path, s.weight) for s in cfg.data.train],
        SEQ,
        BATCH,
        seed=cfg.seed,
        rank=rank,
        world_size=WORLD,
    )
    batches = itertools.islice(iter(stream), micro_batches)
    return [np.concatenate([b["input_ids"].numpy(), b["labels"].numpy()[:, -1:]], axis=1) for b in batches]


def test_a_steps_traces_are_the_windows_the_loader_fed_each_rank(two_sources, tmp_path):
    a, b = two_sources
    cfg = _config([{"path": str(a), "weight": 2.0}, {"path": str(b), "weight": 1.0}], tmp_path / "run")
    step = 3
    traces = trace_step(cfg, train_stream(cfg), step, WORLD)
    assert len(traces) == WORLD * ACCUM * BATCH
    fed = {rank: _fed(cfg, rank, step * ACCUM) for rank in range(WORLD)}
    for t in traces:
        assert (step - 1) * ACCUM <= t.micro_batch < step * ACCUM
        manifest = Manifest.load(t.shard_set)
        tokens = ShardReader(t.shard_set, t.shard, manifest.dtype).tokens
        window = np.asarray(tokens[t.token_offset : t.token_offset + t.tokens], dtype=np.int64)
        assert np.array_equal(window, fed[t.rank][t.micro_batch][t.row])
        # the documents cover the window end to end, each inside its own span of the shard
        spans = [d.window_span for d in t.documents]
        assert spans[0][0] == 0 and spans[-1][1] == SEQ + 1
        assert all(x[1] == y[0] for x, y in itertools.pairwise(spans))
        docs = pq.read_table(Path(t.shard_set) / f"{t.shard}.docs.parquet").column("doc_id").to_pylist()
        for d in t.documents:
            assert d.doc_id in docs
            assert d.shard_span[0] <= t.token_offset + d.window_span[0] < d.shard_span[1]
    assert {t.shard_set for t in traces} == {str(a), str(b)}  # both weighted sets were drawn


def test_step_positions_follow_the_trainers_count():
    assert step_positions(1, 2, 3, 1) == [(0, r, i, 3 * r + i) for r in range(2) for i in range(3)]
    assert [p[3] for p in step_positions(2, 2, 3, 2, rank=1)] == [15, 16, 17, 21, 22, 23]
    with pytest.raises(ValueError, match="counted from 1"):
        step_positions(0, 1, 1, 1)
    with pytest.raises(ValueError, match="rank 2 is not one of the 2 ranks"):
        step_positions(1, 2, 1, 1, rank=2)


def test_cli_reads_the_world_size_from_the_runs_metrics_and_says_what_a_sample_set_lacks(
    two_sources, tmp_path
):
    a, _ = two_sources
    out = tmp_path / "run"
    out.mkdir()
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(_config([{"path": str(a)}], out).model_dump(mode="json")))
    tokens = 2 * WORLD * BATCH * SEQ * ACCUM
    (out / "metrics.jsonl").write_text(json.dumps({"step": 2, "loss": 5.0, "tokens": tokens}) + "\n")
    runner = CliRunner()
    result = runner.invoke(app, ["trace", str(config), "--step", "4", "--row", "1", "--no-source", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["world_size"] == WORLD and len(found["samples"]) == WORLD * ACCUM
    assert {s["row"] for s in found["samples"]} == {1} and all(s["documents"] for s in found["samples"])
    elastic = json.dumps(
        {"step": 5, "loss": 4.0, "tokens": 5 * 4 * BATCH * SEQ * ACCUM}
    )  # resumed on 4 ranks
    (out / "metrics.jsonl").write_text((out / "metrics.jsonl").read_text() + elastic + "\n")
    changed = runner.invoke(app, ["trace", str(config), "--step", "4", "--no-source"])
    said = " ".join(changed.output.split())  # error lines wrap at the terminal's width
    assert (
        changed.exit_code == 1
        and "world size 2 then 4" in said
        and "steps up to 2 trace with --world-size 2" in said
    )
    assert (
        runner.invoke(
            app, ["trace", str(config), "--step", "2", "--world-size", "2", "--no-source"]
        ).exit_code
        == 0
    )
    no_row = runner.invoke(app, ["trace", str(config), "--step", "4", "--row", "9", "--world-size", "2"])
    assert no_row.exit_code == 1 and "row 9 is not one of the 3 rows" in " ".join(no_row.output.split())
    assert "--no-source" not in no_row.output  # the source hint only where the source table failed
    refused = runner.invoke(app, ["trace", str(config), "--step", "4", "--world-size", "2"])
    assert refused.exit_code == 1
    said = " ".join(refused.output.split())
    assert "names no source lake" in said and "--no-source" in said


def test_source_rows_come_from_the_table_version_the_shards_were_cut_from(
    built_shards, shared_data, tmp_path
):
    config = tmp_path / "train.yaml"
    cfg = _config([{"path": str(built_shards.folder)}], tmp_path / "run")
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    result = CliRunner().invoke(app, ["trace", str(config), "--step", "2", "--world-size", "1", "--json"])
    assert result.exit_code == 0, result.output
    locators = {row["doc_id"]: row["locator"] for row in corpus_rows(shared_data)}
    documents = [d for s in json.loads(result.stdout)["samples"] for d in s["documents"]]
    assert documents and all(d["source_row"]["locator"] == locators[d["doc_id"]] for d in documents)
    text = CliRunner().invoke(app, ["trace", str(config), "--step", "2", "--world-size", "1", "--rank", "0"])
    assert text.exit_code == 0 and "source row: source=" in text.stdout and "locator=" in text.stdout
    moved = CliRunner().invoke(
        app, ["trace", str(config), "--step", "2", "--lake", str(tmp_path / "elsewhere")]
    )
    assert (
        moved.exit_code == 1 and "no table 'test/curated'" in moved.output and "--lake names" in moved.output
    )


def test_text_is_the_window_decoded_with_the_runs_tokenizer(two_sources, web_tokenizer, tmp_path):
    from tokenizers import Tokenizer

    from training.trace import attach_texts

    a, _ = two_sources
    cfg = _config([{"path": str(a)}], tmp_path / "run")
    stream = train_stream(cfg)
    traces = trace_step(cfg, stream, 2, WORLD, rank=0, row=0)
    attach_texts(traces, stream)  # the manifest names the tokenizer the set was built with
    tokenizer = Tokenizer.from_file(str(web_tokenizer))
    for t, fed in zip(traces, _fed(cfg, 0, 2 * ACCUM)[ACCUM:], strict=True):
        assert t.text == tokenizer.decode(fed[0].tolist(), skip_special_tokens=False) and t.text.strip()
