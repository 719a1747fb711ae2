"""`refinery trace CONFIG --step N`: the shards, documents and source rows one optimizer step trained on.

Mounted by jobs/mount.py; the work is in training/trace.py. Outside training/trainer because it
reads the lake (the source table version) and prints web text, which the training loop never does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.text import Text

from pipelines.framework.cli_options import fail, print_json
from pipelines.framework.terminal_text import for_terminal
from training.trace import SampleTrace

if TYPE_CHECKING:
    from training.trainer.config import TrainConfig

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def trace(
    config: Path = typer.Argument(..., exists=True, dir_okay=False, help="the training config of the run"),
    step: int = typer.Option(..., "--step", min=1, help="optimizer step, counted as in metrics.jsonl"),
    world_size: int | None = typer.Option(
        None, "--world-size", min=1, help="ranks of the run (default: from out_dir/metrics.jsonl, else 1)"
    ),
    rank: int | None = typer.Option(None, "--rank", min=0, help="only this rank's sequences"),
    row: int | None = typer.Option(None, "--row", min=0, help="only this row of each micro-batch"),
    shards: list[str] = typer.Option(None, "--shards", help="the --shards the run was given, if any"),
    overrides: list[str] = typer.Option(None, "--set", help="the --set overrides the run was given"),
    source: bool = typer.Option(True, "--source/--no-source", help="look documents up in the source table"),
    lake: str | None = typer.Option(None, "--lake", help="the lake of the source table, if it has moved"),
    text: bool = typer.Option(False, "--text", help="each window decoded: what the model read"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The shards, token offsets, documents and source rows of the sequences one optimizer step trained on."""
    from training.shards.format import ShardError
    from training.trace import attach_source_rows, attach_texts, trace_step
    from training.trainer.config import cli_settings, load_config
    from training.trainer.train import train_stream

    try:
        cfg = load_config(config, cli_settings(shards, overrides))
        ranks, notes = run_world_size(cfg, step, world_size)
        stream = train_stream(cfg)
        traces = trace_step(cfg, stream, step, ranks, rank, row)
        if text:
            attach_texts(traces, stream, cfg.data.tokenizer)
    except (ValueError, OSError, ShardError) as exc:  # ShardError: a damaged manifest, index or .docs.parquet
        fail(str(exc), 1)
    if step > cfg.steps:
        notes.append(
            f"note: step {step} is past the config's last step ({cfg.steps}): what it would train on"
        )
    for note in notes:
        stderr.print(Text(for_terminal(note)))
    if source:
        try:
            attach_source_rows(traces, stream, lake)
        except (ValueError, OSError, LookupError) as exc:  # LookupError: no such table version in the lake
            fail(f"{exc} (--no-source skips the source table; --lake names where it is now)", 1)
    if as_json:
        samples = [t.as_dict() for t in traces]
        print_json(
            {"world_size": ranks, "past_last_step": step > cfg.steps, "notes": notes, "samples": samples}
        )
        return
    stdout.print(Text(f"step {step}: {len(traces)} sequence(s), world size {ranks}", style="bold"))
    for t in traces:
        print_trace(t)
    stderr.print("a document's text: refinery shards show SHARD_SET --doc DOC_ID")


def run_world_size(cfg: TrainConfig, step: int, given: int | None) -> tuple[int, list[str]]:
    """The world size to trace with, and notes for stderr (and --json).

    --world-size as given, cross-checked with out_dir/metrics.jsonl (a disagreement is a warning: the
    flag may be meant, but a 1-rank run traced on 2 ranks is otherwise a silent wrong answer); else the
    log's; else 1. A log that cannot be read stops the trace only where it was to give the world size.
    """
    from training.trace import LOG_HINT, read_run_log

    if given is None:
        log = read_run_log(cfg)
        return ((log.world_size() if log else None) or 1), (log.notes if log else [])
    try:
        log = read_run_log(cfg)
    except ValueError as exc:
        why = str(exc).removesuffix(f"; {LOG_HINT}")
        return given, [f"warning: --world-size {given} not checked against the run's log: {why}"]
    disagreement = log.disagreement(given, step) if log else None
    return given, (log.notes if log else []) + ([f"warning: {disagreement}"] if disagreement else [])


def print_trace(t: SampleTrace) -> None:
    """One sequence and its documents, every web-sourced value escaped for the terminal."""
    head = (
        f"micro-batch {t.micro_batch} rank {t.rank} row {t.row} (position {t.position}): "
        f"{t.shard_set} {t.shard} tokens {t.token_offset}..{t.token_offset + t.tokens}"
    )
    stdout.print(Text(for_terminal(head)))
    for d in t.documents:
        quality = "-" if d.quality_score is None else f"{d.quality_score:.3f}"
        line = (
            f"  {d.doc_id} [{d.source}, {d.lang}, quality {quality}] the window's tokens "
            f"{d.window_span[0]}..{d.window_span[1]}; in the shard, tokens {d.shard_span[0]}..{d.shard_span[1]}"
        )
        stdout.print(Text(for_terminal(line)))
        if d.source_row is not None:
            row = ", ".join(f"{k}={v}" for k, v in d.source_row.items() if v is not None)
            stdout.print(Text(for_terminal(f"    source row: {row}")))
    if t.text is not None:
        stdout.rule(style="dim")
        stdout.print(Text(for_terminal(t.text, keep_newlines=True)))
        stdout.rule(style="dim")
