"""Area sub-commands mounted on the `refinery` CLI.

Each entry is (command name, "module:attribute" of a typer app). A sub-app whose
module cannot be imported (an optional dependency missing) is left out with a
note on stderr rather than breaking every other command.
"""

from __future__ import annotations

import importlib
import sys

import typer

SUBAPPS: list[tuple[str, str]] = [
    ("submit", "jobs.control_cli:submit_cmd"),
    ("status", "jobs.control_cli:status_cmd"),
    ("logs", "jobs.control_cli:logs_cmd"),
    ("cancel", "jobs.control_cli:cancel_cmd"),
    ("cluster", "jobs.control_cli:cluster_app"),
    ("train", "training.trainer.cli:train"),
    ("trace", "training.trace_cli:trace"),
    ("report", "jobs.report_cli:report"),
    ("serve", "jobs.report_cli:serve"),
    ("tokenizer", "training.shards.cli:tokenizer_app"),
    ("shards", "training.shards.cli:shards_app"),
    ("quality", "curation.cli:quality_app"),
    ("langid", "curation.cli:langid_app"),
    ("decontam", "curation.cli:decontam"),
    ("dedup", "dedup.cli:app"),
    ("pii", "pii.cli:app"),
]


def mount_subapps(app: typer.Typer, entries: list[tuple[str, str]] | None = None) -> None:
    for name, target in SUBAPPS if entries is None else entries:
        module, _, attr = target.partition(":")
        try:
            sub = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            print(f"refinery: command {name!r} unavailable: {exc}", file=sys.stderr)
            continue
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=name)
        else:
            app.command(name=name)(sub)
