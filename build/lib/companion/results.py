"""Each chapter's measured figures as a small JSON file, for the book's results table."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from . import settings

RESULTS_VAR = "COMPANION_RESULTS"


def folder() -> Path:
    """``COMPANION_RESULTS`` when set, else ``results/`` beside the running notebook."""
    return Path(os.environ.get(RESULTS_VAR) or Path.cwd() / "results")


def write(chapter: str, figures: dict[str, object]) -> Path:
    """Write ``figures`` (JSON-ready) with the chapter, profile, source and date to
    ``<folder>/<chapter>.<profile>.json`` and return the path."""
    profile = settings.profile().name
    record = {"chapter": chapter, "profile": profile, "source": settings.source(),
              "written": time.strftime("%Y-%m-%dT%H:%M:%S"), **figures}
    path = folder() / f"{chapter}.{profile}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=float) + "\n")
    return path


def read(chapter: str, profile: str | None = None) -> dict[str, object]:
    """The figures a chapter wrote for ``profile`` (default: the active one)."""
    path = folder() / f"{chapter}.{profile or settings.profile().name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run the chapter {chapter!r} first")
    return json.loads(path.read_text())
