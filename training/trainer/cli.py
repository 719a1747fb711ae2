"""`refinery train CONFIG`: train a GPT on shards.

Mount the function `train` as a command (jobs/mount.py: `("train", "training.trainer.cli:train")`);
`app` is the same command as a stand-alone typer app.

One process by default; `--nproc-per-node N` re-launches the same config under torchrun
(DDP/FSDP on this node). For several nodes, call torchrun yourself (see docs/training.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

console = Console(stderr=True)


def train(
    config: Path = typer.Argument(..., exists=True, dir_okay=False, help="training config YAML"),
    shards: list[str] = typer.Option(
        None, "--shards", help="shard folder(s) replacing data.train/validation"
    ),
    steps: int | None = typer.Option(None, help="override the number of optimizer steps"),
    out: str | None = typer.Option(None, "--out", help="override out_dir (checkpoints, metrics.jsonl)"),
    overrides: list[str] = typer.Option(None, "--set", help="override any key: --set optim.lr=1e-3"),
    nproc_per_node: int = typer.Option(
        1, "--nproc-per-node", min=1, help="processes on this node (torchrun)"
    ),
    stop_after: int | None = typer.Option(None, help="stop after this step; rerun to resume"),
    fresh: bool = typer.Option(
        False, "--fresh", help="start over: discard checkpoints and metrics in out_dir"
    ),
) -> None:
    """Train (or resume from the latest checkpoint in out_dir) as CONFIG says."""
    from training.trainer.config import cli_settings, load_config
    from training.trainer.train import train as run_training

    sets = cli_settings(shards, overrides)
    if steps is not None:
        sets.append(f"steps={steps}")
    if out is not None:
        sets.append(f"out_dir={out}")
    try:
        cfg = load_config(config, sets)
    except (ValueError, OSError) as exc:
        _print_error("error: ", str(exc))
        raise typer.Exit(2) from exc
    _require_out_dir(cfg.out_dir)
    if nproc_per_node > 1:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={nproc_per_node}",
        ]
        cmd += ["-m", "training.trainer.train", str(config)] + [a for s in sets for a in ("--set", s)]
        if stop_after is not None:
            cmd += ["--stop-after", str(stop_after)]
        if fresh:
            cmd.append("--fresh")
        raise typer.Exit(subprocess.call(cmd, env=os.environ.copy()))
    try:
        last = run_training(cfg, stop_after=stop_after, fresh=fresh)
    except (ValueError, OSError, RuntimeError) as exc:
        _print_error("training failed: ", str(exc))
        raise typer.Exit(1) from exc
    if last:
        console.print(
            _safe(
                f"done: step {last['step']}, loss {last['loss']:.4f}, metrics in {cfg.out_dir}/metrics.jsonl"
            )
        )


def _safe(text: str) -> Text:
    """`text` as literal terminal text: paths and shard names come from manifests and configs, so a
    `[...]` must not be read as rich markup nor an ESC sequence reach the terminal.

    Imported here, not at module level: the trainer's package may not reach `pipelines` at import
    time (tests/import_graph.py, TRAINING_MAY_IMPORT); this CLI runs in the driver, where it is there.
    """
    from pipelines.framework.terminal_text import for_terminal

    return Text(for_terminal(text, keep_newlines=True))


def _print_error(label: str, message: str) -> None:
    """One red label and the escaped message: an exception's text quotes paths from manifests."""
    console.print(Text(label, style="red") + _safe(message))


def _require_out_dir(out_dir: str) -> None:
    """Made before any model is built: a path under a plain file used to fail at the first checkpoint."""
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        _print_error(
            "error: ", f"out_dir {out_dir}: {reason}; set out_dir (or --out) to a folder you can write"
        )
        raise typer.Exit(2) from None


app = typer.Typer(help="Pretrain a GPT on refinery shards (single process, or torchrun on this node).")
app.command()(train)
