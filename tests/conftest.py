"""Fixtures shared by every test folder: one Spark session per test process, a fresh lake, real data."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("REFINERY_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("REFINERY_SPARK_UI", "0")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")


def skip_unless_required(message: str, required_by: str) -> None:
    """Skip a test whose real data or emulator is absent, or fail it where `required_by`=1 is set.

    A skip exits 0, so a CI machine without the data or an emulator would pass on
    skips alone; `.ci/run` sets REFINERY_REQUIRE_SHARED_DATA=1 and
    REFINERY_REQUIRE_EMULATORS=1 to make absence a failure.
    """
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{message}; {required_by}=1 requires it", pytrace=False)
    pytest.skip(message)


def missing_shared_data(message: str) -> None:
    skip_unless_required(message, "REFINERY_REQUIRE_SHARED_DATA")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data folder; tests that need it skip (or fail, see above) where it is absent."""
    if not SHARED_DATA.is_dir():
        missing_shared_data(
            f"real data folder {SHARED_DATA} is absent (set REFINERY_SHARED_DATA to its path)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def spark():
    from pipelines.framework.spark import get_spark

    session = get_spark(
        master="local[2]",
        conf={"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "4"},
        ui=False,
        app_name="refinery-tests",
    )
    yield session
    session.stop()


@pytest.fixture()
def lake(tmp_path: Path):
    from pipelines.framework.lake import Lake

    return Lake(tmp_path / "lake")


@pytest.fixture()
def stage_ctx(spark, lake, tmp_path: Path):
    """A context for calling a stage's `run` directly, outside the runner."""
    from pipelines.framework.stage import StageContext

    return StageContext(
        spark=spark,
        lake=lake,
        dataset="test",
        run_id=f"test-{uuid.uuid4().hex[:8]}",
        work_dir=tmp_path / "work",
    )


pytest_plugins = ["tests.s3_server", "tests.azurite_server", "tests.gcs_server"]
