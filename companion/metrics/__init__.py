"""Evaluation metrics through ``evaluate.load``, online and offline alike.

Online, :func:`load` passes the name to ``evaluate.load`` (the hub module); offline it passes the path
of the twin module kept in this package. Either way the caller gets an ``EvaluationModule`` with the
same ``compute(predictions=..., references=...)``, and the same keyword arguments: the twins refuse
what the hub modules refuse (the hub ``f1`` takes no ``zero_division``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import evaluate
import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import confusion_matrix

from .. import settings

CLASSIFICATION = ("accuracy", "precision", "recall", "f1")
NAMES = (*CLASSIFICATION, "squad")
_HERE = Path(__file__).parent


def load(name: str) -> evaluate.EvaluationModule:
    """The evaluate module ``name`` (one of :data:`NAMES`) from the active source."""
    if name not in NAMES:
        raise ValueError(f"unknown metric {name!r}; the companion provides {', '.join(NAMES)}.")
    if settings.source() == "hub":
        return evaluate.load(name)
    return evaluate.load(str(_HERE / name / f"{name}.py"))


def classification(predictions: list[int] | np.ndarray, references: list[int] | np.ndarray,
                   num_labels: int = 2) -> dict[str, object]:
    """Accuracy, precision, recall, F1 (binary for two labels, macro-averaged above) and the
    confusion matrix (rows: true label, columns: predicted) as a JSON-ready dict."""
    predictions, references = np.asarray(predictions), np.asarray(references)
    if predictions.shape != references.shape or predictions.size == 0:
        raise ValueError(f"need as many predictions as references, and at least one:"
                         f" got {predictions.size} and {references.size}")
    average = "binary" if num_labels == 2 else "macro"
    scores: dict[str, object] = {}
    for name, kwargs in (("accuracy", {}), ("precision", {"average": average, "zero_division": 0}),
                         ("recall", {"average": average, "zero_division": 0}), ("f1", {"average": average})):
        with warnings.catch_warnings():
            # the hub f1 takes no zero_division: its default ("warn") scores an undefined F1 as 0, as
            # precision and recall do with zero_division=0, and warns; the warning is the only difference
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            scores.update(load(name).compute(predictions=predictions, references=references, **kwargs))
    scores["confusion_matrix"] = confusion_matrix(references, predictions, labels=range(num_labels)).tolist()
    return scores
