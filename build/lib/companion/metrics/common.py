"""What the offline evaluate modules share: their description and the sklearn computation.

Each module (``accuracy/accuracy.py`` ...) matches the hub module of the same name
(``evaluate-metric/<name>``): same inputs, same keyword arguments, same output key.
"""

from __future__ import annotations

import datasets
import evaluate
from sklearn import metrics as sk

CITATION = """@article{scikit-learn, title={Scikit-learn: Machine Learning in {P}ython},
author={Pedregosa, F. and others}, journal={Journal of Machine Learning Research}, volume={12},
pages={2825--2830}, year={2011}}"""

INPUTS = """predictions (list of int): predicted labels. references (list of int): true labels.
Keyword arguments are passed on to the scikit-learn function of the same name
(e.g. ``average``, ``pos_label``, ``labels``, ``sample_weight``)."""

_FUNCTIONS = {"accuracy": sk.accuracy_score, "precision": sk.precision_score,
              "recall": sk.recall_score, "f1": sk.f1_score}


def info(description: str) -> evaluate.MetricInfo:
    """The MetricInfo of a label-comparing metric (integer predictions and references)."""
    return evaluate.MetricInfo(
        description=description, citation=CITATION, inputs_description=INPUTS,
        features=datasets.Features({"predictions": datasets.Value("int32"),
                                    "references": datasets.Value("int32")}),
        reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html"])


def compute(name: str, predictions: list[int], references: list[int], **kwargs: object) -> dict[str, float]:
    """``{name: score}`` from the scikit-learn function of that name (an array when average=None)."""
    score = _FUNCTIONS[name](references, predictions, **kwargs)
    return {name: float(score) if getattr(score, "size", 1) == 1 else score}
