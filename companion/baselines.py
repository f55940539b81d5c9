"""Baselines without a transformer: the VADER sentiment lexicon (learns nothing from the training split)
and a bag-of-words logistic regression (learns which words go with which label)."""

from __future__ import annotations

from collections.abc import Iterable

from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


def vader_scores(texts: Iterable[str]) -> list[float]:
    """VADER's compound score (-1..+1) of each text: a hand-built lexicon plus rules (Hutto & Gilbert 2014)."""
    texts = list(texts)
    if not texts:
        raise ValueError("no texts to score")
    analyzer = SentimentIntensityAnalyzer()
    return [analyzer.polarity_scores(text)["compound"] for text in texts]


def threshold_labels(scores: Iterable[float], threshold: float = 0.0) -> list[int]:
    """1 (positive) where a score is at least ``threshold``, else 0 (negative)."""
    return [int(score >= threshold) for score in scores]


def vader_labels(texts: Iterable[str], threshold: float = 0.0) -> list[int]:
    """VADER's label of each text: positive when its compound score is at least ``threshold``."""
    return threshold_labels(vader_scores(texts), threshold)


def best_threshold(scores: list[float], labels: list[int]) -> tuple[float, float]:
    """The threshold on ``scores`` (tried at every distinct score) with the highest accuracy on
    ``labels``, and that accuracy. Tune it on validation data, never on the test split."""
    if not scores or len(scores) != len(labels):
        raise ValueError(f"need one label per score, and at least one: got {len(scores)} and {len(labels)}")
    candidates = sorted(set(scores)) + [float("inf")]
    accuracy = lambda t: sum(p == y for p, y in zip(threshold_labels(scores, t), labels)) / len(labels)  # noqa: E731
    best = max(candidates, key=accuracy)
    return best, accuracy(best)


def bag_of_words(train_texts: list[str], train_labels: list[int], test_texts: list[str]) -> list[int]:
    """Labels predicted for ``test_texts`` by a logistic regression on which words each text contains
    (binary counts of lower-cased words), fitted on the training texts and labels."""
    if not train_texts or len(train_texts) != len(train_labels):
        raise ValueError(f"need one label per training text, and at least one: got {len(train_texts)}"
                         f" and {len(train_labels)}")
    if len(set(train_labels)) < 2:
        raise ValueError("the training labels hold a single class; a classifier needs at least two")
    words = CountVectorizer(binary=True)
    model = LogisticRegression(max_iter=2_000).fit(words.fit_transform(train_texts), train_labels)
    return [int(label) for label in model.predict(words.transform(list(test_texts)))]
