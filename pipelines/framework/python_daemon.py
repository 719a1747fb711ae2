"""Spark's Python daemon, started with PySpark imported from the installed package when it can be.

Spark puts `$SPARK_HOME/python/lib/pyspark.zip` (and py4j's zip) first on every Python
worker's path. Two costs follow, both measured on the dedup benchmark (py-spy): the
daemon compiles PySpark from the zip's sources at every start (no cached bytecode in
a zip), about 0.3 s; and before every task `pyspark.worker_util.setup_spark_files`
calls `importlib.invalidate_caches()`, which on Python 3.11 makes each zipimporter
(one per PySpark subpackage imported) re-read the zip's 1,220-entry directory. With
the spark-core jar below, the two cost about 45 ms of every Python task (120 empty
tasks on local[2]: 6.4-7.1 s before, 3.8-4.0 s after; BENCHMARKS.md).

Spark also adds the spark-core jar, which holds no Python, so every task re-reads its
5,261-entry directory for nothing.

When the zips' files are installed as a regular package (a pip-installed PySpark
ships both), this daemon drops the zips from `sys.path` before anything imports
PySpark, drops archives that hold no Python module, then runs PySpark's own daemon
unchanged. A zip whose package is missing elsewhere, or differs (another version),
stays. It must not import PySpark or anything that does before `_trim_path` has run.
`get_spark` selects it with `spark.python.daemon.module`.
"""

from __future__ import annotations

import importlib.machinery
import runpy
import sys
import zipfile
from pathlib import Path

# The packages Spark ships as zips, each with a file whose bytes identify its version.
BUNDLED = {"pyspark": "version.py", "py4j": "version.py"}


def _archive_names(entry: str) -> set[str] | None:
    """The member names of `entry` when it is a zip or jar file; None for anything else."""
    if not entry.endswith((".zip", ".jar", ".egg")) or not Path(entry).is_file():
        return None
    try:
        with zipfile.ZipFile(entry) as archive:
            return set(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return None


def _bundled_package(entry: str, names: set[str]) -> tuple[str, bytes] | None:
    """(package, its version file's bytes) when the archive `entry` holds one of BUNDLED."""
    for package, marker in BUNDLED.items():
        if f"{package}/{marker}" in names:
            with zipfile.ZipFile(entry) as archive:
                return package, archive.read(f"{package}/{marker}")
    return None


def _installed_marker(package: str, path: list[str]) -> bytes | None:
    """The version file's bytes of `package` as found on `path` (a regular folder), if any."""
    spec = importlib.machinery.PathFinder.find_spec(package, path)
    if spec is None or not spec.submodule_search_locations:
        return None
    marker = Path(next(iter(spec.submodule_search_locations))) / BUNDLED[package]
    try:
        return marker.read_bytes()
    except OSError:
        return None


def needless_entries(path: list[str]) -> list[str]:
    """The archives on `path` that import nothing the rest of `path` lacks.

    That is, archives without a Python module, and bundled zips whose identical
    package (same version file) is installed in a folder elsewhere on `path`.
    """
    archives = {entry: names for entry in path if (names := _archive_names(entry)) is not None}
    folders = [entry for entry in path if entry not in archives]
    needless = []
    for entry, names in archives.items():
        if not any(name.endswith((".py", ".pyc")) for name in names):
            needless.append(entry)
        elif (bundled := _bundled_package(entry, names)) is not None:
            package, marker = bundled
            if _installed_marker(package, folders) == marker:
                needless.append(entry)
    return needless


def _trim_path() -> None:
    drop = set(needless_entries(sys.path))
    sys.path[:] = [entry for entry in sys.path if entry not in drop]
    inside = [
        key for key in sys.path_importer_cache if any(key == e or key.startswith(e + "/") for e in drop)
    ]
    for key in inside:
        del sys.path_importer_cache[key]


if __name__ == "__main__":
    _trim_path()
    # sys.argv (the worker module Spark asks for) passes through to PySpark's daemon unchanged.
    runpy.run_module("pyspark.daemon", run_name="__main__", alter_sys=True)
