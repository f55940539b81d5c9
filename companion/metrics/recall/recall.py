"""Recall: of the positive examples, the share predicted positive (offline twin of the hub module `recall`)."""

import evaluate

from companion.metrics.common import compute, info


class Recall(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return info(__doc__)

    def _compute(self, predictions, references, labels=None, pos_label=1, average="binary",
                 sample_weight=None, zero_division="warn"):
        return compute("recall", predictions, references, labels=labels, pos_label=pos_label,
                       average=average, sample_weight=sample_weight, zero_division=zero_division)
