"""Shared fixtures: the Chalice test client, the real rasters in ../shared/data/, and
synthetic rasters whose every pixel is known.

The suite runs the app under the ``test`` stage of .chalice/config.json (the same GDAL
tuning as dev/prod, but no ALLOWED_SOURCES of its own); the allow-list comes from here.
"""

import os

import pytest

from tests.support import BUILD, ROOT, SHARED


def _allow(paths):
    os.environ["ALLOWED_SOURCES"] = ",".join(str(p) for p in paths)


@pytest.fixture(scope="session")
def rasters():
    """A per-worker folder for synthetic rasters, on the allow-list."""
    folder = BUILD / os.environ.get("PYTEST_XDIST_WORKER", "main")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session", autouse=True)
def allow_list(rasters):
    _allow(["chalicelib/demo/", f"{SHARED}/", f"{BUILD}/"])
    yield


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test opens its datasets anew (synthetic files are rewritten between tests)."""
    from chalicelib.datasets import cache
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="session")
def shared():
    if not SHARED.is_dir():
        pytest.skip(f"real test rasters not found at {SHARED} (the shared/ folder beside the "
                    "checkout); these tests need them")
    return SHARED


@pytest.fixture
def client():
    from chalice.test import Client
    from app import app
    with Client(app, stage_name="test", project_dir=str(ROOT)) as test_client:
        yield test_client


