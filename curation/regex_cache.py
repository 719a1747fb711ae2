"""Compiled regular-expression programs kept on disk between processes.

Why: spaCy's French rules match tokens against one pattern of 1.45 million characters
(hyphenated and elided words), and Python's `re` spends about 2.3 s turning it into a
matching program in every process that loads French: each Spark worker of an annotate
stage pays it again. The program is a pure function of the pattern, the flags and the
regex engine, so it is computed once and reused. What is reused is exactly what `re`
would build, the same integer program handed to `_sre.compile` (which validates it
again), not an approximation.

How: inside `cached_compiles()`, `re`'s compiler is wrapped. A pattern that took at
least MIN_SECONDS to compile is written under `folder()` as a marshal file named by the
SHA-256 of the engine (Python's version and `_sre.MAGIC`), the flags and the pattern,
so a program is only ever read by the engine that wrote it. Written to a temporary name
and renamed, so a concurrent reader sees a whole file or none. Anything unexpected (a
Python whose `re` internals differ, a file that does not load) means compiling as usual.
"""

from __future__ import annotations

import _sre
import hashlib
import marshal
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    from re import _compiler, _parser
except ImportError:  # Python 3.10 names them sre_compile and sre_parse
    import sre_compile as _compiler  # type: ignore[no-redef]
    import sre_parse as _parser  # type: ignore[no-redef]

# Compiles faster than this are not worth a file (most of spaCy's patterns take ~10 ms).
MIN_SECONDS = 0.2
ENGINE = f"{sys.version}|{_sre.MAGIC}|{_sre.CODESIZE}"
_LOCK = threading.RLock()

Program = tuple[int, list[int], int, dict[str, int], tuple[str | None, ...]]


def folder() -> Path:
    """$REFINERY_CACHE_DIR/regex, else the user's cache folder (XDG), as the loader's shard cache."""
    root = os.environ.get("REFINERY_CACHE_DIR")
    if root:
        return Path(root) / "regex"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "refinery" / "regex"


def program(pattern: str, flags: int) -> Program:
    """What `re` hands `_sre.compile` for `pattern` (the steps of `re._compiler.compile`)."""
    parsed = _parser.parse(pattern, flags)
    code = _compiler._code(parsed, flags)
    groupindex = dict(parsed.state.groupdict)
    indexgroup: list[str | None] = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    # The opcodes are int subclasses (named constants), which marshal refuses: plain ints.
    return (
        int(flags | parsed.state.flags),
        [int(op) for op in code],
        parsed.state.groups - 1,
        groupindex,
        tuple(indexgroup),
    )


def build(pattern: str, prog: Program) -> Any:
    final_flags, code, groups, groupindex, indexgroup = prog
    return _sre.compile(pattern, final_flags, code, groups, groupindex, indexgroup)


def _path(pattern: str, flags: int) -> Path:
    digest = hashlib.sha256(f"{ENGINE}|{flags}|".encode() + pattern.encode("utf-8", "surrogatepass"))
    return folder() / f"{digest.hexdigest()}.marshal"


def _load(path: Path) -> Program | None:
    try:
        engine, prog = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    return prog if engine == ENGINE else None


def _store(path: Path, prog: Program) -> None:
    """Best effort: a read-only or full disk only means the next process compiles again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(marshal.dumps((ENGINE, prog)))
        os.replace(temporary, path)
    except (OSError, ValueError):
        Path(temporary).unlink(missing_ok=True)


def cached_compile(pattern: str, flags: int) -> Any:
    """`pattern` compiled by `re`, from the program on disk when a process compiled it before."""
    path = _path(pattern, flags)
    prog = _load(path)
    if prog is not None:
        try:
            return build(pattern, prog)
        except (RuntimeError, TypeError, ValueError):  # _sre refused the program: compile afresh
            pass
    start = time.perf_counter()
    prog = program(pattern, flags)
    compiled = build(pattern, prog)
    if time.perf_counter() - start >= MIN_SECONDS:
        _store(path, prog)
    return compiled


def _works() -> bool:
    """Whether this Python's `re` internals are the ones `program` and `build` reproduce."""
    import re

    probe = r"(?P<word>\w+)-(\d+)|[^\W\d]+"
    try:
        mine = build(probe, program(probe, re.IGNORECASE))
    except Exception:  # any change in the private API: stay with `re` as it is
        return False
    ref = re.compile(probe, re.IGNORECASE)
    text = "Ab-12 cd Éf-3 45"
    return (mine.flags, mine.groupindex, [m.span() for m in mine.finditer(text)]) == (
        ref.flags,
        ref.groupindex,
        [m.span() for m in ref.finditer(text)],
    )


WORKS = _works()


@contextmanager
def cached_compiles() -> Iterator[None]:
    """Within the block, string patterns compiled by `re` (on any thread) come from the disk cache."""
    if not WORKS:
        yield
        return
    with _LOCK:
        original: Callable[..., Any] = _compiler.compile

        def compile(p: Any, flags: int = 0) -> Any:
            if isinstance(p, str) and not flags & _compiler.SRE_FLAG_DEBUG:
                return cached_compile(p, flags)
            return original(p, flags)

        _compiler.compile = compile
        try:
            yield
        finally:
            _compiler.compile = original
