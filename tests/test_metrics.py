import numpy as np
import pytest
from sklearn import metrics as sk

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
