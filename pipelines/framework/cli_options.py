"""What every refinery command line shares: the `--lake` and `--master` options and the error exit.

They live in the framework, not in jobs/, because area CLIs (training's `shards`,
`tokenizer`) need them too and areas never import jobs/ (docs/architecture.md, "Rooms and what
each may import").
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from pipelines.framework.master_url import check_master_url
from pipelines.framework.storage import Location
from pipelines.framework.storage_settings import StorageError, scrub
from pipelines.framework.storage_urls import HTTP_SCHEMES, OBJECT_SCHEMES, SCHEME_ALIASES, lake_url_problem
from pipelines.framework.terminal_text import for_terminal

LAKE_ENV = "REFINERY_LAKE"
DEFAULT_LAKE = "lake"
LakeOption = typer.Option(
    None,
    "--lake",
    help=f"Lake root: a folder or a URL such as s3://bucket/lake (default: ${LAKE_ENV} or ./{DEFAULT_LAKE}).",
)

_stderr = Console(stderr=True)
# A URL that a `Path` option has read: pathlib folds its `//` into `/` (`s3:/bucket/key`).
URL_AS_PATH = re.compile(
    "^(?:" + "|".join(sorted({*OBJECT_SCHEMES, *SCHEME_ALIASES, *HTTP_SCHEMES, "file"})) + "):/",
    re.IGNORECASE,
)


def lake_root(lake: str | os.PathLike[str] | None) -> Location:
    """The lake a command works on: `--lake`, else the environment's, else ./lake, so that a
    shell that exported the variable once needs no option on every command.

    A URL's storage settings come from the standard environment variables (AWS_ENDPOINT_URL ...),
    as in a spec without a `storage:` block."""
    given = lake or os.environ.get(LAKE_ENV, DEFAULT_LAKE)
    try:
        root = Location.parse(given)
    except StorageError as exc:  # a URL without a bucket, an unknown scheme: say what to write
        fail(str(exc))
    if problem := lake_url_problem(root.url):  # a query: said before any listing can echo it
        fail(problem)
    if root.is_local and Path(root.fs_path).is_file():
        fail(f"{root.fs_path} is a file, not a lake folder (--lake or {LAKE_ENV})")
    return root


def _plain_run_id(value: str | None) -> str | None:
    from pipelines.framework.runrecord import check_run_id

    try:
        return None if value is None else check_run_id(value)
    except ValueError as exc:
        raise typer.BadParameter(for_terminal(str(exc))) from None


RunIdOption = typer.Option(None, "--run-id", help="Run id (default: generated).", callback=_plain_run_id)


def _master_url(value: str) -> str:
    try:
        return check_master_url(value)
    except ValueError as exc:
        raise typer.BadParameter(for_terminal(str(exc))) from None


LocalMasterOption = typer.Option(
    "local[*]", "--master", help="Spark master (local[*], spark://HOST:PORT ...).", callback=_master_url
)


JsonOption = typer.Option(False, "--json", help="Print JSON (complete and machine-readable) instead.")


def reachable(lake: str | None) -> Location:
    """The command's lake. One on object storage must answer first, so that a wrong endpoint or bucket
    is one line naming the URL and what to set, never a traceback or an empty listing. Exit 1, as
    for every storage failure (`refinery run`, `shards`, `doctor`); 2 stays for a URL that is wrong
    as written, which `lake_root` refuses."""
    root = lake_root(lake)
    try:
        root.require_reachable()
    except OSError as exc:
        fail(str(exc), 1)
    return root


def print_json(payload: object) -> None:
    """`payload` as indented JSON on stdout; ASCII-only, so a corpus value's control or bidi character
    reaches the terminal as a `\\u` escape, never as itself."""
    print(json.dumps(payload, indent=2, default=str, ensure_ascii=True))


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` on stderr and exit with `code` (2: bad usage or input, 1: a failure).

    The message may quote corpus text, paths or log lines, so it is escaped for the terminal, and
    an exception's text may quote a storage client's request, so credential values are scrubbed.
    """
    text = for_terminal(scrub(message), keep_newlines=True)
    _stderr.print(Text("error: ", style="bold red") + Text(text))
    raise typer.Exit(code)


def output_file(path: Path, what: str, param: str) -> Path:
    """A file a command is about to write, checked before any work: not a folder, and its folder exists
    or can be made (a path under a plain file used to end hours later in a FileExistsError traceback).

    Not a URL: a `Path` option turns `s3://bucket/x` into `s3:/bucket/x`, which was written as a
    local folder `s3:` with exit 0, so a command whose writer takes local paths only says so."""
    if URL_AS_PATH.match(path.as_posix()):
        raise typer.BadParameter(
            f"{path.as_posix().replace(':/', '://', 1)}: this command writes a local file only; "
            f"name a path, e.g. ./{path.name}",
            param_hint=param,
        )
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a folder; name the {what} to write", param_hint=param)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot write {path}: {exc.strerror or exc} (a part of its folder is a file?)", param_hint=param
        ) from None
    return path
