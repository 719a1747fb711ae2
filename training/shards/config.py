"""The `shards` stage's configuration (pydantic, no Spark) and where its tokenizer and folder resolve."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator

from pipelines.framework.stage import StageConfig
from pipelines.framework.storage import Location
from training.shards.format import MixtureWeights
from training.tokenizer.encoders import EncoderChoice

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TOKENIZER = "samples/tokenizer.json"


class ShardsConfig(StageConfig):
    input: str = Field("curated", description="dataset table to tokenize (kept rows only)")
    name: str = Field("default", description="shard set name: the folder is <lake>/shards/<name> by default")
    output_dir: str | None = Field(
        None, description="shard folder or URL (s3://...); relative paths resolve under the lake root"
    )
    tokenizer: str = Field(
        DEFAULT_TOKENIZER, description="HF tokenizer.json; relative paths try cwd, then the repo"
    )
    eos_token: str | None = Field(
        None, description="EOS token; default: the first common EOS name in the vocab"
    )
    shard_tokens: int = Field(
        1 << 22, gt=0, description="a shard is closed once it holds at least this many tokens"
    )
    validation_fraction: float = Field(0.01, ge=0.0, le=1.0)
    split_seed: int = 0
    batch_size: int = Field(512, gt=0, description="documents per encoder call")
    encoder: EncoderChoice = Field(
        "auto",
        description="auto: tokie if it reproduces HF tokenizers on the check set, else HF; tokie: that or fail; hf",
    )
    check_docs: int = Field(
        256, ge=0, description="kept documents of the input (from its first files) in the encoder check set"
    )
    text_column: str = "text"
    id_column: str = "doc_id"
    lang_column: str = "lang"
    quality_column: str = "quality_score"
    mixture_weights: MixtureWeights = Field(
        default_factory=dict, description="mixture the table was built with (recorded in the manifest)"
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not value or "/" in value or value.startswith("."):
            raise ValueError("name must be a plain folder name (no '/', not hidden)")
        return value


def resolve_tokenizer_path(path: str) -> Path:
    """A relative tokenizer path is tried against the working directory, then the repository root."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve()
    return (REPO / candidate).resolve()


def output_folder(lake_root: str | os.PathLike[str] | Location, config: ShardsConfig) -> Location:
    """Where the set goes: `<lake>/shards/<name>`, or `output_dir` (a URL, an absolute path, or a path
    relative to the lake root, which may itself be on object storage)."""
    fixed = fixed_output_folder(config)
    if fixed is not None:
        return fixed
    root = Location.parse(lake_root)
    if config.output_dir is None:
        return root / "shards" / config.name
    return root / config.output_dir


def fixed_output_folder(config: ShardsConfig) -> Location | None:
    """`output_dir` when it names a place of its own (a URL or an absolute path), so that it can be
    checked before the job runs; None when the folder lies under the lake."""
    if config.output_dir is None:
        return None
    if "://" in config.output_dir or Path(config.output_dir).expanduser().is_absolute():
        return Location.parse(config.output_dir)
    return None


def require_output_folder(folder: Location) -> None:
    """The shard folder exists or can be made and written (the I/O layer's lake check), refused in
    one line naming `output_dir`: found only when the manifest is read or written, it would cost the
    stages before it and end in a bare OSError."""
    try:
        folder.require_writable()
    except OSError as exc:  # StorageError; on disk, the OSError behind it says what is wrong
        cause = exc.__context__ if isinstance(exc.__context__, OSError) else exc
        raise ValueError(
            f"output_dir: cannot write the shard folder {folder} ({cause.strerror or cause}); set "
            "output_dir to a folder you can write, or leave it out for <lake>/shards/<name>"
        ) from None
