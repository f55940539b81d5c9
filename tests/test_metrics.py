import inspect

import numpy as np
import pytest
from sklearn import metrics as sk
from sklearn.exceptions import UndefinedMetricWarning

from companion import metrics


@pytest.mark.parametrize("name", metrics.CLASSIFICATION)
def test_offline_modules_load_through_evaluate_and_match_sklearn(name):
    rng = np.random.default_rng(0)
    preds, refs = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    module = metrics.load(name)
    assert type(module).__module__.split(".")[-1] == name
    expected = {"accuracy": sk.accuracy_score, "precision": sk.precision_score,
                "recall": sk.recall_score, "f1": sk.f1_score}[name](refs, preds)
    assert module.compute(predictions=preds, references=refs) == {name: pytest.approx(expected)}


def test_keyword_arguments_reach_sklearn():
    result = metrics.load("f1").compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2], average="macro")
    assert result["f1"] == pytest.approx(sk.f1_score([0, 1, 1, 2], [0, 1, 2, 2], average="macro"))


# The keyword arguments of the hub modules' `_compute` (metrics/<name>/<name>.py in huggingface/evaluate at
# tag v0.4.6, commit a4fcb45252709bd07fba897afd4575735716664f): what `evaluate.load(name)` accepts online.
HUB_COMPUTE = {
    "accuracy": {"normalize": True, "sample_weight": None},
    "precision": {"labels": None, "pos_label": 1, "average": "binary", "sample_weight": None, "zero_division": "warn"},
    "recall": {"labels": None, "pos_label": 1, "average": "binary", "sample_weight": None, "zero_division": "warn"},
    "f1": {"labels": None, "pos_label": 1, "average": "binary", "sample_weight": None},
}


@pytest.mark.parametrize("name", metrics.CLASSIFICATION)
def test_offline_twins_take_exactly_the_hub_modules_keywords(name):
    parameters = inspect.signature(metrics.load(name)._compute).parameters
    assert list(parameters)[:2] == ["predictions", "references"]
    assert {k: p.default for k, p in parameters.items() if k not in ("predictions", "references")} == HUB_COMPUTE[name]


def test_offline_f1_refuses_zero_division_like_the_hub_module():
    with pytest.raises(TypeError, match="zero_division"):
        metrics.load("f1").compute(predictions=[0, 1], references=[0, 1], zero_division=0)


@pytest.mark.parametrize("num_labels", [2, 3])
def test_classification_passes_only_keywords_the_hub_modules_accept(monkeypatch, num_labels):
    calls = {}

    class HubModule:
        def __init__(self, name):
            self.name = name

        def compute(self, predictions, references, **kwargs):
            unknown = set(kwargs) - set(HUB_COMPUTE[self.name])
            if unknown:
                raise TypeError(f"_compute() got an unexpected keyword argument {unknown.pop()!r}")
            calls[self.name] = kwargs
            return {self.name: 0.5}

    monkeypatch.setattr(metrics, "load", HubModule)
    scores = metrics.classification([0, 1, 1, 0], [0, 1, 0, 0], num_labels)
    assert set(calls) == set(metrics.CLASSIFICATION) and scores["f1"] == 0.5
    assert calls["precision"]["zero_division"] == 0 and "zero_division" not in calls["f1"]


def test_classification_scores_an_undefined_f1_as_zero_without_a_warning(recwarn):
    scores = metrics.classification([0, 0, 0], [0, 0, 0])  # no positive predicted or true: F1 is 0/0
    assert scores["precision"] == scores["recall"] == scores["f1"] == 0.0 and scores["accuracy"] == 1.0
    assert not [w for w in recwarn if issubclass(w.category, UndefinedMetricWarning)]


def test_classification_scores_a_known_case():
    scores = metrics.classification([1, 0, 1, 1], [1, 0, 0, 1])
    assert scores["accuracy"] == 0.75 and scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == 1.0 and scores["f1"] == pytest.approx(0.8)
    assert scores["confusion_matrix"] == [[1, 1], [0, 2]]


def test_classification_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="as many predictions as references"):
        metrics.classification([1, 0], [1])


def test_unknown_metric_is_named():
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        metrics.load("bleu")


def test_squad_scores_like_the_official_script():
    refs = [{"id": "a", "answers": {"text": ["the Eiffel Tower", "Eiffel Tower"], "answer_start": [0, 4]}},
            {"id": "b", "answers": {"text": ["17.56 million"], "answer_start": [10]}}]
    preds = [{"id": "a", "prediction_text": "Eiffel tower!"}, {"id": "b", "prediction_text": "about 17.56"}]
    result = metrics.load("squad").compute(predictions=preds, references=refs)
    # a: exact after normalization; b: 1 common token, precision 1/2, recall 1/2
    assert result == {"exact_match": pytest.approx(50.0), "f1": pytest.approx(75.0)}


def test_squad_refuses_a_prediction_without_reference():
    with pytest.raises(ValueError, match="no reference"):
        metrics.load("squad").compute(predictions=[{"id": "x", "prediction_text": ""}],
                                      references=[{"id": "y", "answers": {"text": ["a"], "answer_start": [0]}}])
