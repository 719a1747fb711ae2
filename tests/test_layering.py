"""The layering of docs/architecture.md ("Rooms and what each may import"), checked on every test run.

Each rule is also run on a small synthetic package holding one violation of it, so a rule that
stopped matching anything would fail here rather than pass forever.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.import_graph import (
    ANNOTATOR_FILES,
    AREAS,
    CONFIG_FILES,
    KERNEL_FILES,
    TRAINING_LOOP_FILES,
    build_graph,
    cycles,
    in_packages,
    path_matches,
    violations,
)

REPO = Path(__file__).resolve().parents[1]


def repo_packages() -> list[str]:
    """The packages pyproject.toml installs (`pipelines*` -> `pipelines`), so a new one is covered."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({pattern.rstrip("*").split(".")[0] for pattern in include})


GRAPH = build_graph(REPO, repo_packages())
# Every module a rule keeps free of pyspark: kernels, annotators, configs and the training loop.
is_spark_free = in_packages(
    AREAS, path_matches(*KERNEL_FILES, *ANNOTATOR_FILES, *CONFIG_FILES, *TRAINING_LOOP_FILES)
)
SPARK_FREE = sorted(module for module in GRAPH.paths if is_spark_free(GRAPH, module))


def test_repository_keeps_its_layers() -> None:
    found = violations(GRAPH)
    if found:
        pytest.fail("imports that break the layering:\n" + "\n".join(found), pytrace=False)


def test_repository_has_no_import_cycles() -> None:
    found = [" -> ".join(cycle) for cycle in cycles(GRAPH)]
    if found:
        pytest.fail("import cycles (module-level imports):\n" + "\n".join(found), pytrace=False)


def test_the_checks_see_the_modules_they_guard() -> None:
    """Guards the guard: the globs still match the files the rules are about."""
    assert "pii.kernel" in SPARK_FREE
    assert "pii.settings" in SPARK_FREE
    assert any(module.startswith("curation.annotators.") for module in SPARK_FREE)
    assert {"training.loader.stream", "training.trainer.model", "training.trainer.train"} <= set(SPARK_FREE)
    assert any(module.startswith("pipelines.framework.") for module in GRAPH.paths)


def probe(modules: list[str], *path: Path) -> dict:
    """Run tests/spark_free_probe.py on `modules` in a fresh interpreter with `path` importable."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (*path, REPO))}
    result = subprocess.run(
        [sys.executable, "-m", "tests.spark_free_probe", *modules],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_spark_free_modules_leaves_pyspark_unloaded() -> None:
    """What the interpreter really loads, third-party packages included (the graph stops at them)."""
    found = probe(SPARK_FREE)
    if found["loaded_by"]:
        pytest.fail(
            f"importing {found['loaded_by']} loads pyspark: {' -> '.join(found['chain'])}", pytrace=False
        )


def test_the_probe_names_the_module_that_loads_pyspark(tmp_path: Path) -> None:
    package = tmp_path / "probe_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "clean.py").write_text("import json\n", encoding="utf-8")
    (package / "kernel.py").write_text("from . import helper\n", encoding="utf-8")
    (package / "helper.py").write_text("from pyspark.sql import functions\n", encoding="utf-8")
    assert probe(["probe_pkg.clean"], tmp_path) == {"loaded_by": None}
    found = probe(["probe_pkg.clean", "probe_pkg.kernel"], tmp_path)
    assert found["loaded_by"] == "probe_pkg.kernel"
    assert found["chain"] == ["probe_pkg.kernel", "probe_pkg.helper", "pyspark"]


# ------------------------------------------------------------------ the checker on a synthetic package
SYNTHETIC = {
    "pipelines/__init__.py": "",
    "pipelines/framework/__init__.py": "",
    "pipelines/framework/runner.py": "from pipelines.framework import lake\nimport curation.scores\n",
    "pipelines/framework/lake.py": "import os\n",
    "pipelines/ingest/__init__.py": "",
    "pipelines/ingest/stage.py": "from pipelines.framework.lake import os\n",
    "curation/__init__.py": "",
    "curation/scores.py": "from . import helpers\n",
    "curation/helpers.py": "import jobs.cli\n",
    "curation/kernels/__init__.py": "",
    "curation/kernels/fine.py": (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pyspark.sql import DataFrame\n"
        "def run():\n    import pyspark\n"
    ),
    "curation/kernels/heavy.py": "from ..spark_algos import go\n",
    "curation/spark_algos.py": "from pyspark.sql import functions as F\ndef go():\n    pass\n",
    "curation/annotators/__init__.py": "",
    "curation/annotators/bad.py": "from curation import spark_algos\n",
    "curation/gopher_config.py": "try:\n    import pyspark\nexcept ImportError:\n    pass\n",
    "dedup/__init__.py": "import pyspark\n",
    "dedup/kernel.py": "import numpy\n",
    "pii/__init__.py": "",
    "pii/a.py": "from pii import b\n",
    "pii/b.py": "class B:\n    from pii.a import x\n",
    "training/__init__.py": "",
    "training/loader/__init__.py": "",
    "training/loader/stream_loader.py": "from training.shards.format import read\n",
    "training/shards/format.py": "from pipelines.framework import lake\n",
    "jobs/__init__.py": "",
    "jobs/cli.py": "import curation.scores\n",
    "pii/cli.py": "import json\n",
    "pii/stage.py": "from pii import cli\n",
}


@pytest.fixture()
def synthetic(tmp_path: Path):
    for relative, text in SYNTHETIC.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return build_graph(tmp_path, ["pipelines", "curation", "dedup", "pii", "training", "jobs"])


def test_each_rule_reports_its_violation_with_the_chain(synthetic) -> None:
    assert violations(synthetic) == [
        "the framework imports no area: pipelines.framework.runner -> curation.scores",
        "areas never import jobs: curation.helpers -> jobs.cli",
        "areas never import jobs: curation.scores -> curation.helpers -> jobs.cli",
        "kernels import no pyspark: curation.kernels.heavy -> curation.spark_algos -> pyspark",
        "kernels import no pyspark: dedup.kernel -> dedup -> pyspark",
        "annotators import no pyspark: curation.annotators.bad -> curation.spark_algos -> pyspark",
        "configs import no pyspark: curation.gopher_config -> pyspark",
        "training's loader, model and trainer import neither pyspark nor pipelines: "
        "training.loader.stream_loader -> training.shards.format -> pipelines.framework.lake",
        "an area's CLI is a leaf (only jobs mounts it): pii.stage -> pii.cli",
    ]


def test_imports_that_do_not_run_at_import_time_are_not_counted(synthetic) -> None:
    """curation.kernels.fine imports pyspark only for type checkers and inside a function."""
    assert not any("curation.kernels.fine" in line for line in violations(synthetic))


def test_a_cycle_is_reported_as_a_closed_chain(synthetic) -> None:
    """One through jobs (an area importing jobs closes it), one through a class body."""
    assert sorted(cycles(synthetic)) == [
        ["curation.helpers", "jobs.cli", "curation.scores", "curation.helpers"],
        ["pii.a", "pii.b", "pii.a"],
    ]
