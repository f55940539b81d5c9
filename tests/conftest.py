"""Tests run offline, in the smoke profile, with results written to a temporary folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from companion import resources

# The book's tools (loaded by file path in their tests) import their sibling tools/toc.py, as they do
# when run as scripts from that folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))


@pytest.fixture(autouse=True)
def offline_smoke(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("COMPANION_SOURCE", "offline")
    monkeypatch.setenv("COMPANION_PROFILE", "smoke")
    monkeypatch.setenv("COMPANION_RESULTS", str(tmp_path_factory.mktemp("results")))


@pytest.fixture(scope="session")
def provisioned() -> dict:
    """Every offline resource, provisioned once (a no-op after `make setup`)."""
    return resources.fetch()
