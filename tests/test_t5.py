import json

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from tokenizers import SentencePieceUnigramTokenizer, Tokenizer

from companion import settings, t5

SENTINELS = list(range(1000, 1100))
EOS = 1


@pytest.fixture(scope="module")
def tok(provisioned):
    return t5.tokenizer()


def test_noise_mask_has_the_papers_density_and_span_length():
    rng = np.random.default_rng(0)
    masks = [t5.noise_mask(114, rng) for _ in range(2_000)]
    assert all(m.sum() == round(114 * 0.15) for m in masks)  # 17 noise tokens, every time
    spans = [len(run) for m in masks for run in "".join("x" if v else " " for v in m).split()]
    assert np.mean(spans) == pytest.approx(17 / round(17 / 3), abs=0.01)  # 6 spans: mean 2.83 ~ 3
    assert all(not m[0] for m in masks)  # a kept stretch comes first


def test_noise_mask_edge_cases():
    rng = np.random.default_rng(0)
    assert t5.noise_mask(2, rng).tolist() == [False, True]
    with pytest.raises(ValueError, match="at least 2 tokens"):
        t5.noise_mask(1, rng)


def test_corrupt_matches_the_papers_example():
    # "Thank you for inviting me to your party last week ." with "for inviting" and "last" dropped
    words = "Thank you for inviting me to your party last week .".split()
    token_ids = list(range(10, 10 + len(words)))
    mask = np.array([w in ("for", "inviting", "last") for w in words])
    source, target = t5.corrupt(token_ids, mask, SENTINELS, EOS)
    assert source == [10, 11, 1000, 14, 15, 16, 17, 1001, 19, 20, EOS]  # Thank you <X> me to your party <Y> week .
    assert target == [1000, 12, 13, 1001, 18, 1002, EOS]  # <X> for inviting <Y> last <Z>


def test_corrupt_refuses_more_spans_than_sentinels():
    mask = np.array([True, False] * 3)  # 3 spans need 4 sentinels
    with pytest.raises(ValueError, match="3 spans but only 3 sentinels"):
        t5.corrupt(list(range(6)), mask, SENTINELS[:3], EOS)
    assert t5.corrupt(list(range(6)), mask, SENTINELS[:4], EOS)[1][-2] == SENTINELS[3]


def test_input_and_target_reconstruct_the_original():
    rng = np.random.default_rng(1)
    for length in (2, 5, 37, 128):
        token_ids = rng.integers(2, 900, length).tolist()
        source, target = t5.corrupt(token_ids, t5.noise_mask(length, rng), SENTINELS, EOS)
        assert t5.reconstruct(source, target, SENTINELS, EOS) == token_ids


def test_offline_vocabulary_has_t5s_special_tokens(tok):
    if settings.source() == "hub":
        pytest.skip("the offline vocabulary is built only without the hub")
    assert len(tok) == t5.VOCAB_SIZE
    assert [tok.pad_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2]  # as in T5
    assert tok.convert_tokens_to_ids(t5.SENTINELS) == list(range(3, 103))
    sentence = "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election."
    row = t5.ids(tok, sentence)
    assert row[-1] == tok.eos_token_id and tok.unk_token_id not in row
    assert tok.decode(row, skip_special_tokens=True) == sentence
    assert "<extra_id_0>" in tok.tokenize("said <extra_id_0> was")  # a sentinel in text stays one token


def test_trained_vocabulary_is_the_same_on_every_run():
    text = ["The jury said the election was conducted well and fairly by the city of Atlanta.",
            "Quiet zebras vex jumpy kings; the jury quizzed them [again] for $5."] * 20
    runs = []
    for _ in range(3):
        trained = SentencePieceUnigramTokenizer()
        trained.train_from_iterator(text, vocab_size=120, special_tokens=t5.SPECIAL + t5.SENTINELS[:3],
                                    unk_token="<unk>", show_progress=False)
        runs.append(t5.canonical_vocabulary(trained.to_str()))
    assert runs[0] == runs[1] == runs[2]
    vocab = json.loads(runs[0])["model"]["vocab"]
    assert [p for p, _ in vocab[:6]] == t5.SPECIAL + t5.SENTINELS[:3] and json.loads(runs[0])["model"]["unk_id"] == 2
    assert Tokenizer.from_str(runs[0]).encode("the jury").tokens  # still a working tokenizer


