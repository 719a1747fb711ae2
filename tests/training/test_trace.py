# ruff: noqa: F811  (fixtures imported from the fixtures modules are re-bound as arguments)
"""`refinery trace`: a step's sequences recomputed from the config are the ones the loader fed, with their
documents and, for a set the shards stage wrote, each document's source row."""

from __future__ import annotations

import itertools
import json
import shutil
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
from training.trace import MAX_SEQUENCES, step_positions, trace_step
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


def _config_file(sources: list[dict], tmp_path: Path) -> Path:
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(_config(sources, tmp_path / "run").model_dump(mode="json")))
    (tmp_path / "run").mkdir(exist_ok=True)
    return config


def _refused(result) -> str:
    """The error of a refused trace (exit 1 through `fail`, never a traceback), whitespace removed: the
    terminal wraps a long path anywhere, so expected strings are compared through `_squash` too."""
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and "error: " in result.output
    return _squash(result.output)


def _squash(text: str) -> str:
    return "".join(text.split())


def test_only_the_asked_positions_are_computed_and_an_unlistable_step_is_refused():
    """A rank's row of a 10^8-rank run costs grad_accum positions; a whole step of millions of sequences,
    or a step past the loader's int64 positions, is refused before a position is built."""
    picked = step_positions(3, 100_000_000, 3, 2, rank=7, row=1)
    assert picked == [(m, 7, 1, m * 300_000_000 + 7 * 3 + 1) for m in (4, 5)]
    assert [p[3] for p in step_positions(1, 2, 3, 1, row=2)] == [2, 5]
    with pytest.raises(ValueError, match="row 3 is not one of the 3 rows"):
        step_positions(1, 2, 3, 1, row=3)
    with pytest.raises(ValueError, match=r"18,000,000 sequences.*--rank R.*--world-size.*--row I"):
        step_positions(1, 3_000_000, 3, 2)
    with pytest.raises(ValueError, match=r"--rank R") as only_rank:
        step_positions(1, 100_000_000, 3, 2, row=0)
    assert "--row" not in str(only_rank.value)
    with pytest.raises(ValueError, match=r"optim.grad_accum 100000000 alone"):
        step_positions(1, 1, 3, 100_000_000, row=0)
    assert len(step_positions(1, MAX_SEQUENCES, 1, 1)) == MAX_SEQUENCES  # the cap itself is listed
    with pytest.raises(ValueError, match=r"past stream position 2\*\*63"):
        step_positions(2**63 - 1, 1, 3, 2, rank=0, row=0)


def test_cli_names_the_line_of_a_bad_run_log_and_skips_a_cut_short_last_one(two_sources, tmp_path):
    a, _ = two_sources
    config = _config_file([{"path": str(a)}], tmp_path)
    log = tmp_path / "run" / "metrics.jsonl"
    tokens = BATCH * SEQ * ACCUM  # one rank's share of a step: a 1-rank run
    args = ["trace", str(config), "--step", "1", "--rank", "0", "--row", "0", "--no-source"]
    runner = CliRunner()
    killed = json.dumps({"step": 1, "loss": 6.0, "tokens": tokens}) + '\n{"step": 2, "loss": 6.7, "tok'
    log.write_text(killed)
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["world_size"] == 1 and "line 2 is cut short" in found["notes"][0]
    assert "line2iscutshort" in _squash(result.stderr)
    for bad, said in [
        (killed + "\n" + killed, "metrics.jsonl line 2: not JSON (Unterminated string"),
        ("[1, 2, 3]\n", "metrics.jsonl line 1: not a metrics record"),
        ('{"step": 45, "tokens": Infinity}\n', "line 1: step 45 and tokens inf are not positive whole"),
        (json.dumps({"step": 1, "tokens": tokens * 10**18}) + "\n", "would be a world size of 1,000,000,"),
    ]:
        log.write_text(bad)
        refused = _refused(runner.invoke(app, args))
        assert _squash(said) in refused and "--world-size" in refused, refused
    log.unlink()
    too_far = runner.invoke(app, ["trace", str(config), "--step", str(2**63 - 1), "--no-source"])
    assert "2**63" in _refused(too_far)


def test_cli_warns_when_world_size_disagrees_with_the_log_and_notes_a_step_past_the_last(
    two_sources, tmp_path
):
    a, _ = two_sources
    config = _config_file([{"path": str(a)}], tmp_path)
    (tmp_path / "run" / "metrics.jsonl").write_text(
        json.dumps({"step": 1, "tokens": BATCH * SEQ * ACCUM}) + "\n"
    )
    args = ["trace", str(config), "--row", "0", "--no-source", "--json", "--step"]
    runner = CliRunner()
    agreed = runner.invoke(app, [*args, "1", "--world-size", "1"])
    assert (
        agreed.exit_code == 0 and json.loads(agreed.stdout)["notes"] == [] and "warning" not in agreed.stderr
    )
    other = runner.invoke(app, [*args, "1", "--world-size", "2"])
    assert other.exit_code == 0 and json.loads(other.stdout)["world_size"] == 2
    assert _squash("warning: --world-size 2, but") in _squash(other.stderr)
    assert _squash("shows world size 1 at step 1") in _squash(json.loads(other.stdout)["notes"][0])
    last = runner.invoke(app, [*args, "1", "--set", "steps=1"])
    assert last.exit_code == 0 and json.loads(last.stdout)["past_last_step"] is False
    past = runner.invoke(app, [*args, "2", "--set", "steps=1"])
    found = json.loads(past.stdout)
    assert found["past_last_step"] is True and "past the config's last step (1)" in found["notes"][0]


def test_a_damaged_shard_set_is_refused_naming_its_file(two_sources, tmp_path):
    """A damaged manifest, index or .docs.parquet is an `error:` line that names the file (and, for a shard,
    `refinery shards verify`): never a traceback, and never windows mapped through a wrong index."""
    a, _ = two_sources
    pristine, damaged = tmp_path / "pristine", tmp_path / "set"
    shutil.copytree(a, pristine)
    config = _config_file([{"path": str(damaged)}], tmp_path)
    args = ["trace", str(config), "--step", "1", "--world-size", "1", "--no-source"]
    first = Manifest.load(pristine).shard_entries("train")[0].name
    index, docs = damaged / f"{first}.ds.index", damaged / f"{first}.docs.parquet"
    size = (pristine / f"{first}.ds.index").stat().st_size
    damages = [
        (
            "manifest.json",
            lambda: (damaged / "manifest.json").write_text((pristine / "manifest.json").read_text()[:100]),
        ),
        ("manifest.json", lambda: (damaged / "manifest.json").write_text("")),
        ("manifest.json", lambda: (damaged / "manifest.json").write_text("[]")),
        (index.name, lambda: index.write_bytes(np.random.default_rng(0).bytes(size))),
        (index.name, lambda: index.write_bytes((pristine / f"{first}.ds.index").read_bytes()[:8])),
        (index.name, lambda: index.write_bytes(b"")),
        (docs.name, lambda: pq.write_table(pq.read_table(docs).slice(1), docs)),
    ]
    for name, damage in damages:
        shutil.rmtree(damaged, ignore_errors=True)
        shutil.copytree(pristine, damaged)
        damage()
        said = _refused(CliRunner().invoke(app, args))
        assert name in said and ("refineryshardsverify" in said or name == "manifest.json"), said
