"""What pretraining buys: learning curves, test accuracy against the number of labelled training rows,
for a pretrained encoder, the same architecture from random weights, and a bag of words.

Each point trains on a balanced seeded sample of the training split (half of each label), for at least
``min_steps`` optimizer steps however small the sample, and is scored on the whole test split; several
seeds per size give its spread. :func:`passages` cuts long documents into labelled passages for the
many-class case (the Brown genres), keeping each document's passages in its own split.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
from datasets import Dataset, DatasetDict
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase, set_seed

from . import baselines, settings, training


def random_twin(model: PreTrainedModel, seed: int = settings.SEED) -> PreTrainedModel:
    """A classifier of ``model``'s architecture and configuration (same layers, widths, vocabulary and
    head) whose every weight is drawn afresh, as before any pretraining."""
    set_seed(seed)
    return AutoModelForSequenceClassification.from_config(model.config)


def balanced_sample(part: Dataset, rows: int, seed: int) -> Dataset:
    """``rows`` rows of ``part``, as many of each label as the labels allow (the remainder to the first
    labels), drawn with ``seed``; in a seeded random order."""
    labels = np.asarray(part["label"])
    classes = np.unique(labels)
    if rows < len(classes):
        raise ValueError(f"{rows} rows cannot hold one row of each of the {len(classes)} labels")
    if rows > len(part):
        raise ValueError(f"asked for {rows} rows of a split that has {len(part)}")
    rng = np.random.default_rng(seed)
    share = [rows // len(classes) + (i < rows % len(classes)) for i in range(len(classes))]
    chosen: list[int] = []
    for label, n in zip(classes, share):
        pool = np.flatnonzero(labels == label)
        if n > len(pool):
            raise ValueError(f"label {label} has {len(pool)} rows, fewer than the {n} a balanced sample needs")
        chosen += rng.choice(pool, size=n, replace=False).tolist()
    return part.select(rng.permutation(chosen).tolist())


def steps_for(rows: int, batch_size: int, epochs: float, min_steps: int) -> int:
    """Optimizer steps for a training set of ``rows``: ``epochs`` passes, but at least ``min_steps``
    (a sample of 32 rows makes one batch per epoch; a few steps would leave any model untrained)."""
    return max(min_steps, math.ceil(epochs * math.ceil(rows / batch_size)))


@dataclass(frozen=True)
class Point:
    """One trained and scored model: which (``model``), on how many rows, with which seed; its test
    accuracy and its training seconds (0 for the bag of words, which fits in well under a second)."""

    model: str
    rows: int
    seed: int
    accuracy: float
    seconds: float


def learning_curve(build: dict[str, Callable[[int], PreTrainedModel]], tokenizer: PreTrainedTokenizerBase,
                   ds: DatasetDict, sizes: tuple[int, ...], seeds: int, *, lr: dict[str, float], epochs: float,
                   min_steps: int, profile: settings.Profile) -> list[Point]:
    """Fine-tune a fresh model from ``build[name](seed)`` for every size in ``sizes`` and seed in
    ``range(seeds)`` (learning rate ``lr[name]``, :func:`steps_for` steps, batches of the profile's size),
    and score each on the test split; the bag of words (:func:`companion.baselines.bag_of_words`) on the
    same samples. Returns one :class:`Point` per run, models in ``build``'s order, then the bag of words."""
    if missing := set(build) - set(lr):
        raise ValueError(f"no learning rate for {', '.join(sorted(missing))}")
    points: list[Point] = []
    runs = [(name, rows, seed) for name in build for rows in sizes for seed in range(seeds)]
    for name, rows, seed in tqdm(runs, desc="learning curves"):
        sample = DatasetDict(train=balanced_sample(ds["train"], rows, seed), validation=ds["validation"],
                             test=ds["test"])
        steps = steps_for(rows, profile.batch_size, epochs, min_steps)
        start = time.perf_counter()
        run = training.finetune(build[name](seed), tokenizer, sample, lr=lr[name], name=f"curve-{name}",
                                profile=profile, max_steps=steps, evaluate_during=False)
        points.append(Point(name, rows, seed, float(run.evaluate("test")["accuracy"]),
                            round(time.perf_counter() - start, 1)))
        del run
    for rows in sizes:
        for seed in range(seeds):
            sample = balanced_sample(ds["train"], rows, seed)
            predicted = baselines.bag_of_words(list(sample["text"]), list(sample["label"]), list(ds["test"]["text"]))
            accuracy = float(np.mean(np.asarray(predicted) == np.asarray(ds["test"]["label"])))
            points.append(Point("bag of words", rows, seed, accuracy, 0.0))
    return points


def summary(points: list[Point]) -> list[dict[str, object]]:
    """One row per model and size: the mean accuracy over seeds, its lowest and highest, the number of
    seeds, and the mean training seconds."""
    groups: dict[tuple[str, int], list[Point]] = {}
    for point in points:
        groups.setdefault((point.model, point.rows), []).append(point)
    return [{"model": model, "rows": rows, "mean": float(np.mean([p.accuracy for p in group])),
             "low": min(p.accuracy for p in group), "high": max(p.accuracy for p in group), "seeds": len(group),
             "seconds": round(float(np.mean([p.seconds for p in group])), 1)}
            for (model, rows), group in groups.items()]


def as_rows(points: list[Point]) -> list[dict[str, object]]:
    """The points as JSON-ready dicts."""
    return [asdict(point) for point in points]


def passages(documents: Dataset, words: int, per_document: int | None) -> Dataset:
    """Cut each document (``text``, ``label``, ``fileid``) into consecutive passages of ``words``
    whitespace-separated words (a shorter tail is dropped), keeping ``per_document`` of them taken evenly
    through the document (``None``: all). Each passage keeps its document's label and ``fileid``, so
    passages of one document never cross a split made by document."""
    if words < 1:
        raise ValueError(f"a passage needs at least one word, got {words}")
    rows: dict[str, list] = {"text": [], "label": [], "fileid": []}
    for text, label, fileid in zip(documents["text"], documents["label"], documents["fileid"]):
        tokens = text.split()
        count = len(tokens) // words
        if count == 0:
            continue
        keep = range(count) if per_document is None or per_document >= count else \
            np.linspace(0, count - 1, per_document).round().astype(int)
        for i in dict.fromkeys(int(k) for k in keep):
            rows["text"].append(" ".join(tokens[i * words:(i + 1) * words]))
            rows["label"].append(label)
            rows["fileid"].append(fileid)
    if not rows["text"]:
        raise ValueError(f"no document has {words} words")
    return Dataset.from_dict(rows, features=documents.select_columns(["text", "label", "fileid"]).features)


def per_label(scores: dict[str, object], names: list[str]) -> list[dict[str, object]]:
    """Per-label rows from a confusion matrix (``scores["confusion_matrix"]``, rows true, columns
    predicted): the label, its test rows, recall, precision and F1."""
    matrix = np.asarray(scores["confusion_matrix"])
    rows = []
    for i, name in enumerate(names):
        true, predicted, hit = matrix[i].sum(), matrix[:, i].sum(), matrix[i, i]
        recall = hit / true if true else 0.0
        precision = hit / predicted if predicted else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"genre": name, "test rows": int(true), "recall": round(float(recall), 3),
                     "precision": round(float(precision), 3), "F1": round(float(f1), 3)})
    return rows


def majority_share(part: Dataset) -> float:
    """The share of ``part``'s rows that carry its most frequent label: the accuracy of always guessing it."""
    if len(part) == 0:
        raise ValueError("the split is empty")
    return float(np.bincount(np.asarray(part["label"])).max() / len(part))

