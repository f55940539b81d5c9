"""tools/book_cache.py, the chapter cache of `make book`: a cached chapter whose results file is gone is
forgotten (so the build runs it again), and the time table says which chapters ran and which came
from the cache; book/conftest.py stores a chapter that passed its test in that cache."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("book_cache", ROOT / "tools" / "book_cache.py")
book_cache = importlib.util.module_from_spec(spec)
spec.loader.exec_module(book_cache)


def cache_chapter(folder: Path, stem: str, seconds: float, **data: object) -> None:
    path = ROOT / "book" / f"{stem}.ipynb"
    get_cache(str(folder)).cache_notebook_bundle(
        CacheBundleIn(nbformat.read(path, as_version=4), str(path), data={"execution_seconds": seconds, **data}),
        check_validity=False, overwrite=True)


def test_chapters_follow_the_table_of_contents():
    stems = [path.stem for path in book_cache.chapters()]
    assert stems[0] == "01_finetuning_workflow" and stems[-1] == "10_results" and stems == sorted(stems)


def test_prepare_forgets_a_cached_chapter_whose_results_file_is_missing(tmp_path, capsys):
    cache_chapter(tmp_path, "01_finetuning_workflow", 12.0)
    assert book_cache.cached(str(tmp_path))[ROOT / "book" / "01_finetuning_workflow.ipynb"] is not None
    book_cache.prepare(str(tmp_path), "no-such-profile", results=tmp_path / "results")
    assert "will be executed again" in capsys.readouterr().out
    assert book_cache.cached(str(tmp_path))[ROOT / "book" / "01_finetuning_workflow.ipynb"] is None


def test_prepare_deletes_results_of_chapters_no_longer_in_the_book(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    for name in ("05_prompting.cpu.json", "08_prompting.cpu.json", "05_prompting.smoke.json"):
        (results / name).write_text("{}")
    book_cache.prepare(str(tmp_path / "cache"), "cpu", results=results)
    assert "05_prompting.cpu.json: written by a chapter that is no longer in the book" in capsys.readouterr().out
    assert sorted(p.name for p in results.iterdir()) == ["05_prompting.smoke.json", "08_prompting.cpu.json"]


def test_times_tell_executed_from_cached_chapters(tmp_path, capsys):
    cache_chapter(tmp_path, "04_gpt", 600.0)
    book_cache.times(str(tmp_path), since=time.time() - 60)
    out = capsys.readouterr().out
    assert "04_gpt" in out and "600  executed in this build" in out
    assert "10_results" in out and "executed on every build, not cached" in out
    assert "05_bert" in out and "no cached run" in out
    book_cache.times(str(tmp_path), since=time.time() + 60)
    assert "600  from the cache (executed 20" in capsys.readouterr().out
    cache_chapter(tmp_path, "05_bert", 80.0, executed_by="make test")
    book_cache.times(str(tmp_path), since=time.time() + 60)
    assert "80  from the cache (executed by make test 20" in capsys.readouterr().out


def test_the_chapters_are_the_notebooks_of_the_table_of_contents_in_book_order():
    names = [path.stem for path in book_cache.chapters()]
    assert names == sorted(path.stem for path in (ROOT / "book").glob("*.ipynb"))  # numbered in book order
    assert names[0] == "01_finetuning_workflow" and names[-1] == "10_results"


def run_chapter_tests(folder: Path, cache: Path) -> subprocess.CompletedProcess:
    """nbmake over ``folder`` (a copy of book/conftest.py beside its notebooks), storing into ``cache``."""
    shutil.copy(ROOT / "book" / "conftest.py", folder / "conftest.py")
    env = {**os.environ, "BOOK_CACHE": str(cache), "COMPANION_SOURCE": "offline"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake", str(folder)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_a_chapter_that_passed_its_test_is_stored_for_the_book_with_its_outputs(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    chapter = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A chapter"),
        nbformat.v4.new_code_cell("import os\nprint(os.environ['COMPANION_RESULTS'])", metadata={"tags": ["x"]})])
    chapter.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    failing = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")], metadata=chapter.metadata)
    forced = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("2 + 2")],
                                      metadata={**chapter.metadata, "mystnb": {"execution_mode": "force"}})
    nbformat.write(chapter, book / "01_chapter.ipynb")
    nbformat.write(failing, book / "02_failing.ipynb")
    nbformat.write(forced, book / "03_results.ipynb")
    run = run_chapter_tests(book, tmp_path / "cache")
    assert "1 failed, 2 passed" in run.stdout, run.stdout + run.stderr
    cache = get_cache(str(tmp_path / "cache"))
    record = cache.match_cache_notebook(nbformat.read(book / "01_chapter.ipynb", as_version=4))
    assert record.data["executed_by"] == "make test" and record.data["execution_seconds"] > 0
    _, served = cache.merge_match_into_notebook(nbformat.read(book / "01_chapter.ipynb", as_version=4))
    assert served.cells[1].outputs[0]["text"].strip() == str(book / "results"), "results where a book build writes them"
    assert len(cache.list_cache_records()) == 1, "neither a failed chapter nor a page every build executes is stored"
