"""`refinery submit`: run a job spec on a Spark cluster (standalone, YARN, Kubernetes).

What travels to the cluster:
  * the project's code, always, as a zip of its packages for `--py-files` (small,
    rebuilt per run, so a submitted run uses exactly the code it was submitted with);
  * optionally the Python environment, as a packed virtual environment for
    `--archives` (`--venv DIR` packs one; `--archive FILE` takes a venv-pack or
    conda-pack archive). Use it when workers lack the dependencies; skip it when
    they already have them (a shared image or NFS venv): it is large.

The driver entry point is `jobs/driver.py`; it continues the run record this module
writes (status queued) under the same run id. spark-submit is started through a
tiny shell wrapper in its own session: the process group can be stopped as a whole
by `refinery cancel`, and the wrapper records spark-submit's exit status even when
nobody waits for it (`--detach`).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from jobs.cluster import http_json, spark_home
from jobs.registry import EXIT_FILE, LOG_FILE, SubmitInfo, refresh, run_dir, submit_folder
from pipelines.framework.codeversion import PACKAGES, code_version
from pipelines.framework.lake import Lake
from pipelines.framework.master_url import check_master_url
from pipelines.framework.runrecord import RunRecord, new_run_id
from pipelines.framework.spark import LOG4J_CONFIG
from pipelines.framework.spec import JobSpec, load_spec
from pipelines.framework.stage import Stage
from pipelines.framework.storage import Location

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENV_ALIAS = "environment"
ENV_PYTHON = f"./{ENV_ALIAS}/bin/python"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SKIP_PARTS = ("__pycache__", ".pytest_cache", ".ruff_cache")
FIXED_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


class SubmitError(ValueError):
    """A submission that cannot start; the message says which option to change."""


class SubmitOptions(BaseModel):
    """Where and how to run; CLI flags map one to one onto these fields."""

    model_config = ConfigDict(extra="forbid")

    master: str
    deploy_mode: Literal["client", "cluster"] = "client"
    conf: dict[str, str] = {}
    driver_memory: str | None = None
    executor_memory: str | None = None
    executor_cores: int | None = None
    total_executor_cores: int | None = None
    num_executors: int | None = None
    venv: Path | None = None
    archive: Path | None = None
    worker_python: str | None = None
    master_ui: str | None = None
    env_cache: Path | None = None

    @field_validator("master")
    @classmethod
    def _master_url(cls, value: str) -> str:
        """A master spark-submit can reach, checked here: a bad one would fail later, in the background."""
        return check_master_url(value)  # local[*] is parsed, then refused with advice below

    @field_validator("archive")
    @classmethod
    def _environment_archive(cls, value: Path | None) -> Path | None:
        """An archive Spark unpacks into an environment with bin/python: a wrong file would be copied
        to the executors as it is, and every Python task would then fail there, far from this command."""
        if value is not None:
            check_environment_archive(value)
        return value

    @model_validator(mode="after")
    def _coherent(self) -> SubmitOptions:
        if self.deploy_mode == "cluster" and self.master.startswith("spark://"):
            raise ValueError(
                "deploy_mode: Spark standalone does not run Python applications in cluster deploy mode; "
                "use --deploy-mode client (the driver runs here, executors on the cluster)"
            )
        if self.venv and self.archive:
            raise ValueError(
                "venv: give either --venv (packed for you) or --archive (already packed), not both"
            )
        if self.master.startswith("local"):
            raise ValueError("master: use `refinery run` for local[*]; submit is for cluster masters")
        return self

    @property
    def env_archive_given(self) -> bool:
        return self.venv is not None or self.archive is not None


# ----------------------------------------------------------------- packaging
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


def check_environment_archive(path: Path) -> None:
    """ValueError unless `path` is a tar or zip archive (by name and content) holding bin/python at its root."""
    if not path.is_file():
        raise ValueError(f"{path} is not a file; give a venv-pack or conda-pack archive, or --venv DIR")
    if not path.name.endswith(ARCHIVE_SUFFIXES):
        raise ValueError(f"{path}: Spark unpacks only {', '.join(ARCHIVE_SUFFIXES)} archives")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                found = any(_is_env_python(n) for n in archive.namelist())
        else:
            with tarfile.open(path) as archive:
                found = any(_is_env_python(m.name) for m in archive)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable tar or zip archive ({exc})") from None
    if not found:
        raise ValueError(
            f"{path} holds no bin/python at its root: pack a virtual environment with venv-pack "
            "(or conda-pack), or pass --venv DIR to have it packed"
        )


def _is_env_python(name: str) -> bool:
    return name.removeprefix("./") in ("bin/python", "bin/python3")


def stage_packages(stages: list[tuple[str, Stage]]) -> list[str]:
    """Top-level packages to ship: the project's own plus any project folder a stage import path names."""
    names = list(PACKAGES)
    for _, stage in stages:
        top = type(stage).__module__.split(".")[0]
        if top not in names and (PROJECT_ROOT / top / "__init__.py").is_file():
            names.append(top)
    return names


