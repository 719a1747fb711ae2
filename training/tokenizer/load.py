"""Tokenizers: load any HF `tokenizer.json`, find its EOS, describe it for the manifest, save it.

Training one from a lake table is training.tokenizer.build; this module is what encoding
needs, so the shard encoders (and through them the trainer's side) import nothing more.

Encoding for shards never adds special tokens: the shard writer appends the EOS
id itself, so a tokenizer whose post-processor already adds one cannot double it.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from pipelines.framework.storage_settings import StorageError
from training.shards.format import dtype_for_vocab, sha256_file

DEFAULT_EOS = "<|endoftext|>"
EOS_CANDIDATES = (DEFAULT_EOS, "</s>", "<eos>", "[EOS]", "<|end_of_text|>", "<|im_end|>")

_CACHE: dict[str, Tokenizer] = {}


@dataclass(frozen=True)
class TokenizerInfo:
    """What the shard manifest records about a tokenizer."""

    path: str
    sha256: str
    vocab_size: int
    eos_token: str
    eos_id: int

    @property
    def dtype(self) -> str:
        return dtype_for_vocab(self.vocab_size)


def tokenizer_from_json(payload: str) -> Tokenizer:
    """A Tokenizer built from its JSON text, cached per worker by content hash.

    Stages ship the JSON text to executors (it is small) instead of a path, so a
    cluster needs no shared file system for the tokenizer.
    """
    key = hashlib.sha256(payload.encode()).hexdigest()
    if key not in _CACHE:
        _CACHE[key] = Tokenizer.from_str(payload)
    return _CACHE[key]


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a tokenizer.json with an error that says what to do when it is missing or invalid.

    A folder, a device or a FIFO is named as such (reading /dev/zero never ends, a FIFO blocks);
    all are FileNotFoundError, so every caller's handling of a missing tokenizer covers them.
    """
    hint = "train one with `refinery tokenizer train` or point the config at any HF tokenizer.json"
    if str(path) == "":
        raise FileNotFoundError(f"the tokenizer path is empty; {hint}")
    file = Path(path)
    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"tokenizer file {file} does not exist; {hint}") from None
    if stat.S_ISDIR(mode):
        raise FileNotFoundError(f"tokenizer path {file} is a folder, not a tokenizer.json; {hint}")
    if not stat.S_ISREG(mode):
        raise FileNotFoundError(f"tokenizer path {file} is not a regular file (a device or a pipe?); {hint}")
    try:
        return tokenizer_from_json(file.read_text(encoding="utf-8"))
    except Exception as exc:
        raise ValueError(f"{file} is not a valid HF tokenizers tokenizer.json: {exc}") from exc


def resolve_eos(tokenizer: Tokenizer, eos_token: str | None = None) -> tuple[str, int]:
    """The EOS token and id: the one asked for, else the first common EOS name the vocabulary holds."""
    candidates = (eos_token,) if eos_token else EOS_CANDIDATES
    for token in candidates:
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token, token_id
    raise ValueError(
        f"the tokenizer has no EOS token among {list(candidates)}; set `eos_token` to one of its special tokens"
    )


def describe(path: str | Path, eos_token: str | None = None) -> TokenizerInfo:
    """Hash, vocabulary size and EOS of a tokenizer file."""
    tokenizer = load_tokenizer(path)
    token, token_id = resolve_eos(tokenizer, eos_token)
    return TokenizerInfo(
        path=str(Path(path).resolve()),
        sha256=sha256_file(path),
        vocab_size=tokenizer.get_vocab_size(with_added_tokens=True),
        eos_token=token,
        eos_id=token_id,
    )


def save_tokenizer(tokenizer: Tokenizer, output: str | Path) -> Path:
    """Save as tokenizer.json (one line of JSON, deterministic key order from the library).

    Written to a temp file beside the target and renamed, so a reader never sees half a file. A
    failure is a StorageError naming the file: the library's own says only "No such file or
    directory (os error 2)", and the `refinery` entry point prints a StorageError as one line.
    """
    path = Path(output)
    check_writable(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tokenizer.save(str(tmp))
        os.replace(tmp, path)
    except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception for its I/O errors
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write tokenizer {path}: {exc}") from None
    return path


def check_writable(path: Path) -> None:
    """Make `path`'s folder and prove a file can be created in it (a probe file, removed at once).

    Call it before long work that ends by writing `path` (training a tokenizer), so an unwritable
    target fails in a second instead of after the work; a StorageError names `path` and why.
    """
    if path.is_dir():
        raise StorageError(f"cannot write tokenizer {path}: it is a folder; name the tokenizer.json to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".probe")
    except OSError as exc:
        raise StorageError(
            f"cannot write tokenizer {path}: {path.parent} is not a folder that takes new files "
            f"({exc.strerror or exc}); choose another output"
        ) from None
    os.close(fd)
    os.unlink(probe)
