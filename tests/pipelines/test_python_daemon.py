"""The Python workers' daemon trims Spark's bundled archives only where the same code is installed."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pyspark
import pytest

from pipelines.framework.python_daemon import needless_entries
from pipelines.framework.spark import session_conf

PYSPARK_HOME = Path(pyspark.__file__).parent
SITE_PACKAGES = str(PYSPARK_HOME.parent)


def _bundled(name: str) -> str:
    found = sorted((PYSPARK_HOME / "python" / "lib").glob(name))
    if not found:
        pytest.skip(f"this PySpark ships no {name} under {PYSPARK_HOME / 'python' / 'lib'}")
    return str(found[0])


def _spark_core_jar() -> str:
    found = sorted((PYSPARK_HOME / "jars").glob("spark-core_*.jar"))
    if not found:
        pytest.skip(f"no spark-core jar under {PYSPARK_HOME / 'jars'}")
    return str(found[0])


def _zip(path: Path, files: dict[str, str]) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return str(path)


def test_the_path_spark_gives_a_worker_loses_its_zips_and_jar_when_pyspark_is_installed() -> None:
    pyspark_zip, py4j_zip, jar = _bundled("pyspark.zip"), _bundled("py4j-*.zip"), _spark_core_jar()
    path = [pyspark_zip, py4j_zip, jar, SITE_PACKAGES]
    assert sorted(needless_entries(path)) == sorted([pyspark_zip, py4j_zip, jar])


def test_a_bundled_zip_stays_when_its_package_is_installed_nowhere_else() -> None:
    pyspark_zip = _bundled("pyspark.zip")
    assert needless_entries([pyspark_zip, str(Path(sys.executable).parent)]) == []


def test_a_zip_of_another_pyspark_version_stays(tmp_path: Path) -> None:
    other = _zip(
        tmp_path / "pyspark.zip",
        {"pyspark/__init__.py": "", "pyspark/version.py": '__version__: str = "0.0.1"\n'},
    )
    assert needless_entries([other, SITE_PACKAGES]) == []


def test_an_archive_with_python_modules_that_are_not_bundled_stays(tmp_path: Path) -> None:
    user_code = _zip(tmp_path / "deps.zip", {"helpers/__init__.py": "VALUE = 1\n"})
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    assert needless_entries([user_code, str(broken), SITE_PACKAGES]) == []


@pytest.fixture()
def no_outside_java_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment that gives the JVM no options of its own; returns an empty SPARK_CONF_DIR."""
    for name in ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "PYSPARK_SUBMIT_ARGS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    return tmp_path


def test_local_sessions_get_the_daemon_and_the_throughput_collector_and_a_users_options_win(
    no_outside_java_options: Path,
) -> None:
    local = session_conf("local[2]", None, ui=False)
    assert local["spark.python.daemon.module"] == "pipelines.framework.python_daemon"
    options = local["spark.driver.extraJavaOptions"]
    assert options.startswith("-XX:+UseParallelGC ") and "-Dlog4j2.configurationFile=file:/" in options
    mine = session_conf("local[2]", {"spark.driver.extraJavaOptions": "-XX:+UseG1GC"}, ui=False)
    assert mine["spark.driver.extraJavaOptions"] == "-XX:+UseG1GC"
    cluster = session_conf("spark://127.0.0.1:7077", None, ui=False)
    assert "spark.python.daemon.module" not in cluster
    assert "spark.driver.extraJavaOptions" not in cluster


def test_the_collector_stays_out_when_jvm_options_come_from_elsewhere(
    no_outside_java_options: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_outside_java_options / "spark-defaults.conf").write_text(
        "spark.driver.memory 2g\nspark.driver.extraJavaOptions -XX:+UseG1GC -Dx=1\n"
    )
    local = session_conf("local[2]", None, ui=False)
    assert "spark.driver.extraJavaOptions" not in local
    assert local["spark.python.daemon.module"] == "pipelines.framework.python_daemon"
    (no_outside_java_options / "spark-defaults.conf").write_text("spark.driver.memory 2g\n")
    assert "spark.driver.extraJavaOptions" in session_conf("local[2]", None, ui=False)
    # two collectors stop the JVM from starting: one set in the environment keeps ours out
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-XX:+UseSerialGC")
    assert "spark.driver.extraJavaOptions" not in session_conf("local[2]", None, ui=False)
    monkeypatch.delenv("JAVA_TOOL_OPTIONS")
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", '--driver-java-options "-XX:+UseG1GC" pyspark-shell')
    assert "spark.driver.extraJavaOptions" not in session_conf("local[2]", None, ui=False)


def test_a_python_task_imports_pyspark_from_the_installed_package_and_reads_no_archive(spark) -> None:
    def probe(_):
        import importlib
        import sys
        import zipimport

        import pyspark as worker_pyspark

        importlib.invalidate_caches()
        archives = [k for k, v in sys.path_importer_cache.items() if isinstance(v, zipimport.zipimporter)]
        return [(worker_pyspark.__file__, archives)]

    [(location, archives)] = spark.sparkContext.parallelize([0], 1).mapPartitions(probe).collect()
    assert ".zip" not in location and Path(location).parent == PYSPARK_HOME
    assert archives == []


def test_the_local_jvm_runs_the_parallel_collector(spark) -> None:
    beans = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    assert {bean.getName() for bean in beans} == {"PS Scavenge", "PS MarkSweep"}
