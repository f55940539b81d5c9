"""tools/check_book.py, the browser check of the rendered book, on a small hand-made site: a clean
chapter passes, and each kind of problem on a broken chapter is reported. Needs Debian's chromium and
chromium-driver (skipped without them) and selenium."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("check_book", ROOT / "tools" / "check_book.py")
check_book = sys.modules["check_book"] = importlib.util.module_from_spec(spec)  # dataclasses look it up
spec.loader.exec_module(check_book)

needs_browser = pytest.mark.skipif(
    not (check_book.CHROMIUM.is_file() and check_book.CHROMEDRIVER.is_file())
    or importlib.util.find_spec("selenium") is None,
    reason="needs /usr/bin/chromium, /usr/bin/chromedriver (apt-get install chromium chromium-driver) and selenium")

COLAB = "https://colab.research.google.com/github/owner/repo/blob/main/book"
PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body {{ margin: 0; font-family: sans-serif; }} article {{ width: 760px; margin: 0 auto; }}
pre {{ overflow: auto; }}</style></head>
<body><nav>{launch}</nav><main><article class="bd-article"><h1>{title}</h1>
{body}
</article></main></body></html>"""
CELL = """<div class="cell {tags} docutils container">{input}
<div class="cell_output docutils container">{output}</div></div>"""
SOLUTION = """<details class="hide above-input"><summary>Show code cell source</summary>
<div class="cell_input docutils container"><div class="highlight"><pre>{source}</pre></div></div></details>"""


def code(source: str) -> str:
    return f'<div class="cell_input docutils container"><div class="highlight"><pre>{source}</pre></div></div>'


def output(kind: str, text: str) -> str:
    return (f'<div class="output {kind} highlight-myst-ansi notranslate">'
            f'<div class="highlight"><pre>{text}</pre></div></div>')


def page(title: str, body: str, colab: str = "") -> str:
    launch = f'<a href="{colab}" class="btn dropdown-item" title="Launch on Colab">Colab</a>' if colab else ""
    return PAGE.format(title=title, launch=launch, body=body)


def make_site(root: Path, chapters: list[str]) -> Path:
    """A book root (_toc.yml, _config.yml, two notebooks) and its 'rendered' HTML under root/_build/html."""
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                   + "".join(f"  - file: book/{stem}\n" for stem in chapters))
    (root / "_config.yml").write_text("repository:\n  url: https://github.com/owner/repo\n  branch: main\n")
    for stem, solutions in (("01_clean", 1), ("02_bad", 2)):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {stem}")] + [
            nbformat.v4.new_code_cell(f"# Solution {n}: the answer.\nprint({n})") for n in range(1, solutions + 1)])
        (root / "book").mkdir(exist_ok=True)
        nbformat.write(notebook, root / "book" / f"{stem}.ipynb")

    html = root / "_build" / "html" / "book"
    html.mkdir(parents=True)
    (html / "figure.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
                                     '<rect width="40" height="20" fill="teal"/></svg>')
    (html / "intro.html").write_text(page("Intro", "<p>The chapters.</p>"))
    (html / "01_clean.html").write_text(page("Clean", "\n".join([
        CELL.format(tags="", input=code("print('hi')"), output=output("stream", "hi")),
        CELL.format(tags="", input=code("download()"), output=output("stderr", "Downloading: 100%")),
        '<img src="figure.svg" alt="a figure">',
        CELL.format(tags="tag_hide-input", input=SOLUTION.format(source="# Solution 1: the answer.\nprint(1)"),
                    output=output("stream", "1")),
    ]), colab=f"{COLAB}/01_clean.ipynb"))
    (html / "02_bad.html").write_text(page("Bad", "\n".join([
        CELL.format(tags="", input=code("1 / 0"), output=output(
            "traceback", "---\nZeroDivisionError  Traceback (most recent call last)\n----> 1 1 / 0\n\n"
            "ZeroDivisionError: division by zero")),
        CELL.format(tags="", input=code("warn()"), output=output("stderr", "UserWarning: something is off")),
        '<img src="figure.svg" alt="a figure"> <img src="missing.png" alt="gone">',
        CELL.format(tags="", input=code("x = '" + "wide " * 80 + "'"), output=""),
        CELL.format(tags="", input=code("# Colab only: install the companion package\n%pip install ."), output=""),
        CELL.format(tags="", input=code("# Solution 1: the answer.\nprint(1)"), output=output("stream", "1")),
    ]), colab=f"{COLAB}/01_clean.ipynb"))
    return root / "_build" / "html"


def run(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, str], str]:
    """Exit code, the table's line for each page, and the problems printed."""
    code = check_book.main([str(root / "_build" / "html"), "--root", str(root), *extra])
    out = capsys.readouterr().out
    table, _, problems = out.partition("\n\n")
    return code, {line.split()[0]: line for line in table.splitlines()[1:]}, problems


