"""The Brown corpus and the data sets built from it (split, hub fallbacks, tags, pairs, cloze questions)."""

import json
from pathlib import Path

import pytest
from datasets import Dataset

from companion import brown, data, provision


def test_split_per_label_keeps_every_label_in_every_split():
    ds = Dataset.from_dict({"text": [str(i) for i in range(26)], "label": [0] * 20 + [1] * 3 + [2] * 3})
    parts = brown.split_per_label(ds)
    for name in data.SPLITS:
        assert set(parts[name]["label"]) == {0, 1, 2}
    assert [len(parts[n]) for n in data.SPLITS] == [16 + 1 + 1, 2 + 1 + 1, 2 + 1 + 1]
    assert parts["test"]["text"] == brown.split_per_label(ds)["test"]["text"]
    with pytest.raises(ValueError, match="label 1 has 2 rows"):
        brown.split_per_label(Dataset.from_dict({"text": ["a"] * 5, "label": [0, 0, 0, 1, 1]}))


def test_brown_offline_is_500_documents_split_by_genre(provisioned):
    docs = data.DATASETS["brown"].build_offline()
    assert sum(len(docs[s]) for s in data.SPLITS) == 500
    genres = docs["train"].features["label"].names
    assert len(genres) == 15 and "science_fiction" in genres
    for name in ("validation", "test"):
        assert set(docs[name]["label"]) == set(range(15))
    assert not set(docs["train"]["fileid"]) & set(docs["test"]["fileid"])
    news = docs["train"].filter(lambda row: row["fileid"] == "ca01")
    assert news[0]["text"].startswith("The Fulton County Grand Jury said Friday an investigation")


@pytest.fixture
def hub_without_brown(monkeypatch, tmp_path):
    """The hub source, an empty cache, no Brown corpus where nltk looks, and an nltk.download that
    records its calls and writes the corpus."""
    import nltk

    downloads = []

    def download(name, download_dir, quiet):
        downloads.append(name)
        (Path(download_dir) / "corpora" / "brown").mkdir(parents=True)
        (Path(download_dir) / "corpora" / "brown" / "cats.txt").write_text("ca01 news\n")
        return True

    monkeypatch.setenv("COMPANION_SOURCE", "hub")
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "nltk_data")])
    monkeypatch.setattr(nltk, "download", download)
    return downloads


def test_hub_brown_uses_the_provisioned_npm_corpus_before_downloading(hub_without_brown):
    folder = brown.NPM.target()
    folder.mkdir(parents=True)
    (folder / "package.json").write_text("{}")
    stamp = {"provider": repr(brown.NPM), "files": provision.record(folder)}  # as `fetch` leaves it
    (folder / provision.PROVENANCE).write_text(json.dumps(stamp))
    assert brown.root() == folder and hub_without_brown == []


def test_hub_brown_uses_a_corpus_nltk_finds_before_downloading(hub_without_brown, tmp_path):
    found = tmp_path / "nltk_data" / "corpora" / "brown"
    found.mkdir(parents=True)
    (found / "cats.txt").write_text("ca01 news\n")
    assert brown.root() == found and hub_without_brown == []


def test_hub_brown_downloads_once_when_nothing_is_on_disk(hub_without_brown):
    first = brown.root()
    assert (first / "cats.txt").is_file() and hub_without_brown == ["brown"]
    assert brown.root() == first and hub_without_brown == ["brown"]  # found on disk the second time
def test_next_sentence_pairs_are_half_true_successors():
    docs = [[f"d{d} s{i}." for i in range(50)] for d in range(6)]
    pairs = brown.next_sentence_pairs(docs, seed=0)
    assert len(pairs) == 6 * 49
    nexts = [r for r in pairs if r["label"] == 0]
    assert 0.4 < len(nexts) / len(pairs) < 0.6
    for row in pairs:
        doc_a, sent_a = row["text"].rstrip(".").split()
        doc_b, sent_b = row["text_pair"].rstrip(".").split()
        if row["label"] == 0:
            assert doc_a == doc_b and int(sent_b[1:]) == int(sent_a[1:]) + 1
        else:
            assert doc_a != doc_b


def test_next_sentence_pairs_need_two_documents():
    with pytest.raises(ValueError, match="at least two documents"):
        brown.next_sentence_pairs([["a.", "b."]])


def test_universal_tags_of_brown_tags():
    assert [brown.universal_tag(t) for t in ["NN-TL", "PPS+BEZ", "FW-NN", "VBD", "AT", "``", "CD", "*", "PP$"]] \
        == ["NOUN", "PRON", "X", "VERB", "DET", ".", "NUM", "ADV", "DET"]


def test_cloze_questions_ask_for_a_name_found_in_the_context():
    tagged = [[("Palmer", "NP"), ("won", "VBD"), ("at", "IN"), ("Pensacola", "NP"), (".", ".")],
              [("The", "AT"), ("crowd", "NN"), ("cheered", "VBD"), (".", ".")],
              [("Player", "NP"), ("beat", "VBD"), ("Palmer", "NP"), ("at", "IN"), ("Pensacola", "NP"), (".", ".")]]
    ds = brown.cloze_questions([("cx01", tagged)], brown.detokenize, window=4)
    rows = {r["id"]: r for r in ds}
    assert set(rows) == {"cx01-0", "cx01-2"}  # "Player" occurs nowhere else; the middle has no name
    first = rows["cx01-0"]
    assert first["question"] == "What won at Pensacola?" and first["answers"]["text"] == ["Palmer"]
    assert "Palmer won" not in first["context"]  # the question's own sentence is left out
    start = first["answers"]["answer_start"][0]
    assert first["context"][start:start + len("Palmer")] == "Palmer"
    assert rows["cx01-2"]["answers"]["text"] == ["Palmer"]


def test_cloze_questions_skip_very_long_sentences():
    long = [("Palmer", "NP")] + [("ran", "VBD")] * brown.MAX_QUESTION_WORDS
    tagged = [[("Palmer", "NP"), ("won", "VBD"), (".", ".")], long]
    ds = brown.cloze_questions([("cx01", tagged)], brown.detokenize)
    assert ds["id"] == ["cx01-0"]


def test_cloze_questions_refuse_text_without_recurring_names():
    with pytest.raises(ValueError, match="no sentence"):
        brown.cloze_questions([("cx01", [[("It", "PPS"), ("rained", "VBD")]])], brown.detokenize)
