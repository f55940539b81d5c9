"""Accuracy: the share of predictions equal to the references (offline twin of the hub module `accuracy`)."""

import evaluate

from companion.metrics.common import compute, info


class Accuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return info(__doc__)

    def _compute(self, predictions, references, **kwargs):
        return compute("accuracy", predictions, references, **kwargs)
