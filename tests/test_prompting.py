import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, GPT2Config, GPT2LMHeadModel

from companion import prompting, resources

TRAIN = Dataset.from_dict({"text": [f"sentence {i}" for i in range(20)], "label": [i % 2 for i in range(20)]})


@pytest.fixture(scope="module")
def gpt2_tok(provisioned):
    return resources.tokenizer("gpt2")


@pytest.fixture(scope="module", params=["gpt2", "gemma3-sliding-window"])
def tiny(request, gpt2_tok):
    """Random tiny decoders (for exact equalities only): GPT-2, and Gemma 3 with a sliding window of 8
    tokens, shorter than the prompts, as in the book's base decoder."""
    torch.manual_seed(0)
    if request.param == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(gpt2_tok), n_positions=256, n_embd=32, n_layer=2,
                                           n_head=2))
    else:
        model = Gemma3ForCausalLM(Gemma3TextConfig(
            vocab_size=len(gpt2_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=8,
            layer_types=["sliding_attention", "full_attention"], max_position_embeddings=256))
    return model.eval()


def test_template_builds_prefix_and_query():
    template = prompting.Template()
    prefix = template.prefix([("great fun", 1), ("dull", 0)])
    assert prefix == ("Classify the sentiment of each movie review as positive or negative.\n\n"
                      "Review: great fun\nSentiment: positive\n\nReview: dull\nSentiment: negative\n\n")
    assert template.query("a gem") == "Review: a gem\nSentiment:"
    assert template.prefix([]) == template.instruction


def test_draw_shots_is_seeded_balanced_and_checks_k():
    shots = prompting.draw_shots(TRAIN, 4, seed=3)
    assert shots == prompting.draw_shots(TRAIN, 4, seed=3)
    assert shots != prompting.draw_shots(TRAIN, 4, seed=4)
    assert sorted(label for _, label in shots) == [0, 0, 1, 1]
    assert len({text for text, _ in shots}) == 4
    assert prompting.draw_shots(TRAIN, 0, seed=0) == []
    assert len(prompting.draw_shots(TRAIN, 3, seed=0)) == 3
    with pytest.raises(ValueError, match="21 shots from a split of 20"):
        prompting.draw_shots(TRAIN, 21, seed=0)
    with pytest.raises(ValueError, match=">= 0"):
        prompting.draw_shots(TRAIN, -1, seed=0)


def test_chat_messages_put_shots_as_earlier_turns():
    turns = prompting.chat_messages("a gem", ["negative", "positive"], [("dull", 0)])
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user"]
    assert turns[2]["content"] == "negative"
    assert turns[-1]["content"].endswith("Review: a gem")
    assert "negative or positive" in turns[-1]["content"]
    assert [t["role"] for t in prompting.chat_messages("x", ["a", "b"], system=None)] == ["user"]


@pytest.mark.parametrize("answer, expected", [
    ("Positive", 1), ("negative.", 0), (" The sentiment is POSITIVE!", 1), ("**negative**\n", 0),
    ("positive or negative", None), ("I cannot tell", None), ("", None), (None, None),
    ("positively", None),  # a word that merely starts like a label is not that label
])
def test_parse_label_maps_messy_answers_or_counts_them_invalid(answer, expected):
    assert prompting.parse_label(answer, ["negative", "positive"]) == expected


def test_label_words_must_be_single_tokens(gpt2_tok):
    assert prompting.label_token_ids(gpt2_tok, (" negative", " positive")) == [4633, 3967]
    with pytest.raises(ValueError, match="one token each"):
        prompting.label_token_ids(gpt2_tok, (" supercalifragilistic", " positive"))


def test_prefix_cache_scoring_equals_naive_scoring(tiny, gpt2_tok):
    template = prompting.Template()
    prefix = template.prefix([("a warm, funny film", 1), ("tedious and flat", 0), ("a delight", 1)])
    queries = [template.query(t) for t in ["one of the year's best", "a mess", "it is what it is",
                                           "long, loud and in the end strangely moving, if you stay awake", "dull"]]
    naive = prompting.score_naive(tiny, gpt2_tok, prefix, queries, template.label_words)
    assert naive.shape == (5, 2)
    # One query at a time, and in right-padded batches of queries of different lengths (returned in
    # the queries' order, whatever order the batches scored them in).
    for batch_size in (1, 2, 16):
        cached = prompting.score_cached(tiny, gpt2_tok, prefix, queries, template.label_words, batch_size=batch_size)
        np.testing.assert_allclose(cached, naive, atol=1e-4)
        assert (cached.argmax(-1) == naive.argmax(-1)).all()
    # The cache is copied per batch: scoring twice gives the same numbers.
    np.testing.assert_allclose(prompting.score_cached(tiny, gpt2_tok, prefix, queries, template.label_words),
                               cached, atol=1e-5)
    with pytest.raises(ValueError, match="batch_size"):
        prompting.score_cached(tiny, gpt2_tok, prefix, queries, template.label_words, batch_size=0)


def test_calibration_removes_a_constant_label_bias():
    # A prompt that adds log(4) to label 1 for every input: calibrating with content-free inputs,
    # which see the same bias, recovers the unbiased probabilities.
    fair = np.log(np.array([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]]))
    biased = fair + np.log([1.0, 4.0])
    content_free = np.log(np.array([[0.2, 0.8], [0.2, 0.8]]))  # uniform, times the same bias
    np.testing.assert_allclose(prompting.calibrate(biased, content_free), np.exp(fair), atol=1e-9)
    assert (np.exp(biased).argmax(-1) == 1).all()


def test_evaluate_prompt_and_sweep_report_accuracies(tiny, gpt2_tok):
    test = Dataset.from_dict({"text": ["good", "bad", "fine"], "label": [1, 0, 1]})
    score = prompting.evaluate_prompt(tiny, gpt2_tok, [("nice", 1)], test)
    assert score.log_probs.shape == (3, 2)
    assert score.accuracy == pytest.approx(float((score.log_probs.argmax(-1) == [1, 0, 1]).mean()))
    table = prompting.few_shot_sweep(tiny, gpt2_tok, TRAIN, test, shots=[0, 2], draws=2)
    assert table[["shots", "draw"]].values.tolist() == [[0, 0], [2, 0], [2, 1]]
    assert table["accuracy"].between(0, 1).all() and table["calibrated_accuracy"].between(0, 1).all()
    with pytest.raises(ValueError, match="empty"):
        prompting.evaluate_prompt(tiny, gpt2_tok, [], test.select([]))
    with pytest.raises(ValueError, match="no 'label' column"):
        prompting.evaluate_prompt(tiny, gpt2_tok, [], test.remove_columns("label"))


class FakeEndpoint:
    model_label = "fake"

    def __init__(self, answers):
        self.answers, self.sent = list(answers), []

    def chat(self, messages, **options):
        self.sent.append((messages, options))
        return self.answers.pop(0)


def test_classify_chat_parses_answers_and_counts_invalid_ones():
    endpoint = FakeEndpoint(["Positive.", "I think it's negative", "Neutral"])
    run = prompting.classify_chat(endpoint, ["a", "b", "c"], ["negative", "positive"], temperature=0.0,
                                  max_tokens=3)
    assert run.predictions == [1, 0, None]
    assert run.invalid == 1
    assert run.accuracy([1, 1, 0]) == pytest.approx(1 / 3)
    assert endpoint.sent[0][1] == {"temperature": 0.0, "max_tokens": 3}
