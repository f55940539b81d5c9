"""A browser check of the rendered book: each page of ``_toc.yml`` opened in headless Chromium.

``python tools/check_book.py [HTML] [--root ROOT] [--screenshots DIR] [--allow-stderr PATTERN ...]``

HTML is the rendered book (default ``_build/html``); ROOT holds ``_toc.yml``, ``_config.yml`` and
``book/*.ipynb`` (default: this repository). The root page and every chapter are opened as file://
URLs in a 1280 x 900 window and checked for:

- traceback or error output (``.output.traceback``, ``.output.error``, or the text of a traceback),
  reported by its last line;
- stderr blocks (``div.output.stderr``, as MyST-NB renders a stderr stream), unless the block's text
  matches an ``--allow-stderr`` regex;
- images of the article that did not load (``naturalWidth`` 0); images served from the web (the Colab
  badge) are left out, so that the check runs offline;
- code blocks wider than the page (a ``pre`` whose ``scrollWidth`` exceeds its ``clientWidth``);
- the Colab install cell, which must be removed from the page;
- on each chapter, the Colab launch link to its own notebook (from ``repository`` in ``_config.yml``);
- solution cells (code cells starting with ``# Solution``) not hidden behind a toggle
  (``tag_hide-input``), or missing from the page;
- when the book has other editions (``HTML/zh_CN``, see ``EDITIONS``), their pages too, and on every
  page of every edition a language switch (``a.language-switch``) to the same page in the other one;
  an edition's page must declare its language (``<html lang="zh-CN">``) and leave no paragraph of its
  prose in English (a paragraph outside code and outputs with four or more English words and no
  Chinese character).

A full-page screenshot of each page goes to ``DIR/<page>.png`` (default: ``screenshots`` beside HTML,
so ``_build/screenshots``). Prints one line per page, then the problems; exits 0 when there are none,
1 when there are, and 2 when Chromium or its driver is not installed.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import unquote, urlparse

import nbformat
import toc  # tools/toc.py: this script's folder is on sys.path
import yaml

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTH, HEIGHT, MAX_HEIGHT = 1280, 900, 20000
LOAD_SECONDS = 30.0
COLAB_CELL = "Colab only: install the companion"
SOLUTION = "# Solution"
EDITIONS = {"zh_CN": "zh-CN"}  # folders of translated editions under the English HTML (make book-zh): language

# Everything checked on a page, read in one call; arguments[0] is COLAB_CELL, arguments[1] SOLUTION.
PAGE_SCRIPT = """
const article = document.querySelector('article') || document.querySelector('main') || document.body;
const lines = el => el.textContent.split('\\n').map(line => line.trim()).filter(Boolean);
const firstLine = el => lines(el)[0] || '';
const errors = Array.from(document.querySelectorAll('.output.traceback, .output.error, .cell_output .traceback'));
for (const output of document.querySelectorAll('.cell_output, .output')) {
  if (output.textContent.includes('Traceback (most recent call last)')
      && !errors.some(error => error.contains(output) || output.contains(error))) errors.push(output);
}
const closed = Array.from(article.querySelectorAll('details:not([open])'));
closed.forEach(details => { details.open = true; });
const wide = Array.from(article.querySelectorAll('pre')).filter(pre => pre.scrollWidth > pre.clientWidth + 1);
closed.forEach(details => { details.open = false; });
const solutions = Array.from(document.querySelectorAll('div.cell')).filter(cell => {
  const input = cell.querySelector('.cell_input');
  return input && input.textContent.trim().startsWith(arguments[1]);
});
return {
  errors: errors.map(error => lines(error).pop() || ''),
  stderr: Array.from(document.querySelectorAll('div.output.stderr')).map(block => block.textContent.trim()),
  images: Array.from(article.querySelectorAll('img')).map(img => [img.getAttribute('src'), img.naturalWidth > 0]),
  wide: wide.map(firstLine),
  colab_cell: document.body.textContent.includes(arguments[0]),
  colab_links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))
    .filter(href => href.includes('colab.research.google.com/github/')),
  language_switch: Array.from(document.querySelectorAll('a.language-switch')).map(a => a.href),
  lang: document.documentElement.lang,
  english: Array.from(article.querySelectorAll('p'))
    .filter(p => !p.closest('.cell_output, .output, .cell_input, pre'))
    .map(p => { const c = p.cloneNode(true); c.querySelectorAll('code').forEach(x => x.remove()); return c.textContent; })
    .filter(text => !/[\u3400-\u9fff]/.test(text) && (text.match(/[A-Za-z]{2,}/g) || []).length >= 4)
    .map(text => text.trim()),
  solutions: solutions.map(cell => [firstLine(cell.querySelector('.cell_input')),
                                    cell.classList.contains('tag_hide-input')]),
};
"""


@dataclass
class Page:
    """One page of the book: where it is, what it should link to, and what the check found."""

    stem: str
    html: Path
    notebook: Path | None
    colab: str | None
    twin: Path | None = None  # the same page in the other edition, which the language switch must open
    language: str | None = None  # a translated edition's language (its pages' lang attribute)
    images: tuple[int, int] = (0, 0)
    stderr: int = 0
    allowed: int = 0
    wide: int = 0
    problems: list[str] = field(default_factory=list)


def give_up(message: str) -> NoReturn:
    """Print one line to stderr and exit 2 (the check could not run)."""
    print(message, file=sys.stderr)
    raise SystemExit(2)


def pages(html: Path, root: Path) -> list[Page]:
    """The root page and the chapters of ``_toc.yml``, in book order, with their Colab URLs; then the
    same pages of each edition in ``EDITIONS`` that was built, each page with its twin in the other
    language (English pages: the first edition's)."""
    root_page, chapter_pages = toc.read(root)
    repository = yaml.safe_load((root / "_config.yml").read_text())["repository"]
    owner_repo = urlparse(repository["url"]).path.strip("/").removesuffix(".git")
    colab = f"https://colab.research.google.com/github/{owner_repo}/blob/{repository.get('branch', 'main')}"
    entries = [(root_page, False)] + [(name, True) for name in chapter_pages]
    editions = [edition for edition in EDITIONS if (html / edition).is_dir()]
    found = []
    for prefix, folder, twin, language in [("", html, html / editions[0] if editions else None, None)] + [
            (f"{edition}-", html / edition, html, EDITIONS[edition]) for edition in editions]:
        found += [Page(prefix + Path(name).name, folder / f"{name}.html",
                       notebook if (notebook := root / f"{name}.ipynb").is_file() else None,
                       f"{colab}/{name}.ipynb" if chapter else None, twin / f"{name}.html" if twin else None,
                       language) for name, chapter in entries]
    return found


def open_browser() -> WebDriver:
    """Headless Chromium through Debian's chromedriver; exits 2 when either is missing."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        give_up(f"{' and '.join(missing)} not found: apt-get install chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
    except ImportError:
        give_up("selenium is not installed: pip install selenium (see requirements.txt)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(argument)
    try:
        return webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    except WebDriverException as error:
        give_up(f"Chromium did not start: {error.msg or error}".splitlines()[0])


def wait_until(driver: WebDriver, script: str, seconds: float) -> bool:
    """Whether ``script`` returned true within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not driver.execute_script(script):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def solutions_in(notebook: Path | None) -> int:
    """How many code cells of the notebook start with ``# Solution``."""
    if notebook is None:
        return 0
    cells = nbformat.read(notebook, as_version=4).cells
    return sum(cell.cell_type == "code" and cell.source.lstrip().startswith(SOLUTION) for cell in cells)


def check(driver: WebDriver, page: Page, allowed: list[re.Pattern[str]], screenshots: Path) -> None:
    """Open the page, record its problems and counts, and save its full-page screenshot."""
    if not page.html.is_file():
        page.problems.append(f"page missing: {page.html}")
        return
    driver.set_window_size(WIDTH, HEIGHT)
    driver.get(page.html.resolve().as_uri())
    if not wait_until(driver, "return document.readyState === 'complete'", LOAD_SECONDS):
        page.problems.append(f"the page did not finish loading in {LOAD_SECONDS:.0f} s")
    wait_until(driver, "return Array.from(document.images).every(img => img.complete)", LOAD_SECONDS)
    found: dict[str, Any] = driver.execute_script(PAGE_SCRIPT, COLAB_CELL, SOLUTION)

    page.problems += [f"traceback or error output: {line[:80]!r}" for line in found["errors"]]
    page.stderr = len(found["stderr"])
    for text in found["stderr"]:
        if any(pattern.search(text) for pattern in allowed):
            page.allowed += 1
        else:
            page.problems.append(f"stderr output: {text[:80]!r}")
    local = [(src, ok) for src, ok in found["images"] if not src.startswith(("http://", "https://"))]
    broken = [src for src, ok in local if not ok]
    page.images = (len(local) - len(broken), len(local))
    page.problems += [f"image did not load: {src}" for src in broken]
    page.wide = len(found["wide"])
    page.problems += [f"code wider than the page: {line[:80]!r}" for line in found["wide"]]
    if found["colab_cell"]:
        page.problems.append(f"the Colab install cell is on the page ({COLAB_CELL!r})")
    if page.colab and page.colab not in found["colab_links"]:
        page.problems.append(f"no Colab link to {page.colab}"
                             + (f" (links to {', '.join(found['colab_links'])})" if found["colab_links"] else ""))
    expected = solutions_in(page.notebook)
    if len(found["solutions"]) != expected:
        page.problems.append(f"{expected} solution cells in the notebook, {len(found['solutions'])} on the page")
    page.problems += [f"solution cell not hidden behind a toggle (no tag_hide-input): {line[:80]!r}"
                      for line, hidden in found["solutions"] if not hidden]
    if page.twin is not None:
        targets = [Path(unquote(urlparse(href).path)).resolve() for href in found["language_switch"]]
        if page.twin.resolve() not in targets:
            page.problems.append(f"no language switch to the same page in the other edition ({page.twin})")
    if page.language is not None:
        if found["lang"] != page.language:
            page.problems.append(f"the page declares lang={found['lang']!r}, not {page.language!r}")
        page.problems += [f"paragraph left in English: {text[:80]!r}" for text in found["english"]]

    # The window is taller than the page it shows by the browser's own bars: add them back.
    height, bars = driver.execute_script("return [document.body.scrollHeight, outerHeight - innerHeight]")
    driver.set_window_size(WIDTH, min(int(height), MAX_HEIGHT) + int(bars))
    driver.save_screenshot(str(screenshots / f"{page.stem}.png"))


def report(checked: list[Page]) -> None:
    """One line per page, then every problem, naming its page."""
    print(f"{'page':<32} {'images ok/total':>15} {'stderr blocks':>14} {'wide code lines':>16}  result")
    for page in checked:
        stderr = f"{page.stderr}" + (f" ({page.allowed} allowed)" if page.allowed else "")
        result = f"{len(page.problems)} problem(s)" if page.problems else "ok"
        print(f"{page.stem:<32} {'%d/%d' % page.images:>15} {stderr:>14} {page.wide:>16}  {result}")
    problems = [f"{page.stem}: {problem}" for page in checked for problem in page.problems]
    print("\n" + ("\n".join(["Problems:"] + problems) if problems else "No problems."))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", nargs="?", type=Path, default=ROOT / "_build" / "html",
                        help="the rendered book (default: _build/html)")
    parser.add_argument("--root", type=Path, default=ROOT, help="folder of _toc.yml, _config.yml and book/")
    parser.add_argument("--screenshots", type=Path, help="where the PNGs go (default: HTML/../screenshots)")
    parser.add_argument("--allow-stderr", action="append", default=[], metavar="PATTERN",
                        help="a regex: stderr blocks whose text it matches are allowed (repeatable)")
    args = parser.parse_args(argv)
    screenshots: Path = args.screenshots or args.html.resolve().parent / "screenshots"
    allowed = [re.compile(pattern) for pattern in args.allow_stderr]
    checked = pages(args.html, args.root)
    driver = open_browser()
    try:
        screenshots.mkdir(parents=True, exist_ok=True)
        for page in checked:
            check(driver, page, allowed, screenshots)
    finally:
        driver.quit()
    report(checked)
    return 1 if any(page.problems for page in checked) else 0


if __name__ == "__main__":
    sys.exit(main())
