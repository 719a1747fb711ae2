# ruff: noqa: F811  (pytest fixtures imported from the shared corpus module are re-bound as arguments)
"""verify / info / show and the manifest model on hostile shard sets: an edited or copied manifest, files
swapped for devices, FIFOs, links out of the set or cut short. Each command either finishes with one clear
problem or error naming the field or file, or (a usage error) refuses the option; none hangs, allocates
what the manifest claims, or prints a damaged document as if it were whole.

Commands that would hang or exhaust memory before the fix run in a child process with a time limit
and an address-space limit, so a regression fails the test instead of the test run.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from tests.training.test_shards_fixtures import built_shards, small_tokenizer  # noqa: F401
from training.loader.stream import TokenStream
from training.shards.cli import shards_app
from training.shards.format import Manifest, ShardError, shard_paths
from training.shards.verify import sample_positions, verify

REPO = Path(__file__).resolve().parents[2]
CHILD_MEMORY = 4 << 30  # bytes of address space: the libraries fit, a list of 10**12 documents does not
CHILD_SECONDS = 120


@pytest.fixture()
def copy(built_shards, tmp_path: Path) -> Path:
    target = tmp_path / "shards"
    shutil.copytree(built_shards.folder, target)
    return target


def _edit(folder: Path, edit) -> None:
    """Apply `edit` to the manifest's JSON (a dict) in place."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def _cli(*args: str):
    return CliRunner(env={"COLUMNS": "400"}).invoke(shards_app, list(args))


def _fails_cleanly(*args: str):
    """Exit status 1 with a message, not an exception escaping (CliRunner reports both as status 1)."""
    result = _cli(*args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    return result


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))


def _child(*args: str) -> subprocess.CompletedProcess:
    """`refinery shards ARGS` in a child process with bounded memory and time."""
    code = "from training.shards.cli import shards_app; shards_app()"
    try:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=REPO,
            env={**os.environ, "COLUMNS": "400"},
            capture_output=True,
            text=True,
            timeout=CHILD_SECONDS,
            preexec_fn=_limits,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`refinery shards {' '.join(args)}` did not finish in {CHILD_SECONDS} s")


# --------------------------------------------------------------------------- 1: sampling memory
def test_sampling_draws_positions_without_listing_every_document():
    """The same draw as sampling the list of every (shard, position), without building the list."""
    counts = [("train/a", 5), ("train/b", 0), ("train/c", 7), ("validation/d", 3)]
    listed = [(name, i) for name, n in counts for i in range(n)]
    for seed in range(5):
        assert sample_positions(counts, 6, seed) == sorted(random.Random(seed).sample(listed, 6))
    assert sample_positions(counts, 100, 0) == listed and sample_positions([], 5, 0) == []
    huge = sample_positions([("train/a", 10**12), ("train/b", 10**12)], 50, 0)
    assert len(set(huge)) == 50 and all(0 <= i < 10**12 for _, i in huge)


def test_a_manifest_claiming_a_trillion_documents_is_a_count_problem_not_an_allocation(copy):
    first = Manifest.load(copy).shards[0].name
    _edit(copy, lambda m: m["shards"][0].update(documents=10**12))
    ran = _child("verify", str(copy), "--sample", "20")
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert f"[count] {first}" in ran.stdout and "1000000000000" in ran.stdout
    assert "20 documents compared" in ran.stdout  # drawn from the shards whose index agrees
    assert "Error" not in ran.stderr