def test_collator_corrupts_real_text_and_pads_labels(tok):
    blocks = t5.text_blocks(["The jury said the election was conducted well and fairly by the city."] * 8, tok, 16)
    batch = t5.SpanCorruptionCollator(tok)([blocks[i] for i in range(3)])
    sentinel_0 = tok.convert_tokens_to_ids("<extra_id_0>")
    assert (batch["input_ids"] == sentinel_0).sum() == 3 and (batch["labels"] == sentinel_0).sum() == 3
    assert batch["labels"].shape[0] == 3 and (batch["labels"][:, -1] != tok.pad_token_id).all()


def test_small_t5_learns_from_span_corruption(tok):
    text = ["The jury said the election was conducted well and fairly by the city of Atlanta."] * 40
    blocks = t5.text_blocks(text, tok, 24)
    run = t5.pretrain(t5.small_t5(tok), tok, DatasetDict(train=blocks, validation=blocks.select(range(8))),
                      steps=10, evals=2)
    assert run.history[-1]["eval_loss"] < run.history[0]["eval_loss"]
    counts = t5.parameter_split(run.model)
    assert counts["decoder cross-attention"] > 0 and counts["total"] == run.model.num_parameters()
    answer = t5.generate_text(run.model, tok, ["The jury said <extra_id_0> was conducted well."], max_new_tokens=4)
    assert len(answer) == 1


