"""The chapters as files: the table of contents lists every notebook; one repository URL (_config.yml)
behind every install cell and Colab badge; what the install cell does on Colab (simulated: no pip, no
network)."""

from __future__ import annotations

import importlib.metadata
import io
import subprocess
import sys
import tempfile
import types
import urllib.request
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


def install_cell(path: Path) -> nbformat.NotebookNode:
    return next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def test_every_chapter_opens_with_the_same_install_cell_naming_the_configured_repository():
    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    cells = {path.name: install_cell(path) for path in NOTEBOOKS}
    assert len(cells) == len(NOTEBOOKS) >= 7 and len({c.source for c in cells.values()}) == 1, "install cells differ"
    source = next(iter(cells.values())).source
    assert f'REPOSITORY = "{repository["url"]}"' in source and f'BRANCH = "{repository["branch"]}"' in source
    assert all(c.outputs == [] and c.execution_count is None for c in cells.values())
    assert all(c.metadata.get("tags") == ["remove-cell"] for c in cells.values()), "shown on the web page"


def test_table_of_contents_lists_every_chapter_in_file_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert [entry["file"] for entry in toc["chapters"]] == [f"book/{path.stem}" for path in NOTEBOOKS]


def test_every_colab_badge_opens_its_own_notebook_in_the_configured_repository():
    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    github = repository["url"].removeprefix("https://github.com/")
    for path in NOTEBOOKS:
        first = nbformat.read(path, as_version=4).cells[0]
        target = f"https://colab.research.google.com/github/{github}/blob/{repository['branch']}/book/{path.name}"
        assert first.cell_type == "markdown" and f"]({target})" in first.source, path.name


def test_results_page_is_executed_on_every_build_and_the_chapters_are_cached():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    forced = [path.stem for path in NOTEBOOKS
              if nbformat.read(path, as_version=4).metadata.get("mystnb", {}).get("execution_mode") == "force"]
    assert forced == ["10_results"]


class FakeDistribution:
    def __init__(self, name: str, version: str):
        self.metadata, self.version = {"Name": name}, version


@pytest.fixture
def colab(monkeypatch, tmp_path):
    """Run the install cell as on Colab: google.colab imported, requirements.txt served from this
    checkout, pip recorded; pip 'installs' transformers 5.23.0 over an imported 4.0."""
    calls: dict[str, list] = {"urls": [], "pip": []}
    versions = {"transformers": "4.0"}

    def urlopen(url):
        calls["urls"].append(url)
        return io.BytesIO((ROOT / "requirements.txt").read_bytes())

    def run(cmd, check):
        calls["pip"].append(cmd)
        versions["transformers"] = "5.23.0"
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(importlib.metadata, "distributions",
                        lambda: [FakeDistribution(n, v) for n, v in versions.items()])
    monkeypatch.setattr(importlib.metadata, "packages_distributions", lambda: {"transformers": ["transformers"]})
    monkeypatch.delenv("COMPANION_SOURCE")
    return calls, versions


def test_install_cell_on_colab_pins_all_but_torch_uses_the_hub_and_asks_for_a_restart(colab, monkeypatch, capsys):
    import os

    import transformers  # noqa: F401  (imported before the cell, as a reader may have done)

    calls, _ = colab
    exec(install_cell(NOTEBOOKS[0]).source, {})
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert os.environ["COMPANION_SOURCE"] == "hub"
    assert calls["urls"] == [url.replace("https://github.com/", "https://raw.githubusercontent.com/")
                             + "/main/requirements.txt"]
    (pip,) = calls["pip"]
    assert pip[-1] == f"pretrained-transformers-companion @ git+{url}@main"
    constraints = Path(pip[pip.index("-c") + 1]).read_text().splitlines()
    assert "transformers==5.23.0" in constraints and "datasets==5.2.0" in constraints
    assert not [line for line in constraints if line.startswith("torch") or "[" in line or line.startswith("#")]
    assert "Restart the session" in capsys.readouterr().out


def test_install_cell_asks_for_no_restart_when_nothing_imported_changed(colab, monkeypatch, capsys):
    _, versions = colab
    versions["transformers"] = "5.23.0"
    exec(install_cell(NOTEBOOKS[0]).source, {})
    assert "Restart" not in capsys.readouterr().out


def test_install_cell_does_nothing_off_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip ran off Colab"))
    exec(install_cell(NOTEBOOKS[0]).source, {})
