"""Extractive question answering: a SQuAD-format set built from the Brown corpus, the sliding-window
features a BERT-style model reads, and the post-processing from start/end logits back to text.

Offline there is no SQuAD, so :func:`cloze_questions` builds a SQuAD-format set from real text the way
Hermann et al. (2015) built theirs from CNN / Daily Mail: take a sentence of a Brown document, blank
out a proper name or a number that also occurs in the sentences around it, and ask for it; the
context is those surrounding sentences, without the question's own sentence. Answering then means
reading the context, not matching the question against it.
"""

from __future__ import annotations

import collections
import re
from typing import Iterable, Sequence

import numpy as np
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

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


def frequent_name_baseline(context: str) -> str:
    """A reader that does not read the question: the most frequent run of capitalized words in the
    context (a word after a sentence end counts too), or the first word when there is none."""
    names = re.findall(r"[A-Z][\w'.-]*(?: [A-Z][\w'.-]*)*", context)
    return collections.Counter(names).most_common(1)[0][0] if names else context.split()[0]


# --- features: question + context windows ----------------------------------------------------------

def train_features(examples: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_length: int,
                   stride: int) -> dict[str, list]:
    """Tokenize question + context pairs; a context longer than ``max_length`` becomes several
    windows overlapping by ``stride`` tokens. Each window gets ``start_positions`` /
    ``end_positions``: the answer's first and last token, or 0 and 0 (the ``[CLS]`` token) when the
    answer is not wholly inside that window."""
    enc = _windows(examples, tokenizer, max_length, stride)
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        answers = examples["answers"][enc["overflow_to_sample_mapping"][i]]
        if not answers["text"]:
            starts.append(0)
            ends.append(0)
            continue
        first = answers["answer_start"][0]
        last = first + len(answers["text"][0])
        sequence = enc.sequence_ids(i)
        context = [k for k, s in enumerate(sequence) if s == 1]
        lo, hi = context[0], context[-1]
        if offsets[lo][0] > first or offsets[hi][1] < last:
            starts.append(0)
            ends.append(0)
            continue
        starts.append(next(k for k in range(lo, hi + 1) if offsets[k][1] > first))
        ends.append(next(k for k in range(hi, lo - 1, -1) if offsets[k][0] < last))
    enc["start_positions"], enc["end_positions"] = starts, ends
    enc.pop("offset_mapping")
    enc.pop("overflow_to_sample_mapping")
    return enc


def eval_features(examples: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_length: int,
                  stride: int) -> dict[str, list]:
    """Like :func:`train_features` without labels; each window keeps its ``example_id`` and the
    character offsets of its context tokens (``None`` for question and special tokens)."""
    enc = _windows(examples, tokenizer, max_length, stride)
    ids, mapping = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        ids.append(examples["id"][enc["overflow_to_sample_mapping"][i]])
        sequence = enc.sequence_ids(i)
        mapping.append([o if sequence[k] == 1 else None for k, o in enumerate(offsets)])
    enc["example_id"], enc["offset_mapping"] = ids, mapping
    enc.pop("overflow_to_sample_mapping")
    return enc


def _windows(examples: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_length: int, stride: int):
    if tokenizer.padding_side != "right":
        raise ValueError("question-first windows need a tokenizer that pads on the right")
    questions = [q.strip() for q in examples["question"]]
    room = max_length - stride - 3  # [CLS] question [SEP] passage [SEP]: the passage needs more than the stride
    for question, n in zip(questions, map(len, tokenizer(questions, add_special_tokens=False)["input_ids"])):
        if n >= room:
            raise ValueError(f"a question of {n} tokens leaves no room for the passage in windows of {max_length}"
                             f" tokens with stride {stride} (at most {room - 1}): {question[:60]!r}...")
    return tokenizer(questions, examples["context"], truncation="only_second", max_length=max_length,
                     stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                     padding="max_length")


# --- post-processing: logits back to answer text ---------------------------------------------------

def answers(examples: Dataset, features: Dataset, start_logits: np.ndarray, end_logits: np.ndarray, *,
            n_best: int = 20, max_answer_tokens: int = 30, allow_no_answer: bool = False) -> dict[str, str]:
    """The predicted answer text per example id: over all windows of an example, the context span
    (start <= end, at most ``max_answer_tokens``) with the highest start + end logit. With
    ``allow_no_answer`` (SQuAD 2.0), the empty string when the ``[CLS]`` score of some window beats
    the best span."""
    windows = collections.defaultdict(list)
    for i, example_id in enumerate(features["example_id"]):
        windows[example_id].append(i)
    offsets_all = features["offset_mapping"]
    predictions = {}
    for example in examples:
        best_text, best_score, null_score = "", -np.inf, np.inf
        for i in windows[example["id"]]:
            offsets = offsets_all[i]
            starts, ends = start_logits[i], end_logits[i]
            null_score = min(null_score, float(starts[0] + ends[0]))
            best_ends = np.argsort(ends)[::-1][:n_best]
            for s in np.argsort(starts)[::-1][:n_best]:
                for e in best_ends:
                    if (s >= len(offsets) or e >= len(offsets) or offsets[s] is None or offsets[e] is None
                            or e < s or e - s + 1 > max_answer_tokens):
                        continue
                    score = float(starts[s] + ends[e])
                    if score > best_score:
                        best_score = score
                        best_text = example["context"][offsets[s][0]:offsets[e][1]]
        predictions[example["id"]] = "" if allow_no_answer and null_score > best_score else best_text
    return predictions


def references(examples: Dataset) -> list[dict[str, object]]:
    """The gold answers in the form the ``squad`` metric takes."""
    return [{"id": ex["id"], "answers": ex["answers"]} for ex in examples]


def predictions_for_metric(predicted: dict[str, str]) -> list[dict[str, str]]:
    """Predicted answers in the form the ``squad`` metric takes."""
    return [{"id": key, "prediction_text": text} for key, text in predicted.items()]
