"""Tests run in the smoke profile, offline (or on the hub-shaped fixture when asked), with results
written to a temporary folder."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from companion import resources

# The book's tools (loaded by file path in their tests) import their sibling tools/toc.py, as they do
# when run as scripts from that folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))


# The source the tests run on: offline, unless the run asks for the hub explicitly (`make test-hub`
# sets COMPANION_SOURCE=hub with HF_HOME at the hub-shaped fixture), so that the same tests then
# exercise the hub path. Tests that hold only for one source say so with a `source` marker.
SOURCE = "hub" if os.environ.get("COMPANION_SOURCE", "").strip().lower() == "hub" else "offline"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "source(name): the test holds only on that source (offline or hub)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("source")
        if marker is not None and marker.args[0] != SOURCE:
            item.add_marker(pytest.mark.skip(reason=f"holds on the {marker.args[0]} source only; this run is {SOURCE}"))


@pytest.fixture(scope="session", autouse=True)
def test_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The whole session's environment, set before any fixture (module-scoped ones included) and
    restored at the end: the smoke profile, the source above, results in a temporary folder."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("COMPANION_SOURCE", SOURCE)
        env.setenv("COMPANION_PROFILE", "smoke")
        env.setenv("COMPANION_RESULTS", str(tmp_path_factory.mktemp("results")))
        yield


@pytest.fixture(scope="session")
def provisioned() -> dict:
    """Every offline resource, provisioned once (a no-op after `make setup`)."""
    return resources.fetch()