def test_task_formats():
    features = Features({"text": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    movie = Dataset.from_dict({"text": ["A gem.", "A bore."], "label": [1, 0]}, features=features)
    assert t5.sentiment_pairs(movie)[0] == {"task": "sentiment", "source": "sentiment: A gem.", "target": "positive"}
    features = Features({"text": Value("string"), "label": ClassLabel(names=["belles_lettres"])})
    genres = Dataset.from_dict({"text": [" ".join(f"w{i}" for i in range(100))], "label": [0]}, features=features)
    pairs = t5.genre_pairs(genres, words=10, per_document=3)
    assert pairs["target"] == ["belles lettres"] * 3
    assert pairs["source"][0] == "genre: " + " ".join(f"w{i}" for i in range(10))
    assert pairs["source"][-1].endswith("w99")


def test_answers_are_parsed_and_invalid_ones_counted():
    assert t5.matching_label(" Positive.", ["negative", "positive"]) == "positive"
    assert t5.matching_label("positive negative", ["negative", "positive"]) is None
    pairs = Dataset.from_dict({"target": ["positive", "negative", "negative"]})
    scores = t5.score_task("sentiment", ["positive", "great", "negative"], pairs, ["negative", "positive"])
    assert scores == {"accuracy": pytest.approx(2 / 3), "invalid": 1, "examples": 3}
    qa_rows = Dataset.from_dict({"id": ["a"], "answers": [{"text": ["Fulton"], "answer_start": [0]}]})
    assert t5.score_task("qa", ["fulton"], qa_rows)["exact_match"] == 100.0
    with pytest.raises(ValueError, match="2 answers for 3"):
        t5.score_task("sentiment", ["a", "b"], pairs, ["negative", "positive"])


def test_text_to_text_fine_tuning_runs_through_the_training_spine(tok):
    from companion import training

    pairs = Dataset.from_dict({"source": ["sentiment: a warm and funny film", "sentiment: dull and empty"] * 16,
                               "target": ["positive", "negative"] * 16})
    model = t5.small_t5(tok)
    loss_before = t5.finetune(model, tok, pairs.select(range(2)), lr=0.0, epochs=1, max_source=16).trainer.evaluate(
        t5.seq2seq_features(pairs, tok, 16, 4))["eval_loss"]
    run = t5.finetune(model, tok, pairs, lr=3e-3, epochs=4, max_source=16)
    assert isinstance(run, training.Training) and run.train_examples == 4 * 32 and run.train_seconds > 0
    assert run.trainer.args.warmup_steps == training.TEXT_TO_TEXT.warmup
    assert run.trainer.evaluate(t5.seq2seq_features(pairs, tok, 16, 4))["eval_loss"] < loss_before
    with pytest.raises(ValueError, match="no training pairs"):
        t5.finetune(model, tok, pairs.select([]), lr=1e-3, epochs=1, max_source=16)


def test_balanced_mixture_gives_every_task_the_same_share():
    parts = [Dataset.from_dict({"task": [name] * size, "source": [f"{name} {i}" for i in range(size)],
                                "target": ["x"] * size, "extra": [0] * size})
             for name, size in (("sentiment", 10), ("genre", 2), ("qa", 6))]
    mixed = t5.balanced_mixture(parts, rows_per_task=6)
    assert mixed.column_names == ["task", "source", "target"]
    assert {task: mixed["task"].count(task) for task in ("sentiment", "genre", "qa")} == \
        {"sentiment": 6, "genre": 6, "qa": 6}
    assert sorted(s for s in mixed["source"] if s.startswith("genre")) == ["genre 0"] * 3 + ["genre 1"] * 3
    assert len({s for s in mixed["source"] if s.startswith("sentiment")}) == 6  # sampled without repeats
    assert sorted(s for s in mixed["source"] if s.startswith("qa")) == [f"qa {i}" for i in range(6)]
    assert mixed["source"] == t5.balanced_mixture(parts, rows_per_task=6)["source"]  # seeded
    with pytest.raises(ValueError, match="part 2 of 2 has no pairs"):
        t5.balanced_mixture([parts[0], parts[1].select([])], rows_per_task=3)
    with pytest.raises(ValueError, match="at least one pair"):
        t5.balanced_mixture(parts, rows_per_task=0)


def test_pairs_end_in_one_end_token_for_t5_and_bert_vocabularies(tok):
    from companion import resources

    pairs = Dataset.from_dict({"source": ["sentiment: a warm and funny film"], "target": ["positive"]})
    t5_row = t5.seq2seq_features(pairs, tok, 64, 8)[0]
    assert t5_row["input_ids"].count(tok.eos_token_id) == 1 and t5_row["input_ids"][-1] == tok.eos_token_id
    assert t5_row["labels"][-1] == tok.eos_token_id and t5_row["labels"].count(tok.eos_token_id) == 1
    bert_tok = resources.tokenizer("bert-encoder")
    row = t5.seq2seq_features(pairs, bert_tok, 64, 8)[0]
    assert row["input_ids"][0] == bert_tok.cls_token_id and row["input_ids"].count(bert_tok.sep_token_id) == 1
    assert bert_tok.convert_ids_to_tokens(row["labels"]) == ["positive", "[SEP]"]  # the decoder starts at [CLS]
    cut = t5.seq2seq_features(pairs, bert_tok, 4, 8)[0]["input_ids"]
    assert len(cut) == 4 and cut[-1] == bert_tok.sep_token_id


def test_a_warm_started_encoder_decoder_learns_text_to_text_through_the_spine(provisioned):
    from companion import resources

    warm = resources.warm_started_seq2seq("bert-encoder")
    tok, model = warm.tokenizer, warm.model
    pairs = Dataset.from_dict({"source": ["sentiment: a warm and funny film", "sentiment: dull and empty"] * 16,
                               "target": ["positive", "negative"] * 16})
    features = t5.seq2seq_features(pairs, tok, 16, 4)
    loss_before = t5.finetune(model, tok, pairs.select(range(2)), lr=0.0, epochs=1, max_source=16
                              ).trainer.evaluate(features)["eval_loss"]
    run = t5.finetune(model, tok, pairs, lr=1e-4, epochs=2, max_source=16)
    assert run.trainer.evaluate(features)["eval_loss"] < loss_before
    answers = t5.generate_text(run.model, tok, pairs["source"][:2], max_new_tokens=4)
    assert all(isinstance(a, str) and "[SEP]" not in a for a in answers)
