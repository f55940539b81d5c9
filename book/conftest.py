"""The chapters' tests (nbmake), stored for the book: when ``BOOK_CACHE`` names a jupyter-cache folder
and the run is on the offline source, each chapter writes its results file to ``book/results`` (where a
book build writes it) and, once it has passed, its executed notebook is stored in that cache under its
code cells' hash, as a book build stores it (not a page every build executes:
``mystnb.execution_mode: force``). `make test` names the folder of the smoke book on the
offline source, the source of its first pass, so that `COMPANION_PROFILE=smoke COMPANION_SOURCE=offline
make book` (CI's browser check) renders the chapters without running them again."""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from nbmake import pytest_items
from nbmake.nb_result import NotebookResult

from companion import results, settings

BOOK_CACHE_VAR = "BOOK_CACHE"
EXECUTED_BY = "make test"  # recorded with each stored run; tools/book_cache.py prints it


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Run a chapter; with ``BOOK_CACHE`` set, store its executed notebook when it passed."""
    folder = os.environ.get(BOOK_CACHE_VAR)
    offline = os.environ.get(settings.SOURCE_VAR) == "offline"  # as the tests' session sets it (tests/conftest.py)
    if not folder or not offline or not isinstance(item, pytest_items.NotebookItem):
        return (yield)
    runs: list[tuple[NotebookResult, float]] = []
    execute = pytest_items.NotebookRun.execute

    def timed(run: pytest_items.NotebookRun) -> NotebookResult:
        start = time.perf_counter()
        result = execute(run)
        runs.append((result, time.perf_counter() - start))
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pytest_items.NotebookRun, "execute", timed)
        patch.setenv(results.RESULTS_VAR, str(Path(item.filename).resolve().parent / "results"))
        outcome = yield  # raises when the chapter failed: nothing is stored then
    (result, seconds), = runs
    # The chapter as written, with the run's outputs: the cache's hash covers cell metadata, to which
    # nbmake's run adds timings.
    source = Path(item.filename).resolve()
    executed = nbformat.read(source, as_version=4)
    if executed.metadata.get("mystnb", {}).get("execution_mode") == "force":
        return outcome  # a page that every build executes (the results page) is never served from the cache
    for cell, ran in zip(executed.cells, result.nb.cells, strict=True):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
    Path(folder).mkdir(parents=True, exist_ok=True)
    get_cache(folder).cache_notebook_bundle(
        CacheBundleIn(executed, str(source), data={"execution_seconds": seconds, "executed_by": EXECUTED_BY}),
        check_validity=False, overwrite=True)
    return outcome
