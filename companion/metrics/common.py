"""What the offline evaluate modules share: their description and the sklearn computation.

Each module (``accuracy/accuracy.py`` ...) matches the hub module of the same name
(``evaluate-metric/<name>``, huggingface/evaluate v0.4.6): same inputs, same output key, and a
``_compute`` with the same keyword arguments and defaults, so that a keyword the hub module refuses
is refused offline too.
"""

from __future__ import annotations

import datasets
import evaluate
from sklearn import metrics as sk

CITATION = """@article{scikit-learn, title={Scikit-learn: Machine Learning in {P}ython},
author={Pedregosa, F. and others}, journal={Journal of Machine Learning Research}, volume={12},
pages={2825--2830}, year={2011}}"""

INPUTS = """predictions (list of int): predicted labels. references (list of int): true labels.
Keyword arguments: those of the hub module of the same name, passed on to the scikit-learn function
(accuracy: ``normalize``, ``sample_weight``; precision and recall: ``labels``, ``pos_label``,
``average``, ``sample_weight``, ``zero_division``; f1: the same without ``zero_division``)."""

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