# --------------------------------------------------------------------------- 2: bounds
@pytest.mark.parametrize(
    ("key", "raw", "says"),
    [
        (
            "format_version",
            "99",
            "format_version: Value error, format version 99 is not one this code reads (it reads 1)",
        ),
        ("vocab_size", "1e400", "vocab_size: Input should be"),
        ("vocab_size", "1000.0", "vocab_size: Input should be a valid integer"),
        ("vocab_size", "70000", "vocab_size 70000 does not fit uint16 (at most 65536 ids)"),
        ("eos_id", "65536", "eos_id: Value error, 65536 is not a uint16 id"),
        ("mixture_weights", '{"a": NaN}', "mixture_weights.a: Input should be a finite number"),
        ("mixture_weights", '{"a": Infinity}', "mixture_weights.a: Input should be a finite number"),
        ("mixture_weights", '{"a": -1}', "mixture_weights.a: Input should be greater than or equal to 0"),
        ("total_tokens", str(10**30), "total_tokens: Input should be less than 9223372036854775808"),
    ],
)
def test_manifest_fields_out_of_range_are_refused_naming_the_field(copy, key, raw, says):
    path = copy / "manifest.json"
    text, replaced = re.subn(rf'"{key}": (\{{\}}|[^,}}]+)', f'"{key}": {raw}', path.read_text(), count=1)
    assert replaced == 1
    path.write_text(text)
    for args in (["verify", "--no-source"], ["info"], ["show", "--doc", "any"]):
        result = _fails_cleanly(*args, str(copy))
        assert says in " ".join(result.output.split()), (args, result.output)


@pytest.mark.parametrize(
    ("field", "value"), [("tokens", 10**30), ("documents", 10**30), ("ds_bytes", 2**63), ("tokens", 69450.0)]
)
def test_shard_counts_past_int64_or_not_integers_are_refused(copy, field, value):
    _edit(copy, lambda m: m["shards"][0].update({field: value}))
    result = _fails_cleanly("verify", "--no-source", str(copy))
    assert f"shards[0].{field}" in result.output


def test_the_writer_never_emits_a_non_finite_number(copy, tmp_path):
    manifest = Manifest.load(copy)
    with pytest.raises(ValidationError, match="mixture_weights.a"):
        Manifest(**{**manifest.model_dump(), "mixture_weights": {"a": math.nan}})
    manifest.mixture_weights = {"a": math.inf}  # assignment is not validated: save refuses it instead
    with pytest.raises(ValueError, match="Out of range float"):
        manifest.save(tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()


# --------------------------------------------------------------------------- 3: duplicates and splits
def _duplicate_first(m: dict) -> None:
    """The first shard listed twice, with the totals recomputed, so no count disagrees."""
    first = m["shards"][0]
    m["shards"].insert(0, dict(first))
    for key in ("tokens", "documents"):
        m["splits"][first["split"]][key] += first[key]
        m[f"total_{key}"] += first[key]
    m["splits"][first["split"]]["shards"] += 1


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (_duplicate_first, "is listed more than once"),
        (
            lambda m: m["shards"][0].update(split="validation"),
            "shards[0].split: Value error, 'validation' is not",
        ),
        (lambda m: m["shards"][0].update(split="bogus"), "'bogus' is not a split"),
    ],
)
def test_every_reader_refuses_a_shard_listed_twice_or_under_another_split(copy, edit, says):
    _edit(copy, edit)
    for args in (["verify", "--no-source"], ["verify"], ["info"], ["show", "--doc", "any"]):
        result = _fails_cleanly(*args, str(copy))
        assert says in result.output, (args, result.output)
    for split in ("train", "validation"):
        with pytest.raises(ShardError, match="not a shard manifest"):
            TokenStream([copy], 16, 2, split=split)


# --------------------------------------------------------------------------- 4: files verify reads
@pytest.mark.parametrize("kind", ["device", "fifo", "folder"])
def test_a_tokenizer_that_is_not_a_regular_file_is_a_problem_not_a_hang(copy, tmp_path, kind):
    target = {"device": "/dev/zero", "fifo": str(tmp_path / "fifo"), "folder": str(tmp_path)}[kind]
    if kind == "fifo":
        os.mkfifo(target)
    _edit(copy, lambda m: m.update(tokenizer_path=target))
    ran = _child("verify", str(copy), "--sample", "0")
    assert ran.returncode == 1 and f"[tokenizer] -: {target} is missing or not a regular file" in ran.stdout
    ran = _child("verify", str(copy), "--sample", "0", "--tokenizer", "/dev/zero")
    assert ran.returncode == 1 and "/dev/zero is missing or not a regular file" in ran.stdout


def test_a_fifo_in_place_of_a_shard_file_is_still_reported_as_absent(copy):
    name = Manifest.load(copy).shards[0].name
    for path in (Path(str(p)) for p in shard_paths(copy, name)[:2]):
        path.unlink()
        os.mkfifo(path)
    ran = _child("verify", str(copy), "--no-source")
    assert ran.returncode == 1 and f"[missing] {name}: files absent" in ran.stdout


