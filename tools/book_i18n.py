"""The Chinese edition: a Sphinx extension, and the catalogue commands `make i18n-update` and `make i18n-check` run.

The English notebooks and Markdown pages are the only source. ``sphinx-build -b gettext`` extracts their
Markdown (never code cells or outputs) into one ``.pot`` per page; translations live in
``book/locale/<lang>/LC_MESSAGES/book/<page>.po``, and ``sphinx-build -D language=zh_CN`` renders them.

As an extension (``_config.yml``: ``sphinx.local_extensions``): a gettext build, or any build with
``BOOK_EXECUTE=off``, executes nothing, not even a notebook whose metadata says
``mystnb.execution_mode: force`` (an exclude pattern is the one setting that overrides that metadata);
a translated build gets MyST-NB's words on the page in its language (``UI_STRINGS``).

As a command:

- ``python tools/book_i18n.py update POT_DIR LOCALE_DIR LANG``: merge each page's new ``.pot`` into its
  ``.po`` (created when missing): new messages come in untranslated, changed ones fuzzy with the old
  translation kept, removed ones obsolete (``#~``). A file is written only when its messages changed.
- ``python tools/book_i18n.py check POT_DIR LOCALE_DIR LANG``: the same merge in memory; writes nothing and
  fails (exit 1) when a page has no catalogue, a message is untranslated or fuzzy, or a translation lost
  a piece of its English message that must stay as it is (:func:`lost`), listing them.

Translators follow ``book/locale/<lang>/glossary.csv``.
"""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po


# MyST-NB's own words on the page (the toggles of hidden code cells), per language; the theme translates its own.
UI_STRINGS = {"zh": {"nb_code_prompt_show": "显示代码", "nb_code_prompt_hide": "隐藏代码"}}


def _configure(app) -> None:
    if app.builder.name == "gettext" or os.environ.get("BOOK_EXECUTE") == "off":
        app.config.nb_execution_mode = "off"
        app.config.nb_execution_excludepatterns = ["*"]
    for name, value in UI_STRINGS.get((app.config.language or "en").split("_")[0], {}).items():
        setattr(app.config, name, value)


def setup(app):
    # Before myst-nb reads its configuration (also on builder-inited, default priority 500).
    app.connect("builder-inited", _configure, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# What a translation keeps exactly as the English message has it: inline code (also a role's target),
# link targets, role names, inline math and figures.
KEPT = (re.compile(r"`[^`]+`"), re.compile(r"\]\(([^)\s]+)\)"), re.compile(r"\{[a-z:-]+\}"),
        re.compile(r"\$[^$\s][^$]*\$"), re.compile(r"\d+(?:[.,]\d+)*"))


def lost(message: str, translation: str) -> list[str]:
    """The pieces of an English ``message`` (inline code, link targets, roles, inline math, figures) that
    its ``translation`` does not contain, in order of first appearance."""
    missing: list[str] = []
    for pattern in KEPT:
        for piece in pattern.findall(message):
            if piece not in translation and piece not in missing:
                missing.append(piece)
    return missing


def _serialize(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    # width=0: one line per message. No previous msgids: Babel wraps them whatever the width, and reads the
    # wrapped lines back as translator comments.
    write_po(out, catalog, width=0, include_previous=False)
    return out.getvalue()


def merge(pot: Path, po: Path, lang: str) -> tuple[Catalog, bytes | None]:
    """The page's catalogue updated to its template, and the present file's bytes (None if there is none)."""
    with pot.open("rb") as f:
        template = read_po(f)
    old = po.read_bytes() if po.is_file() else None
    catalog = read_po(io.BytesIO(old), locale=lang) if old is not None else Catalog(locale=lang, fuzzy=False)
    catalog.update(template, update_creation_date=False)
    return catalog, old


def catalogues(pot_dir: Path, locale_dir: Path, lang: str):
    for pot in sorted(pot_dir.rglob("*.pot")):
        yield pot, locale_dir / lang / "LC_MESSAGES" / pot.relative_to(pot_dir).with_suffix(".po")


def update(pot_dir: Path, locale_dir: Path, lang: str) -> int:
    for pot, po in catalogues(pot_dir, locale_dir, lang):
        catalog, old = merge(pot, po, lang)
        new = _serialize(catalog)
        if new != old:
            po.parent.mkdir(parents=True, exist_ok=True)
            po.write_bytes(new)
            print(f"{po}: {'updated' if old is not None else 'created'}")
    return 0


def check(pot_dir: Path, locale_dir: Path, lang: str) -> int:
    failed = 0
    pages = list(catalogues(pot_dir, locale_dir, lang))
    if not pages:
        print(f"no .pot files under {pot_dir}: run the gettext build first")
        return 1
    for pot, po in pages:
        if not po.is_file():
            print(f"{po}: missing (run `make i18n-update`)")
            failed += 1
            continue
        catalog, _ = merge(pot, po, lang)
        messages = [m for m in catalog if m.id]
        fuzzy = [m for m in messages if m.string and m.fuzzy]
        untranslated = [m for m in messages if not m.string]
        damaged = [(m, lost(m.id, m.string)) for m in messages if m.string and not m.fuzzy]
        damaged = [(m, pieces) for m, pieces in damaged if pieces]
        print(f"{po}: {len(messages) - len(fuzzy) - len(untranslated)} translated, {len(fuzzy)} fuzzy,"
              f" {len(untranslated)} untranslated, {len(damaged)} with lost pieces")
        for kind, found in (("fuzzy", fuzzy), ("untranslated", untranslated)):
            for m in found:
                print(f"    {kind}: {m.id[:100]!r}")
        for m, pieces in damaged:
            print(f"    lost {pieces}: {m.id[:80]!r}")
        failed += bool(fuzzy or untranslated or damaged)
    known = {po for _, po in pages}
    for stale in sorted((locale_dir / lang / "LC_MESSAGES").rglob("*.po")):
        if stale not in known:
            print(f"{stale}: no such page any more (renamed or removed?)")
            failed += 1
    if failed:
        print(f"{failed} catalogue(s) out of date with the English source: run `make i18n-update` and translate")
    return 1 if failed else 0


if __name__ == "__main__":
    command, pot_dir, locale_dir, lang = sys.argv[1:5]
    commands = {"update": update, "check": check}
    if command not in commands:
        sys.exit(f"unknown command {command!r}: use update or check")
    sys.exit(commands[command](Path(pot_dir), Path(locale_dir), lang))
