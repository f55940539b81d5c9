"""Precision: of the examples predicted positive, the share that are positive
(offline twin of the hub module `precision`)."""

import evaluate

from companion.metrics.common import compute, info


class Precision(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return info(__doc__)

    def _compute(self, predictions, references, labels=None, pos_label=1, average="binary",
                 sample_weight=None, zero_division="warn"):
        return compute("precision", predictions, references, labels=labels, pos_label=pos_label,
                       average=average, sample_weight=sample_weight, zero_division=zero_division)