# --------------------------------------------------------------------------- 5: show checks its files
def _first_doc(folder: Path) -> tuple[str, Path, Path, Path]:
    """A document of the largest shard (its second), and that shard's .ds, .ds.index and .docs.parquet."""
    manifest = Manifest.load(folder)
    entry = max(manifest.shards, key=lambda e: e.documents)
    tokens, index, docs = (Path(str(p)) for p in shard_paths(folder, entry.name))
    return pq.read_table(docs, columns=["doc_id"]).column("doc_id")[1].as_py(), tokens, index, docs


def _cut(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) // 8 * 8])


@pytest.mark.parametrize(
    ("damage", "names", "says"),
    [
        (lambda t, i, d, o: _cut(t, 0.5), "ds", "holds"),
        (lambda t, i, d, o: t.write_bytes(b""), "ds", "holds 0 bytes"),
        (lambda t, i, d, o: i.write_bytes(i.read_bytes()[:-8]), "index", "holds"),
        (lambda t, i, d, o: (t.unlink(), t.symlink_to(o)), "ds", "outside the shard set"),
        (lambda t, i, d, o: (t.unlink(), os.mkfifo(t)), "ds", "is not a regular file"),
        (lambda t, i, d, o: (t.unlink(), t.mkdir()), "ds", "is a folder"),
        (lambda t, i, d, o: (d.unlink(), os.mkfifo(d)), "docs", "is not a regular file"),
    ],
)
def test_show_refuses_a_shard_whose_files_disagree_with_the_manifest(copy, tmp_path, damage, names, says):
    doc_id, tokens, index, docs = _first_doc(copy)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(tokens.read_bytes())  # the right size and bytes, but not a file of the set
    damage(tokens, index, docs, outside)
    ran = _child("show", str(copy), "--doc", doc_id, "--no-source")
    path = {"ds": tokens, "index": index, "docs": docs}[names]
    assert ran.returncode == 1, ran.stdout
    message = " ".join(ran.stderr.split() + ran.stdout.split())
    assert f"shard file {path} " in message and says in message, message
    assert f"`refinery shards verify {copy}`" in message and "Traceback" not in message


def test_show_refuses_an_index_whose_offsets_disagree_with_the_manifest(copy):
    doc_id, _, index, _ = _first_doc(copy)
    ends = np.fromfile(index, dtype="<u8")
    ends[-1] += 5
    ends.tofile(index)
    result = _fails_cleanly("show", str(copy), "--doc", doc_id, "--no-source")
    assert f"shard file {index} offsets do not increase" in " ".join(result.output.split())


# --------------------------------------------------------------------------- 6: reports that name the cause
def test_an_index_one_entry_short_is_a_count_problem_with_the_source_too(copy):
    name = Manifest.load(copy).shards[0].name
    tokens, index, _ = shard_paths(copy, name)
    index.write_bytes(index.read_bytes()[:-8])
    report = verify(copy, sample=5)
    assert str(report.problems[0]).startswith(f"[count] {name}: ")
    assert not any(p.kind == "unreadable" for p in report.problems), [str(p) for p in report.problems]
    data = bytearray(tokens.read_bytes())  # the .ds changed too: its documents are compared, index-bounded
    data[10] ^= 0x01
    tokens.write_bytes(bytes(data))
    report = verify(copy, sample=0)
    kinds = {p.kind for p in report.problems if p.shard == name}
    assert {"count", "sha256"} <= kinds and "unreadable" not in kinds, [str(p) for p in report.problems]


# --------------------------------------------------------------------------- 7: options
def test_a_negative_sample_is_a_usage_error(copy):
    result = _cli("verify", str(copy), "--sample", "-5")
    assert result.exit_code == 2 and "--sample" in result.output


def test_a_stage_spec_with_a_non_finite_mixture_weight_fails_with_the_spec():
    """It used to be accepted, and the stage failed only when it wrote the manifest, after the shards."""
    from training.shards.config import ShardsConfig

    with pytest.raises(ValidationError, match="mixture_weights.a"):
        ShardsConfig(
            input="demo/curated", tokenizer="samples/tokenizer.json", mixture_weights={"a": math.nan}
        )
