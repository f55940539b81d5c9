"""Recall: of the positive examples, the share predicted positive (offline twin of the hub module `recall`)."""

import evaluate

from companion.metrics.common import compute, info


class Recall(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return info(__doc__)

    def _compute(self, predictions, references, **kwargs):
        return compute("recall", predictions, references, **kwargs)
