"""Stage registration by entry points: every declared stage loads, names resolve lazily, errors help."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pipelines.framework.plugins import PluginError, registered
from pipelines.framework.registry import GROUP, known_stages, stage_class
from pipelines.framework.spec import SpecError, parse_spec
from pipelines.framework.stage import Stage
from tests.pipelines.stages_for_tests import MarkShort

REPO = Path(__file__).resolve().parents[2]
MARK = "tests.pipelines.stages_for_tests:MarkShort"


@pytest.fixture()
def fresh_registry():
    """Entry points are read once per process; a test that adds distributions rereads them."""
    registered.cache_clear()
    yield
    registered.cache_clear()


def _distribution(root: Path, name: str, stages: dict[str, str]) -> None:
    """An installed distribution on `root` that declares `stages` (what pip writes for a package)."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{stage} = {target}\n" for stage, target in stages.items())
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}")


@pytest.mark.parametrize("name", known_stages())
def test_every_entry_point_loads_to_the_stage_of_that_name(name):
    cls = stage_class(name)
    assert isinstance(cls, type) and issubclass(cls, Stage)
    assert cls.name == name  # the spec's `stage:` and the record's stage name agree


def test_the_project_declares_its_stages():
    assert {"ingest", "pii", "annotate", "decide", "exact_dedup", "shards"} <= set(known_stages())


def test_installed_entry_points_are_the_ones_pyproject_declares(fresh_registry):
    """The registry reads installed metadata; after an edit of pyproject.toml it is stale until reinstalled."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"][GROUP]
    assert registered(GROUP) == declared, "run `pip install -e . --no-deps` to update the installed metadata"


def test_import_paths_still_name_stages():
    assert stage_class(MARK) is MarkShort


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ingset", "unknown stage 'ingset'; known stages: annotate, augment,"),
        ("tests.pipelines.stages_for_tests:Nope", "cannot import tests.pipelines.stages_for_tests:Nope"),
        ("no_such_package.mod:Stage", "No module named 'no_such_package'"),
        ("tests.pipelines.stages_for_tests:MarkConfig", "is not a subclass of Stage"),
    ],
)
def test_bad_names_are_errors_that_say_why(name, message):
    with pytest.raises(PluginError, match=message):
        stage_class(name)
    with pytest.raises(SpecError, match=f"job.yaml: stages\\[0\\].stage: .*{message}"):
        parse_spec({"name": "x", "stages": [{"stage": name}]}, "job.yaml")


def test_another_distribution_registers_its_own_stage(tmp_path, monkeypatch, fresh_registry):
    _distribution(tmp_path, "refinery_extra", {"mark_short": MARK})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert stage_class("mark_short") is MarkShort
    assert "mark_short" in known_stages() and "ingest" in known_stages()


def test_an_entry_point_left_behind_by_a_move_says_how_to_fix_it(tmp_path, monkeypatch, fresh_registry):
    _distribution(tmp_path, "refinery_stale", {"moved_away": "tests.pipelines.no_longer_here:Moved"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="update its refinery.stages entry point and reinstall"):
        stage_class("moved_away")


def test_one_name_registered_twice_is_an_error(tmp_path, monkeypatch, fresh_registry):
    _distribution(tmp_path, "refinery_rival", {"ingest": MARK})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="'ingest' is registered twice"):
        stage_class("ingest")


LAZY = """
import json, sys
from pipelines.framework.spec import parse_spec
from pipelines.framework.registry import known_stages, stage_class
heavy = ("spacy", "presidio_analyzer", "torch", "pii.stage", "curation.augment.stage", "training.shards.stage")
parse_spec({"name": "lazy", "stages": [{"stage": "ingest"}, {"stage": "exact_dedup"}]})
two = [m for m in heavy if m in sys.modules]
for name in known_stages():
    if name != "pii":
        stage_class(name)
all_but_pii = [m for m in heavy if m in sys.modules]
stage_class("pii")
print(json.dumps({"two": two, "all_but_pii": all_but_pii, "pii": [m for m in heavy if m in sys.modules]}))
"""


def test_only_the_named_stages_modules_are_imported():
    """Only a named stage's module is imported: a job of ingest and dedup imports no other area, and
    a job without pii never imports Presidio. A fresh process, so nothing was imported before."""
    done = subprocess.run(
        [sys.executable, "-c", LAZY], cwd=REPO, capture_output=True, text=True, timeout=300, check=True
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["two"] == []
    assert "presidio_analyzer" not in seen["all_but_pii"] and "pii.stage" not in seen["all_but_pii"]
    assert {"curation.augment.stage", "training.shards.stage"} <= set(seen["all_but_pii"])
    assert {"presidio_analyzer", "pii.stage"} <= set(seen["pii"])
