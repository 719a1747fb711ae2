"""One real lake for every web and report test: built once per session (see lakebuild.py)."""

from __future__ import annotations

import pytest

from tests.web.lakebuild import build_lake


@pytest.fixture(scope="session")
def web_lake(spark, shared_data, tmp_path_factory):
    """(lake folder, run record) of the test job, with its report computed."""
    base = tmp_path_factory.mktemp("weblake")
    record = build_lake(spark, base / "lake", shared_data)
    return base / "lake", record


@pytest.fixture(scope="session")
def client(web_lake):
    from fastapi.testclient import TestClient

    from jobs.web.app import create_app

    return TestClient(create_app(web_lake[0]), base_url="http://localhost")