def package_code(dest: Path, packages: list[str], root: Path = PROJECT_ROOT) -> Path:
    """Zip the packages' files (no caches) with fixed timestamps, so equal code gives an equal zip."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in packages:
            for path in sorted((root / package).rglob("*")):
                rel = path.relative_to(root)
                if path.is_file() and not any(p in SKIP_PARTS for p in rel.parts) and path.suffix != ".pyc":
                    info = zipfile.ZipInfo(rel.as_posix(), FIXED_ZIP_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, path.read_bytes())
    os.replace(tmp, dest)
    return dest


def _venv_key(venv: Path) -> str:
    """Identity of a venv's contents: its interpreter config and installed distributions."""
    digest = hashlib.sha256(str(venv.resolve()).encode())
    digest.update((venv / "pyvenv.cfg").read_bytes())
    for dist in sorted(venv.glob("lib/python*/site-packages/*.dist-info")):
        digest.update(dist.name.encode())
    return digest.hexdigest()[:16]


def pack_venv(venv: Path, cache: Path) -> Path:
    """Pack a virtual environment as a tar.gz for `--archives ...#environment`, reused while unchanged.

    Symlinks stay symlinks: a venv's `bin/python` points at its base interpreter, so
    workers need that interpreter at the same path (the same image, or a relocatable
    python such as python-build-standalone used as the venv's base). Executors run
    `./environment/bin/python`; site-packages come from the archive.
    """
    venv = Path(venv)
    if not (venv / "pyvenv.cfg").is_file():
        raise SubmitError(f"--venv {venv}: not a virtual environment (no pyvenv.cfg)")
    cache.mkdir(parents=True, exist_ok=True)
    dest = cache / f"{venv.resolve().name}-{_venv_key(venv)}.tar.gz"
    if dest.is_file():
        return dest
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")

    def keep(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(member.name).parts
        return None if any(p in SKIP_PARTS for p in parts) or member.name.endswith(".pyc") else member

    with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:
        for child in sorted(venv.iterdir()):
            tar.add(child, arcname=child.name, filter=keep)
    os.replace(tmp, dest)
    return dest


# ------------------------------------------------------------------ commands
def default_master_ui(master: str) -> str | None:
    """Spark's default master web UI address for a standalone master (port 8080)."""
    if not master.startswith("spark://"):
        return None
    host = urlparse(master).hostname
    return f"http://{host}:8080" if host else None


def k8s_driver_pod(run_id: str) -> str:
    """A valid, predictable driver pod name, so that cancel can `spark-submit --kill` it."""
    return re.sub(r"[^a-z0-9-]", "-", f"refinery-{run_id}".lower())[:63].rstrip("-")


def spark_conf(record: RunRecord, opts: SubmitOptions) -> dict[str, str]:
    """Settings passed with --conf; explicit `opts.conf` entries win over the derived ones."""
    conf: dict[str, str] = {
        "spark.pyspark.python": ENV_PYTHON if opts.env_archive_given else opts.worker_python or sys.executable
    }
    if opts.deploy_mode == "client":
        conf["spark.pyspark.driver.python"] = sys.executable
    elif opts.env_archive_given:
        conf["spark.pyspark.driver.python"] = ENV_PYTHON
    sized = {
        "spark.driver.memory": opts.driver_memory,
        "spark.executor.memory": opts.executor_memory,
        "spark.executor.cores": opts.executor_cores,
        "spark.cores.max": opts.total_executor_cores,
        "spark.executor.instances": opts.num_executors,
    }
    conf.update({k: str(v) for k, v in sized.items() if v is not None})
    if opts.master.startswith("k8s://") and opts.deploy_mode == "cluster":
        conf["spark.kubernetes.driver.pod.name"] = k8s_driver_pod(record.run_id)
    conf.update(opts.conf)
    return conf


def build_command(record: RunRecord, opts: SubmitOptions, code_zip: Path, env: Path | None) -> list[str]:
    """The spark-submit command line for this run."""
    import jobs.driver

    command = [
        str(spark_home() / "bin" / "spark-submit"),
        "--master",
        opts.master,
        "--deploy-mode",
        opts.deploy_mode,
        "--name",
        f"refinery:{record.job}:{record.run_id}",
        "--py-files",
        str(code_zip),
    ]
    if env is not None:
        command += ["--archives", f"{env}#{ENV_ALIAS}"]
    for key, value in spark_conf(record, opts).items():
        command += ["--conf", f"{key}={value}"]
    return [*command, jobs.driver.__file__, "--lake", record.lake, "--run-id", record.run_id]


def _submit_env(opts: SubmitOptions) -> dict[str, str]:
    """In client mode spark-submit's JVM is the driver: it logs with our log4j2.properties (the warnings
    users need, not Spark's start-up noise), set in SPARK_SUBMIT_OPTS so that JVM options the user gives
    anywhere stay and, coming later on the command line, win."""
    env = {**os.environ, "SPARK_HOME": str(spark_home())}
    if opts.deploy_mode == "client":
        ours = f'"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()}"'
        env["SPARK_SUBMIT_OPTS"] = f"{ours} {env.get('SPARK_SUBMIT_OPTS', '')}".strip()
    host = urlparse(opts.master).hostname if "://" in opts.master else None
    if host in LOOPBACK:
        env["SPARK_LOCAL_IP"] = "127.0.0.1"  # a loopback master only accepts loopback drivers
    return env


def _launch(command: list[str], folder: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start spark-submit under `sh` in a new session; the shell writes the exit status when it ends."""
    wrapper = 'rc=0; "$@" || rc=$?; echo "$rc" > "$0.tmp" && mv "$0.tmp" "$0"'
    with open(folder / LOG_FILE, "ab") as log:
        return subprocess.Popen(
            ["sh", "-c", wrapper, str(folder / EXIT_FILE), *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )


# ----------------------------------------------------------------- preflight
SPARK_DEFAULTS = {"spark.executor.memory": "1g"}  # what Spark uses when nobody sets it


def memory_mb(text: str) -> float | None:
    """A Spark size as spark.executor.memory reads it (a bare number is MiB), in MiB; None if unreadable."""
    match = re.fullmatch(r"(\d+)([kmgtp]?)(b?)", text.strip().lower())
    if match is None:
        return None
    number, unit, byte = int(match[1]), match[2], match[3]
    if byte and not unit:
        return number / 1024**2
    return number * 1024.0 ** ("kmgtp".index(unit) - 1) if unit else float(number)


def _setting(
    opts: SubmitOptions, spec_conf: Mapping[str, Any], key: str, flag: str
) -> tuple[str | None, str]:
    """(value, where to change it) of an executor size, taken in the order the driver applies them."""
    given = {"spark.executor.memory": opts.executor_memory, "spark.executor.cores": opts.executor_cores}[key]
    if key in opts.conf:
        return opts.conf[key], f"--conf {key}"
    if given is not None:
        return str(given), flag
    if key in spec_conf:
        return str(spec_conf[key]), f"the spec's spark.conf {key}"
    return SPARK_DEFAULTS.get(key), f"{flag} (Spark's default)"


def check_cluster_fits(opts: SubmitOptions, spec_conf: Mapping[str, Any], master_ui: str | None) -> None:
    """SubmitError when no alive standalone worker could host one executor: the master would keep the
    application waiting for ever and the run `running`. Asks the master's web UI; one that does not
    answer, or is another master's (the default port may serve one), skips the check: it is optional."""
    if not opts.master.startswith("spark://") or not master_ui:
        return
    try:
        state = http_json(f"{master_ui.rstrip('/')}/json/")
    except (OSError, ValueError, http.client.HTTPException):
        return
    if not isinstance(state, dict) or state.get("url") != opts.master:
        return
    alive = [w for w in state.get("workers", []) if isinstance(w, dict) and w.get("state") == "ALIVE"]
    if not alive:
        raise SubmitError(f"master {opts.master} (UI {master_ui}) has no alive worker; start workers first")
    memory, cores = (max(int(w.get(field, 0)) for w in alive) for field in ("memory", "cores"))
    limits = (
        ("spark.executor.memory", "--executor-memory", memory_mb, memory),
        ("spark.executor.cores", "--executor-cores", lambda v: int(v) if v.isdigit() else None, cores),
    )
    for key, flag, amount, most in limits:
        value, where = _setting(opts, spec_conf, key, flag)
        if value is not None and (amount(value) or 0) > most:
            raise SubmitError(
                f"{where} {value}: no alive worker of {opts.master} can host one executor "
                f"(the largest has {memory} MiB and {cores} core(s)); ask for less"
            )


# -------------------------------------------------------------------- submit
def queued_record(spec: JobSpec, spec_path: Path, opts: SubmitOptions, run_id: str | None) -> RunRecord:
    """The run's record before spark-submit starts: status queued, spec frozen in it."""
    record = RunRecord(
        run_id=run_id or new_run_id(spec.name),
        job=spec.name,
        dataset=spec.dataset_name,
        lake=str(Lake(spec.lake).root),
        spec_path=str(spec_path.resolve()),
        spec=spec.model_dump(mode="json"),
        spec_hash=spec.spec_hash(),
        code_version=code_version(),
        master=opts.master,
        deploy_mode=opts.deploy_mode,
        status="queued",
    )
    if Location.parse(record.path).exists():
        raise SubmitError(f"run id {record.run_id!r} already exists in {record.lake}; pick another --run-id")
    record.log_path = str(submit_folder(record) / LOG_FILE)
    record.save()
    return record


def submit(
    spec_path: str | Path, opts: SubmitOptions, run_id: str | None = None, wait: bool = True
) -> RunRecord:
    """Validate the spec, record the run, ship code (and env), start spark-submit; optionally wait."""
    spec_path = Path(spec_path)
    spec, stages = load_spec(spec_path)
    master_ui = opts.master_ui or default_master_ui(opts.master)
    check_cluster_fits(opts, spec.spark.conf, master_ui)
    record = queued_record(spec, spec_path, opts, run_id)
    folder = submit_folder(record)
    code_zip = package_code(folder / "code.zip", stage_packages(stages))
    env_archive = opts.archive
    if opts.venv is not None:
        env_archive = pack_venv(opts.venv, opts.env_cache or folder.parent / "_envs")
    command = build_command(record, opts, code_zip, env_archive)
    info = SubmitInfo(command=command, master=opts.master, deploy_mode=opts.deploy_mode, master_ui=master_ui)
    if opts.master.startswith("k8s://") and opts.deploy_mode == "cluster":
        namespace = opts.conf.get("spark.kubernetes.namespace", "default")
        info.k8s_driver = f"{namespace}:{k8s_driver_pod(record.run_id)}"
    proc = _launch(command, folder, _submit_env(opts))
    info.pid = proc.pid
    info.save(run_dir(record))
    if not wait:
        return record
    proc.wait()
    return refresh(record.lake, record.run_id)
