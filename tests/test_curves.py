import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers import BertConfig, BertForSequenceClassification

from companion import curves, resources, settings

SENTENCES = Dataset.from_dict({
    "text": ["a wonderful film", "dull and far too long", "great acting", "a mess", "loved every minute of it",
             "boring", "superb", "awful script and worse acting", "a joy", "tedious"] * 3,
    "label": [1, 0, 1, 0, 1, 0, 1, 0, 1, 0] * 3})


def test_a_balanced_sample_holds_each_label_equally_and_is_seeded():
    sample = curves.balanced_sample(SENTENCES, 9, seed=1)
    assert sorted(np.bincount(sample["label"]).tolist()) == [4, 5] and len(set(sample["text"])) <= 9
    assert curves.balanced_sample(SENTENCES, 9, seed=1)["text"] == sample["text"]
    assert curves.balanced_sample(SENTENCES, 9, seed=2)["text"] != sample["text"]
    with pytest.raises(ValueError, match="cannot hold one row of each of the 2 labels"):
        curves.balanced_sample(SENTENCES, 1, seed=0)
    with pytest.raises(ValueError, match="a split that has 30"):
        curves.balanced_sample(SENTENCES, 31, seed=0)
    lopsided = SENTENCES.select([i for i in range(30) if SENTENCES[i]["label"] == 1] + [1, 3])
    with pytest.raises(ValueError, match="has 2 rows, fewer than the 8"):
        curves.balanced_sample(lopsided, 16, seed=0)


def test_small_samples_still_train_for_the_minimum_number_of_steps():
    assert curves.steps_for(32, batch_size=32, epochs=2, min_steps=20) == 20
    assert curves.steps_for(512, batch_size=32, epochs=2, min_steps=20) == 32
    assert curves.steps_for(100, batch_size=32, epochs=1.5, min_steps=1) == 6


def documents() -> Dataset:
    features = Features({"fileid": Value("string"), "text": Value("string"), "label": ClassLabel(names=["a", "b"])})
    return Dataset.from_dict({"fileid": ["d1", "d2", "d3"],
                              "text": [" ".join(f"w{i}" for i in range(10)), "one two three", "x y z u v w"],
                              "label": [0, 1, 1]}, features=features)


def test_passages_are_consecutive_words_that_keep_their_document():
    every = curves.passages(documents(), words=3, per_document=None)
    assert every["text"][:3] == ["w0 w1 w2", "w3 w4 w5", "w6 w7 w8"]  # the tail "w9" is dropped
    assert every["fileid"] == ["d1"] * 3 + ["d2"] + ["d3"] * 2 and every["label"] == [0, 0, 0, 1, 1, 1]
    assert every.features["label"].names == ["a", "b"]
    two = curves.passages(documents(), words=3, per_document=2)
    assert two["text"][:2] == ["w0 w1 w2", "w6 w7 w8"]  # the first and the last, evenly through the document
    with pytest.raises(ValueError, match="at least one word"):
        curves.passages(documents(), words=0, per_document=1)
    with pytest.raises(ValueError, match="no document has 50 words"):
        curves.passages(documents(), words=50, per_document=1)


def test_per_label_scores_and_the_majority_share():
    rows = curves.per_label({"confusion_matrix": [[3, 1], [0, 0]]}, ["x", "y"])
    assert rows[0] == {"genre": "x", "test rows": 4, "recall": 0.75, "precision": 1.0, "F1": 0.857}
    assert rows[1]["F1"] == 0.0 and rows[1]["test rows"] == 0
    assert curves.majority_share(Dataset.from_dict({"label": [2, 2, 1, 0]})) == 0.5
    with pytest.raises(ValueError, match="empty"):
        curves.majority_share(Dataset.from_dict({"label": []}))


@pytest.fixture(scope="module")
def tok(provisioned):
    return resources.tokenizer("all-MiniLM-L6-v2")


def tiny(tok, seed: int = settings.SEED) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                                    num_attention_heads=4, intermediate_size=64, num_labels=2,
                                                    max_position_embeddings=64))


def test_the_random_twin_has_the_architecture_but_none_of_the_weights(tok):
    trained = tiny(tok)
    twin = curves.random_twin(trained, seed=1)
    settings_of = lambda model: {k: v for k, v in model.config.to_dict().items() if k != "transformers_version"}  # noqa: E731
    assert type(twin) is type(trained) and settings_of(twin) == settings_of(trained)
    mine, theirs = dict(trained.named_parameters()), dict(twin.named_parameters())
    assert mine.keys() == theirs.keys() and all(mine[k].shape == theirs[k].shape for k in mine)
    assert not torch.equal(mine["bert.encoder.layer.0.attention.self.query.weight"],
                           theirs["bert.encoder.layer.0.attention.self.query.weight"])


def test_a_learning_curve_has_one_point_per_model_size_and_seed(tok):
    ds = DatasetDict(train=SENTENCES, validation=SENTENCES.select(range(8)), test=SENTENCES.select(range(10)))
    profile = settings.profile()
    points = curves.learning_curve({"tiny": lambda seed: tiny(tok, seed)}, tok, ds, (4, 8), 2, lr={"tiny": 1e-3},
                                   epochs=1, min_steps=2, profile=profile)
    assert [(p.model, p.rows, p.seed) for p in points] == [
        ("tiny", 4, 0), ("tiny", 4, 1), ("tiny", 8, 0), ("tiny", 8, 1),
        ("bag of words", 4, 0), ("bag of words", 4, 1), ("bag of words", 8, 0), ("bag of words", 8, 1)]
    assert all(0.0 <= p.accuracy <= 1.0 for p in points)
    table = curves.summary(points)
    assert [(r["model"], r["rows"], r["seeds"]) for r in table] == [("tiny", 4, 2), ("tiny", 8, 2),
                                                                   ("bag of words", 4, 2), ("bag of words", 8, 2)]
    assert all(r["low"] <= r["mean"] <= r["high"] for r in table)
    with pytest.raises(ValueError, match="no learning rate for tiny"):
        curves.learning_curve({"tiny": lambda seed: tiny(tok, seed)}, tok, ds, (4,), 1, lr={}, epochs=1,
                              min_steps=1, profile=profile)
