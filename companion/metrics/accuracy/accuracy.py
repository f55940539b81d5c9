"""Accuracy: the share of predictions equal to the references (offline twin of the hub module `accuracy`)."""

import evaluate

from companion.metrics.common import compute, info


class Accuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return info(__doc__)

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        return compute("accuracy", predictions, references, normalize=normalize, sample_weight=sample_weight)
