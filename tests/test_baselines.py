import pytest

from companion import baselines


def test_vader_baseline_reads_obvious_sentiment():
    assert baselines.vader_labels(["A wonderful, moving film.", "A horrible, boring mess."]) == [1, 0]
    with pytest.raises(ValueError, match="no texts"):
        baselines.vader_scores([])


def test_best_threshold_finds_the_separating_score():
    threshold, accuracy = baselines.best_threshold([-0.5, -0.1, 0.2, 0.6], [0, 0, 0, 1])
    assert threshold == 0.6 and accuracy == 1.0
    with pytest.raises(ValueError, match="one label per score"):
        baselines.best_threshold([0.1], [])


def test_threshold_labels_split_at_the_threshold():
    assert baselines.threshold_labels([-0.2, 0.0, 0.3], threshold=0.0) == [0, 1, 1]


def test_bag_of_words_learns_which_words_go_with_a_label():
    texts = ["a great film", "great acting", "a dull film", "dull and long", "great fun", "long and dull"]
    labels = [1, 1, 0, 0, 1, 0]
    assert baselines.bag_of_words(texts, labels, ["great", "so dull", "a great great film"]) == [1, 0, 1]
    with pytest.raises(ValueError, match="single class"):
        baselines.bag_of_words(texts[:2], [1, 1], ["great"])
    with pytest.raises(ValueError, match="one label per training text"):
        baselines.bag_of_words(texts, labels[:3], ["great"])
