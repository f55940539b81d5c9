"""SQuAD v1.1 exact match and F1 (offline twin of the hub module `squad`): answers are compared
after lower-casing and removing punctuation, articles and extra white space; each prediction gets
the best score over its gold answers; both scores are percentages."""

import collections
import re
import string

import datasets
import evaluate

CITATION = """@inproceedings{rajpurkar-etal-2016-squad, title={{SQ}u{AD}: 100,000+ Questions for Machine
Comprehension of Text}, author={Rajpurkar, Pranav and Zhang, Jian and Lopyrev, Konstantin and Liang, Percy},
booktitle={Proceedings of EMNLP}, year={2016}, pages={2383--2392}}"""

INPUTS = """predictions: list of {"id": str, "prediction_text": str}.
references: list of {"id": str, "answers": {"text": list of str, "answer_start": list of int}}."""


def normalize(text: str) -> str:
    """Lower case, no punctuation, no articles (a, an, the), single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def exact(prediction: str, truth: str) -> float:
    return float(normalize(prediction) == normalize(truth))


def f1(prediction: str, truth: str) -> float:
    """Harmonic mean of token precision and recall between normalized answers."""
    pred, gold = normalize(prediction).split(), normalize(truth).split()
    common = sum((collections.Counter(pred) & collections.Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


class Squad(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=__doc__, citation=CITATION, inputs_description=INPUTS,
            features=datasets.Features({
                "predictions": {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")},
                "references": {"id": datasets.Value("string"),
                               "answers": datasets.Sequence({"text": datasets.Value("string"),
                                                             "answer_start": datasets.Value("int32")})}}),
            reference_urls=["https://rajpurkar.github.io/SQuAD-explorer/"])

    def _compute(self, predictions, references):
        gold = {ref["id"]: ref["answers"]["text"] for ref in references}
        missing = [p["id"] for p in predictions if p["id"] not in gold]
        if missing:
            raise ValueError(f"{len(missing)} predictions have no reference, e.g. id {missing[0]!r}")
        em = [max(exact(p["prediction_text"], t) for t in gold[p["id"]]) for p in predictions]
        f = [max(f1(p["prediction_text"], t) for t in gold[p["id"]]) for p in predictions]
        return {"exact_match": 100 * sum(em) / len(em), "f1": 100 * sum(f) / len(f)}
