"""Job specs: YAML files naming the lake, the dataset, Spark settings and the stages to run.

Validation happens before Spark starts, and every error names the file and the
field (`stages[3] (minhash_dedup).params.threshold: ...`) so a user can fix a spec
without reading a traceback.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.framework.master_url import check_master_url
from pipelines.framework.registry import stage_class
from pipelines.framework.stage import Stage
from pipelines.framework.storage import Location
from pipelines.framework.storage_settings import StorageError, StorageSettings
from pipelines.framework.storage_urls import lake_url_problem
from pipelines.framework.validation import field_path

MAX_NAME_BYTES = 100


def plain_name(value: str) -> str:
    """A job or input name, which becomes part of table paths and run ids: letters, digits, '-', '_', '.'."""
    if not value or not all(c.isalnum() or c in "-_." for c in value):
        raise ValueError("use letters, digits, '-', '_' and '.' only")
    if len(value.encode()) > MAX_NAME_BYTES:  # a run id is the job's name and 23 more characters
        raise ValueError(f"at most {MAX_NAME_BYTES} bytes (it names folders and run ids)")
    return value


class SpecError(ValueError):
    """A job spec that cannot run; the message names the file and field."""


class SparkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    master: str | None = None
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("master")
    @classmethod
    def _master(cls, value: str | None) -> str | None:
        return None if value is None else check_master_url(value)


class StageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str
    id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    # A folder or a URL (s3://bucket/prefix, gs://, az://, file://); `storage` says how to reach it.
    lake: str = "lake"
    dataset: str | None = None
    storage: StorageSettings = Field(default_factory=StorageSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    stages: list[StageSpec]

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        return plain_name(value)

    @field_validator("lake")
    @classmethod
    def _lake_url(cls, value: str) -> str:
        """A URL with no bucket, an unknown scheme or a query (which delta-rs would drop) fails with the
        spec, naming `lake`."""
        try:
            root = Location.parse(value)
        except StorageError as exc:
            raise ValueError(str(exc)) from None
        if problem := lake_url_problem(root.url):
            raise ValueError(problem)
        return value

    @property
    def dataset_name(self) -> str:
        return self.dataset or self.name

    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[
            :16
        ]


def _format_errors(source: str, exc: ValidationError, prefix: str = "") -> str:
    return "\n".join(
        f"{source}: {field_path(err['loc'], prefix) or '<root>'}: {err['msg']}" for err in exc.errors()
    )


def parse_spec(data: Any, source: str = "<spec>") -> tuple[JobSpec, list[tuple[str, Stage]]]:
    """Validate a spec mapping and build its stages (with ids unique within the job)."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a job spec must be a YAML mapping with `name` and `stages`")
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_errors(source, exc)) from None
    stages: list[tuple[str, Stage]] = []
    seen: set[str] = set()
    for index, entry in enumerate(spec.stages):
        try:
            cls = stage_class(entry.stage)
        except KeyError as exc:
            raise SpecError(f"{source}: stages[{index}].stage: {exc.args[0]}") from None
        where = f"stages[{index}] ({cls.name})"
        try:
            config = cls.Config.model_validate(entry.params)
        except ValidationError as exc:
            raise SpecError(_format_errors(source, exc, prefix=f"{where}.params.")) from None
        stage_id = entry.id or entry.stage
        if stage_id in seen:
            raise SpecError(
                f"{source}: {where}.id: duplicate stage id {stage_id!r}; give each repeated stage an `id`"
            )
        seen.add(stage_id)
        stages.append((stage_id, cls(config)))
    return spec, stages


def load_spec(path: str | Path) -> tuple[JobSpec, list[tuple[str, Stage]]]:
    """Read and validate a YAML job spec file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such job spec file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start}); save the spec as UTF-8") from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an integer of more digits than Python reads
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{path}: nested deeper than a job spec can be") from None
    try:
        return parse_spec(data, str(path))
    except RecursionError:
        raise SpecError(f"{path}: nested deeper than a job spec can be") from None
