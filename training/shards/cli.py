"""`refinery tokenizer ...` and `refinery shards ...`: typer sub-apps mounted by jobs/cli.py.

tokenizer train  trains a byte-level BPE on a streamed sample of a lake table and reports fertility
tokenizer info   vocabulary size, EOS, hash and shard dtype of any tokenizer.json
shards verify    hashes, counts, structure and a sampled re-tokenization against the source table
shards info      totals per split, source and language, and the source table version
shards show      one document decoded, with its shard, span and provenance
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from pipelines.framework.cli_options import LakeOption, fail, lake_root, output_file, print_json
from pipelines.framework.terminal_table import print_table
from pipelines.framework.terminal_text import for_terminal

tokenizer_app = typer.Typer(help="Train and inspect tokenizers (HF tokenizer.json).", no_args_is_help=True)
shards_app = typer.Typer(help="Inspect and verify tokenized shard sets.", no_args_is_help=True)
console = Console()


@tokenizer_app.command("train")
def train(
    table: str = typer.Option(
        ..., "--table", help="Lake table to learn from, e.g. demo/curated (kept rows only)."
    ),
    vocab_size: int = typer.Option(8192, "--vocab-size", min=257),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write tokenizer.json."),
    lake: str | None = LakeOption,
    version: int | None = typer.Option(None, "--version", min=0, help="Table version (default: latest)."),
    sample_fraction: float = typer.Option(1.0, "--sample-fraction", min=0.0, max=1.0),
    max_documents: int | None = typer.Option(100_000, "--max-documents"),
    seed: int = typer.Option(0, "--seed"),
    eos_token: str = typer.Option("<|endoftext|>", "--eos-token"),
    min_frequency: int = typer.Option(2, "--min-frequency", min=1),
) -> None:
    """Train a byte-level BPE with an EOS token on a deterministic sample of TABLE, streamed batch by batch."""
    from pipelines.framework.lake import Lake, TableMissingError, snapshot_dataset
    from training.tokenizer.build import TableSample, fertility, train_bpe, write_report
    from training.tokenizer.load import check_writable, describe, save_tokenizer

    if not eos_token:
        raise typer.BadParameter("the EOS token cannot be empty", param_hint="--eos-token")
    output_file(output, "tokenizer.json", "--output")
    check_writable(output)  # a StorageError (one line, exit 1) before training, not after
    lk = Lake(lake_root(lake))
    try:
        snapshot = lk.delta(table, version)
    except (TableMissingError, ValueError) as exc:  # ValueError: a name that leaves the lake
        fail(str(exc), 1)
    pinned = snapshot.version()

    def sample() -> TableSample:
        return TableSample(snapshot_dataset(snapshot), sample_fraction, max_documents, seed)

    training = sample()
    try:
        tokenizer = train_bpe(training.texts(), vocab_size, eos_token, min_frequency)
    except ValueError as exc:
        fail(str(exc), 1)
    if training.documents == 0:
        fail(f"no kept rows with text in {table} v{pinned}: nothing to train on", 1)
    path = save_tokenizer(tokenizer, output)
    tok_info = describe(path, eos_token)
    stats = fertility(tokenizer, sample())
    report = write_report(path, tok_info, table, pinned, stats)
    summary = (
        f"trained on {training.documents} documents of {table} v{pinned}: vocab {tok_info.vocab_size}, "
        f"EOS {tok_info.eos_token!r} = {tok_info.eos_id}, sha256 {tok_info.sha256}"
    )
    console.print(Text(for_terminal(summary)))
    _print_fertility(stats)
    console.print(Text(for_terminal(f"wrote {path} and {report}")))


def _print_fertility(stats) -> None:
    print_table(
        console,
        ("lang", "documents", "words", "tokens", "tokens/word"),
        [(lang, f.documents, f.words, f.tokens, f"{f.tokens_per_word:.3f}") for lang, f in stats.items()],
        title="fertility (tokens per whitespace word)",
        right=("documents", "words", "tokens", "tokens/word"),
    )


@tokenizer_app.command("info")
def tokenizer_info(path: Path, eos_token: str | None = typer.Option(None, "--eos-token")) -> None:
    """Vocabulary size, EOS token and id, sha256, and the shard dtype it implies."""
    from training.tokenizer.load import describe

    try:
        tok = describe(path, eos_token)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc), 1)
    print_json({**tok.__dict__, "dtype": tok.dtype})


@shards_app.command("verify")
def verify_cmd(
    folder: str = typer.Argument(..., help="Shard set folder or URL, e.g. s3://bucket/lake/shards/web."),
    sample: int = typer.Option(
        50, "--sample", min=0, help="Documents re-tokenized from the source table (0: none)."
    ),
    seed: int = typer.Option(0, "--seed"),
    lake: str | None = typer.Option(
        None, "--lake", help="Lake (folder or URL) holding the source table (default: as recorded)."
    ),
    tokenizer: Path | None = typer.Option(
        None, "--tokenizer", help="tokenizer.json if it moved (hash must match)."
    ),
    no_source: bool = typer.Option(False, "--no-source", help="Skip the comparison with the source table."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check FOLDER against its manifest and source table; exit 1 and name the first mismatch if any."""
    from training.shards.format import ShardError
    from training.shards.verify import verify

    try:
        report = verify(folder, sample, seed, lake, tokenizer, check_source=not no_source)
    except (OSError, ShardError) as exc:  # no manifest or a damaged one, or storage out of reach (URL named)
        fail(str(exc), 1)
    if as_json:
        print_json(report.as_dict())
    else:
        console.print(
            f"{report.shards} shards, {report.documents} documents, {report.tokens} tokens; "
            f"{report.sampled} documents compared with the source table"
        )
        for problem in report.problems:
            console.print(Text(for_terminal(str(problem)), style="red"))
        console.print("[green]OK[/green]" if report.ok else f"[red]{len(report.problems)} problem(s)[/red]")
    if not report.ok:
        raise typer.Exit(1)


