"""tools/book_i18n.py: the catalogue merge and the drift check of the Chinese edition, on hand-made
catalogues, and the pieces a translation must keep."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("book_i18n", ROOT / "tools" / "book_i18n.py")
book_i18n = sys.modules["book_i18n"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(book_i18n)


def write_pot(folder: Path, page: str, messages: list[str]) -> None:
    catalog = Catalog()
    for message in messages:
        catalog.add(message)
    (folder / f"{page}.pot").parent.mkdir(parents=True, exist_ok=True)
    with (folder / f"{page}.pot").open("wb") as f:
        write_po(f, catalog)


def translate(po: Path, translations: dict[str, str]) -> None:
    with po.open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    for message in catalog:
        if message.id in translations:
            message.string, message.flags = translations[message.id], set()
    with po.open("wb") as f:
        write_po(f, catalog, width=0)


def test_a_translation_keeps_code_links_roles_math_and_figures():
    english = "See `mask_tokens` in [the tests](../tests/x.py), {ref}`sec`, $p^2$: 0.874 on 8,056 rows."
    assert book_i18n.lost(english, "见 `mask_tokens`，[测试](../tests/x.py)，{ref}`sec`，$p^2$：8,056 行上 0.874。") == []
    assert book_i18n.lost(english, "见 mask_tokens，[测试](x.py)，$p^2$：8,056 行上 0.87。") == [
        "`mask_tokens`", "`sec`", "../tests/x.py", "{ref}", "0.874"]


def test_update_then_check_catches_new_changed_and_damaged_messages(tmp_path, capsys):
    pot, locale = tmp_path / "gettext", tmp_path / "locale"
    po = locale / "zh_CN" / "LC_MESSAGES" / "book" / "01_gpt.po"
    write_pot(pot, "book/01_gpt", ["Pretraining.", "Accuracy 0.874."])
    assert book_i18n.check(pot, locale, "zh_CN") == 1  # no catalogue yet
    assert "missing" in capsys.readouterr().out
    book_i18n.update(pot, locale, "zh_CN")
    assert book_i18n.check(pot, locale, "zh_CN") == 1
    assert "0 translated, 0 fuzzy, 2 untranslated" in capsys.readouterr().out

    translate(po, {"Pretraining.": "预训练。", "Accuracy 0.874.": "准确率 0.874。"})
    assert book_i18n.check(pot, locale, "zh_CN") == 0
    assert "2 translated, 0 fuzzy, 0 untranslated, 0 with lost pieces" in capsys.readouterr().out

    # The English changes: the changed message turns fuzzy, and the check fails until it is translated again.
    write_pot(pot, "book/01_gpt", ["Pretraining.", "Accuracy 0.881."])
    assert book_i18n.check(pot, locale, "zh_CN") == 1
    assert "fuzzy: 'Accuracy 0.881.'" in capsys.readouterr().out
    book_i18n.update(pot, locale, "zh_CN")
    translate(po, {"Accuracy 0.881.": "准确率 0.874。"})  # the old figure left in
    assert book_i18n.check(pot, locale, "zh_CN") == 1
    assert "lost ['0.881']" in capsys.readouterr().out

    # A page that no longer exists leaves a stale catalogue, which the check names.
    (pot / "book" / "01_gpt.pot").rename(pot / "book" / "02_gpt.pot")
    book_i18n.update(pot, locale, "zh_CN")
    assert book_i18n.check(pot, locale, "zh_CN") == 1
    assert "01_gpt.po: no such page any more" in capsys.readouterr().out


def test_an_english_paragraph_edited_without_its_translation_fails_the_check(tmp_path, capsys):
    """The real book and catalogues: the check passes, then one paragraph of a chapter changes in English
    only, and the check fails naming it."""
    import shutil
    import subprocess

    import nbformat

    for name in ("_config.yml", "_toc.yml", "tools", "_templates"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("results", "locale"))
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    pot = tmp_path / "_build" / "i18n" / "_build" / "gettext"

    def extract() -> int:
        shutil.rmtree(tmp_path / "_build", ignore_errors=True)
        subprocess.run([str(jupyter_book), "build", str(tmp_path), "--path-output", str(tmp_path / "_build" / "i18n"),
                        "--builder", "custom", "--custom-builder", "gettext", "--quiet"], check=True,
                       capture_output=True)
        return book_i18n.check(pot, ROOT / "book" / "locale", "zh_CN")

    assert extract() == 0, capsys.readouterr().out
    capsys.readouterr()
    chapter = tmp_path / "book" / "06_t5.ipynb"
    notebook = nbformat.read(chapter, as_version=4)
    cell = next(cell for cell in notebook.cells if cell.cell_type == "markdown" and "Span corruption" in cell.source)
    cell.source = cell.source.replace("No T5 weights exist", "No T5 weights at all exist")
    nbformat.write(notebook, chapter)
    assert extract() == 1
    out = capsys.readouterr().out
    assert "06_t5.po: " in out and "'No T5 weights at all exist" in out
    assert re.search(r"intro\.po: \d+ translated, 0 fuzzy, 0 untranslated", out)  # the unchanged pages still pass