def test_a_missing_browser_exits_2_with_the_install_line(monkeypatch, tmp_path, capsys):
    make_site(tmp_path, ["01_clean"])
    monkeypatch.setattr(check_book, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(SystemExit) as exit:
        check_book.main([str(tmp_path / "_build" / "html"), "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit.value.code == 2
    assert err.count("\n") == 1 and "apt-get install chromium chromium-driver" in err and "Traceback" not in err


@needs_browser
def test_each_problem_is_reported_and_the_clean_page_passes(tmp_path, capsys):
    make_site(tmp_path, ["01_clean", "02_bad", "03_gone"])
    code, rows, problems = run(tmp_path, capsys, "--allow-stderr", "^Downloading")
    assert code == 1
    assert rows["intro"].endswith("ok") and rows["01_clean"].endswith("ok")
    assert rows["01_clean"].split()[1:3] == ["1/1", "1"]
    assert rows["02_bad"].split()[1:4] == ["1/2", "1", "1"]
    bad = [line.removeprefix("02_bad: ") for line in problems.splitlines() if line.startswith("02_bad: ")]
    for expected in ("traceback or error output: 'ZeroDivisionError: division by zero'",
                     "stderr output: 'UserWarning: something is off'",
                     "image did not load: missing.png",
                     "code wider than the page: \"x = 'wide wide",
                     "the Colab install cell is on the page",
                     f"no Colab link to {COLAB}/02_bad.ipynb (links to {COLAB}/01_clean.ipynb)",
                     "2 solution cells in the notebook, 1 on the page",
                     "solution cell not hidden behind a toggle (no tag_hide-input): '# Solution 1: the answer.'"):
        assert any(line.startswith(expected) for line in bad), (expected, bad)
    assert len(bad) == 8
    assert "03_gone: page missing" in problems
    assert not any(line.startswith(("intro:", "01_clean:")) for line in problems.splitlines())
    shots = tmp_path / "_build" / "screenshots"
    assert sorted(path.name for path in shots.iterdir()) == ["01_clean.png", "02_bad.png", "intro.png"]
    assert (shots / "02_bad.png").read_bytes().startswith(b"\x89PNG")


@needs_browser
def test_a_clean_book_exits_0(tmp_path, capsys):
    make_site(tmp_path, ["01_clean"])
    code, rows, problems = run(tmp_path, capsys, "--allow-stderr", "^Downloading",
                               "--screenshots", str(tmp_path / "shots"))
    assert code == 0 and list(rows) == ["intro", "01_clean"] and problems.strip() == "No problems."
    assert (tmp_path / "shots" / "01_clean.png").is_file()


@needs_browser
def test_every_page_of_both_editions_links_to_its_twin(tmp_path, capsys):
    # A Chinese edition under html/zh_CN: the English pages must link to their Chinese twins and back,
    # and a Chinese page must say it is Chinese and keep no paragraph in English.
    html = make_site(tmp_path, ["01_clean"])
    english, chinese = html / "book", html / "zh_CN" / "book"
    chinese.mkdir(parents=True)
    (chinese / "figure.svg").write_text((english / "figure.svg").read_text())

    def switch(href: str) -> str:
        return f'<a class="btn btn-sm language-switch" href="{href}">switch</a>'

    for stem in ("intro", "01_clean"):
        text = (english / f"{stem}.html").read_text()
        (english / f"{stem}.html").write_text(text.replace("<nav>", "<nav>" + switch(f"../zh_CN/book/{stem}.html")))
        # The Chinese intro is right; the Chinese chapter links to the wrong page, declares no
        # language and left one paragraph untranslated.
        if stem == "intro":
            zh = text.replace("<html>", '<html lang="zh-CN">').replace("<nav>", "<nav>" + switch("../../book/intro.html"))
            zh = zh.replace("<p>The chapters.</p>", "<p>各章（<code>make book</code> builds them all）。</p>")
        else:
            zh = text.replace("<nav>", "<nav>" + switch("../../book/intro.html")).replace(
                "</article>", "<p>Each chapter is a notebook that runs.</p></article>")
        (chinese / f"{stem}.html").write_text(zh)
    code, rows, problems = run(tmp_path, capsys, "--allow-stderr", "^Downloading")
    assert list(rows) == ["intro", "01_clean", "zh_CN-intro", "zh_CN-01_clean"]
    assert code == 1 and problems.strip().splitlines() == [
        "Problems:", f"zh_CN-01_clean: no language switch to the same page in the other edition ({english}/01_clean.html)",
        "zh_CN-01_clean: the page declares lang='', not 'zh-CN'",
        "zh_CN-01_clean: paragraph left in English: 'Each chapter is a notebook that runs.'"]
