"""F1: the harmonic mean of precision and recall (offline twin of the hub module `f1`)."""

import evaluate

from companion.metrics.common import compute, info


class F1(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return info(__doc__)

    def _compute(self, predictions, references, labels=None, pos_label=1, average="binary",
                 sample_weight=None):
        return compute("f1", predictions, references, labels=labels, pos_label=pos_label,
                       average=average, sample_weight=sample_weight)
