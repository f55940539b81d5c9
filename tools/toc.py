"""The book's table of contents, ``_toc.yml``, read in one place for the tools (``book_cache.py``,
``check_book.py``)."""

from __future__ import annotations

from pathlib import Path

import yaml


def read(root: Path) -> tuple[str, list[str]]:
    """The root page and the chapter pages of ``root/_toc.yml`` in book order, as paths relative to
    ``root`` without a suffix (``book/intro``, ``book/01_finetuning_workflow``, ...)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    return toc["root"], [entry["file"] for entry in toc["chapters"]]
