"""Each chapter's measured figures as a small JSON file, and the scores other chapters read from it.

A chapter writes ``<folder>/<chapter>.<profile>.json`` with :func:`write`. Besides its own figures, the
record holds ``scores``: one :func:`score` row per model and method it evaluated, under a name. Other
chapters and the results chapter read those rows through a :class:`Key` (:data:`FINE_TUNED_ENCODER`,
...) with :func:`entry`, never through display strings, and :func:`table` gathers every row.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import settings

RESULTS_VAR = "COMPANION_RESULTS"
SCORES = "scores"  # the key of a record's score rows


@dataclass(frozen=True)
class Key:
    """Where a score lives: the chapter (notebook name) that writes it, and the row's name there."""

    chapter: str
    name: str


FINE_TUNED_ENCODER = Key("01_finetuning_workflow", "fine-tuned encoder")
LEXICON = Key("01_finetuning_workflow", "VADER lexicon")
BY_HAND_LOOP = Key("02_training_by_hand", "loop written by hand")
GPT_STYLE_DECODER = Key("04_gpt", "GPT-style decoder")


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


def wilson_interval(correct: float, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % for ``z`` = 1.96) of a proportion: ``correct`` successes (or the
    share times ``total``) out of ``total`` trials, as (low, high)."""
    if total <= 0:
        raise ValueError(f"an interval needs at least one trial, got total={total}")
    share = correct / total
    centre = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def score(task: str, model: str, method: str, value: float, test_rows: int, *, metric: str = "accuracy",
          train_seconds: float = 0.0, train_rows: int = 0, trainable_parameters: int = 0) -> dict[str, object]:
    """One score row: ``value`` of ``metric`` on ``test_rows`` test examples of ``task`` by ``model``
    used with ``method``, and what training it took. Accuracy rows carry their 95 % Wilson interval
    (other metrics: ``None``)."""
    if not 0.0 <= value <= 1.0 or test_rows <= 0:
        raise ValueError(f"a score is a share in [0, 1] over at least one test row: got {value} over {test_rows}")
    interval = list(wilson_interval(value * test_rows, test_rows)) if metric == "accuracy" else None
    return {"task": task, "model": model, "method": method, "metric": metric, "score": float(value),
            "interval": interval, "test_rows": int(test_rows), "train_seconds": float(train_seconds),
            "train_rows": int(train_rows), "trainable_parameters": int(trainable_parameters)}


def entry(key: Key, profile: str | None = None) -> dict[str, object] | None:
    """The score row ``key`` names, with the record's ``source`` and ``profile``; ``None`` when its
    chapter has not run in this profile (or wrote no such row), after printing which row is missing."""
    try:
        record = read(key.chapter, profile)
    except FileNotFoundError:
        print(f"(no row for {key.name!r}: the chapter {key.chapter!r} has not been run in the"
              f" {profile or settings.profile().name!r} profile yet)")
        return None
    row = record.get(SCORES, {}).get(key.name)
    if row is None:
        print(f"(no row for {key.name!r}: the chapter {key.chapter!r} wrote none; run it again)")
        return None
    return {**row, "source": record["source"], "profile": record["profile"]}


def table(profile: str | None = None) -> pd.DataFrame:
    """Every score row of every chapter written for ``profile`` (default: the active one), one row each,
    indexed by chapter and name, with the record's source and profile."""
    profile = profile or settings.profile().name
    rows = []
    for path in sorted(folder().glob(f"*.{profile}.json")):
        record = json.loads(path.read_text())
        for name, row in record.get(SCORES, {}).items():
            rows.append({"chapter": record["chapter"], "name": name, **row, "source": record["source"],
                         "profile": record["profile"]})
    if not rows:
        raise FileNotFoundError(f"no chapter has written scores to {folder()} in the {profile!r} profile")
    return pd.DataFrame(rows).set_index(["chapter", "name"])
