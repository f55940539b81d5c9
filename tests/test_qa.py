import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import BertConfig, BertForQuestionAnswering

from companion import qa

CONTEXT = ("Shenzhen is a major city in Guangdong Province, China. It lies on the Pearl River Delta, north of "
           "Hong Kong. The city grew from a market town of 30,000 people in 1979 into a metropolis. At the 2020 "
           "census Shenzhen had a population of 17.56 million. It is known as China's Silicon Valley.")
ANSWER = "17.56 million"


@pytest.fixture(scope="module")
def tok(provisioned):
    from companion import resources

    return resources.tokenizer("all-MiniLM-L6-v2")


def example(answer: str | None = ANSWER) -> dict:
    answers = ({"text": [answer], "answer_start": [CONTEXT.index(answer)]} if answer
               else {"text": [], "answer_start": []})
    return {"id": ["q1"], "title": ["t"], "question": ["What is the population of Shenzhen?"],
            "context": [CONTEXT], "answers": [answers]}


def test_answer_spans_survive_the_stride_windows(tok):
    features = qa.train_features(example(), tok, max_length=40, stride=16)
    assert len(features["input_ids"]) > 3  # the context needs several windows
    found = []
    for ids, start, end in zip(features["input_ids"], features["start_positions"], features["end_positions"]):
        if start == end == 0:
            continue  # this window does not hold the whole answer: it points at [CLS]
        found.append(tok.decode(ids[start:end + 1]).replace(" ", ""))  # decode() spaces out "17.56"
    assert found and all(text == ANSWER.replace(" ", "") for text in found)


def test_a_question_without_answer_points_at_cls(tok):
    features = qa.train_features(example(None), tok, max_length=40, stride=16)
    assert set(features["start_positions"]) == set(features["end_positions"]) == {0}


def test_post_processing_maps_logits_back_to_context_text(tok):
    examples = Dataset.from_dict(example())
    features = examples.map(lambda b: qa.eval_features(b, tok, 40, 16), batched=True,
                            remove_columns=examples.column_names)
    train = qa.train_features(example(), tok, max_length=40, stride=16)
    window = next(i for i, s in enumerate(train["start_positions"]) if s)
    start = np.full((len(features), 40), -5.0)
    end = np.full((len(features), 40), -5.0)
    start[window, train["start_positions"][window]] = 5.0
    end[window, train["end_positions"][window]] = 5.0
    assert qa.answers(examples, features, start, end) == {"q1": ANSWER}
    # a [CLS] score above the best span means "no answer", when that is allowed
    start[:, 0] = end[:, 0] = 6.0
    assert qa.answers(examples, features, start, end, allow_no_answer=True) == {"q1": ""}
    assert qa.answers(examples, features, start, end) == {"q1": ANSWER}


def test_eval_features_hide_question_offsets(tok):
    examples = Dataset.from_dict(example())
    features = examples.map(lambda b: qa.eval_features(b, tok, 40, 16), batched=True,
                            remove_columns=examples.column_names)
    offsets = features[0]["offset_mapping"]
    assert offsets[0] is None and offsets[1] is None  # [CLS] and the question's first piece
    assert set(features["example_id"]) == {"q1"}


def test_a_question_too_long_for_the_window_is_refused(tok):
    long = example()
    long["question"] = [" ".join(["word"] * 30) + "?"]
    with pytest.raises(ValueError, match="leaves no room for the passage"):
        qa.train_features(long, tok, max_length=40, stride=16)


def test_frequent_name_baseline():
    assert qa.frequent_name_baseline("Palmer won. Player lost to Palmer. Then Palmer left.") == "Palmer"


def test_fine_tuning_and_scoring_run_through_the_training_spine(tok):
    from companion import training

    context = "The jury praised the city of Atlanta for the manner of the election. It met in Fulton."
    rows = {"id": [f"q{i}" for i in range(8)], "title": ["brown"] * 8, "context": [context] * 8,
            "question": ["The jury praised the city of what?", "It met in what?"] * 4,
            "answers": [{"text": ["Atlanta"], "answer_start": [context.index("Atlanta")]},
                        {"text": ["Fulton"], "answer_start": [context.index("Fulton")]}] * 4}
    ds = DatasetDict({s: Dataset.from_dict(rows) for s in ("train", "validation", "test")})
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    run = qa.finetune(BertForQuestionAnswering(config), tok, ds, lr=1e-3, epochs=2)
    assert isinstance(run, training.Training) and run.train_examples == 16
    assert {"start_positions", "end_positions"} <= set(run.features["train"].column_names)
    scores = qa.evaluate(run.model, ds["test"], run.features["test"])
    assert {"exact_match", "f1"} <= set(scores) and scores["questions"] == 8 and len(scores["predictions"]) == 8