@shards_app.command("info")
def info_cmd(
    folder: str = typer.Argument(..., help="Shard set folder or URL."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Tokens and documents per split, source and language, and the source table version."""
    from training.shards.format import ShardError
    from training.shards.inspect import info

    try:
        summary = info(folder)
    except (OSError, ShardError) as exc:
        fail(str(exc), 1)
    if as_json:
        print_json(summary)
        return
    headline = (
        f"{summary['folder']}: {summary['tokens']} tokens, {summary['documents']} documents, {summary['shards']} "
        f"shards ({summary['dtype']}) from {summary['source_table']} v{summary['source_version']}; tokenizer "
        f"{summary['tokenizer']} (vocab {summary['vocab_size']}, EOS {summary['eos']['token']!r})"
    )
    console.print(Text(for_terminal(headline)))
    for key in ("splits", "by_source", "by_lang"):
        print_table(
            console,
            (key.removeprefix("by_"), "documents", "tokens"),
            [(name, counts["documents"], counts["tokens"]) for name, counts in summary[key].items()],
            title=key.replace("_", " "),
            right=("documents", "tokens"),
        )


@shards_app.command("show")
def show_cmd(
    folder: str = typer.Argument(..., help="Shard set folder or URL."),
    doc: str = typer.Option(..., "--doc", help="doc_id to show."),
    tokenizer: Path | None = typer.Option(None, "--tokenizer"),
    source: bool = typer.Option(True, "--source/--no-source", help="its row in the source table version"),
    lake: str | None = typer.Option(None, "--lake", help="the lake of the source table, if it has moved"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A document's decoded text with its shard, token span, provenance and source row."""
    from training.shards.format import Manifest, ShardError
    from training.shards.inspect import show
    from training.shards.verify import SourceTable

    try:
        found = show(folder, doc, tokenizer)
    except KeyError as exc:  # str() of a KeyError is the repr of its message: escaped twice
        fail(str(exc.args[0]) if exc.args else str(exc), 1)
    except (OSError, ValueError, ShardError) as exc:  # ValueError: --tokenizer is not one
        fail(str(exc), 1)
    if source:
        try:
            found["source_row"] = SourceTable(Manifest.load(folder), lake).provenance([doc]).get(doc)
        except (OSError, ValueError, LookupError) as exc:  # LookupError: no such table version in the lake
            fail(f"{exc} (--no-source skips the source table; --lake names where it is now)", 1)
    if as_json:
        print_json(found)
        return
    text = found.pop("text")
    for key, value in found.items():
        if isinstance(value, dict):  # the source row: one `column=value` list, as `refinery trace` prints it
            value = ", ".join(f"{k}={v}" for k, v in value.items() if v is not None)
        console.print(Text(f"{key}: ", style="bold") + Text(for_terminal(str(value))))
    console.rule()
    console.print(Text(for_terminal(text, keep_newlines=True)))
