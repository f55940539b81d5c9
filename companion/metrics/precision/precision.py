"""Precision: of the examples predicted positive, the share that are positive
(offline twin of the hub module `precision`)."""

import evaluate

from companion.metrics.common import compute, info


class Precision(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return info(__doc__)

    def _compute(self, predictions, references, **kwargs):
        return compute("precision", predictions, references, **kwargs)
