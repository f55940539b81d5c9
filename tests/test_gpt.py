import math

import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

from companion import attention, gpt, resources, settings


@pytest.fixture(scope="module")
def gpt2_tok(provisioned):
    return resources.tokenizer("gpt2")


def tiny_config(vocab: int = 50257, **extra) -> GPT2Config:
    return GPT2Config(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=2, **extra)


@pytest.fixture(scope="module")
def tiny(gpt2_tok):
    torch.manual_seed(0)
    return GPT2LMHeadModel(tiny_config(len(gpt2_tok))).eval()


def test_causal_mask_lets_each_position_see_itself_and_the_past():
    mask = gpt.causal_mask(4)
    assert mask.tolist() == [[True, False, False, False], [True, True, False, False],
                             [True, True, True, False], [True, True, True, True]]
    with pytest.raises(ValueError, match="at least one position"):
        gpt.causal_mask(0)


def test_changing_a_future_token_leaves_earlier_predictions_unchanged(tiny):
    ids = torch.tensor([[464, 3290, 531, 340, 750, 1064]])
    changed = ids.clone()
    changed[0, 4] = 999
    with torch.no_grad():
        a, b = tiny(input_ids=ids).logits, tiny(input_ids=changed).logits
    assert torch.allclose(a[0, :4], b[0, :4], atol=1e-6)
    assert not torch.allclose(a[0, 4:], b[0, 4:])


def test_attention_weights_above_the_diagonal_are_zero(tiny, gpt2_tok):
    pieces, weights = attention.weights(tiny, gpt2_tok, "The jury said it did find that")
    n = len(pieces)
    assert weights.shape == (2, 2, n, n)
    assert torch.all(weights.masked_select(~gpt.causal_mask(n)) == 0)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 2, n), atol=1e-5)


def test_parameter_counts_add_up_and_count_tied_weights_once(tiny):
    counts = gpt.parameter_counts(tiny)
    assert counts["total"] == sum(p.numel() for p in tiny.parameters()) == tiny.num_parameters()
    assert counts["token embeddings"] == 50257 * 32 and counts["position embeddings"] == 64 * 32
    assert "LM head (untied)" not in counts  # GPT-2 ties the head to the token embeddings
    assert sum(v for k, v in counts.items() if k != "total") == counts["total"]


def test_next_token_table_is_sorted_and_sums_below_one(tiny, gpt2_tok):
    table = gpt.next_token_table(tiny, gpt2_tok, "The jury", k=5)
    probs = [row["probability"] for row in table]
    assert len(table) == 5 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1


@pytest.mark.parametrize("side", ["right", "left"])
def test_last_token_pooling_matches_the_library_head(gpt2_tok, side):
    torch.manual_seed(0)
    model = GPT2ForSequenceClassification(tiny_config(len(gpt2_tok), num_labels=2,
                                                      pad_token_id=gpt2_tok.eos_token_id)).eval()
    gpt2_tok.pad_token, gpt2_tok.padding_side = gpt2_tok.eos_token, side
    batch = gpt2_tok(["A warm, funny film.", "Dull."], padding=True, return_tensors="pt")
    last = gpt.last_token_index(batch["attention_mask"])
    if side == "right":
        assert last.tolist() == [int(batch["attention_mask"][0].sum()) - 1, int(batch["attention_mask"][1].sum()) - 1]
    else:
        assert last.tolist() == [batch["input_ids"].shape[1] - 1] * 2
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
        by_hand = model.score(gpt.pool_last(out.hidden_states[-1], batch["attention_mask"]))
    assert torch.allclose(by_hand, out.logits, atol=1e-6)
    gpt2_tok.padding_side = "right"


def test_last_token_index_refuses_an_empty_row():
    with pytest.raises(ValueError, match="no real token"):
        gpt.last_token_index(torch.tensor([[1, 1], [0, 0]]))


def uniform_model(vocab: int) -> GPT2LMHeadModel:
    """Zero final norm: every hidden state is 0, so every logit is 0 and every token has 1/vocab."""
    model = GPT2LMHeadModel(tiny_config(vocab)).eval()
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.zero_()
    return model


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size(gpt2_tok):
    texts = ["The jury said it did find that many of the laws are outmoded.", "Short one."]
    result = gpt.perplexity(uniform_model(len(gpt2_tok)), gpt2_tok, texts)
    assert result.tokens == sum(len(gpt2_tok(t)["input_ids"]) - 1 for t in texts)
    assert result.perplexity == pytest.approx(len(gpt2_tok), rel=1e-4)
    assert result.bits_per_character == pytest.approx(result.tokens * math.log2(len(gpt2_tok))
                                                      / sum(map(len, texts)), rel=1e-4)


def test_sliding_windows_predict_each_token_once(tiny, gpt2_tok):
    text = " ".join(["The jury praised the administration and operation of the police department."] * 4)
    n = len(gpt2_tok(text)["input_ids"])
    whole = gpt.perplexity(tiny, gpt2_tok, [text], context=64)
    windows = gpt.perplexity(tiny, gpt2_tok, [text], context=16, stride=8)
    assert n <= 64 and whole.tokens == windows.tokens == n - 1
    assert windows.nll > whole.nll * 0.9  # less left context: no better, roughly the same for a random model


def test_perplexity_refuses_empty_text(tiny, gpt2_tok):
    with pytest.raises(ValueError, match="no text"):
        gpt.perplexity(tiny, gpt2_tok, ["  "])


def test_distinct_n_and_repetition_rate_on_known_sequences():
    assert gpt.distinct_n([[1, 2, 3], [1, 2, 4]], 1) == pytest.approx(4 / 6)
    assert gpt.distinct_n([[1, 2, 3], [1, 2, 4]], 2) == pytest.approx(3 / 4)
    assert gpt.repetition_rate([1, 2, 3, 1, 2, 3, 1, 2, 3], 3) == pytest.approx(4 / 7)
    assert gpt.repetition_rate([1, 2, 3, 4, 5], 3) == 0.0
    with pytest.raises(ValueError, match="no 3-gram"):
        gpt.repetition_rate([1, 2], 3)
    with pytest.raises(ValueError, match="2-gram"):
        gpt.distinct_n([[1]], 2)


def test_generation_is_seeded_and_greedy_has_one_answer(tiny, gpt2_tok):
    first = gpt.generate_ids(tiny, gpt2_tok, "The jury", "top-p 0.9", samples=3, max_new_tokens=6)
    assert first == gpt.generate_ids(tiny, gpt2_tok, "The jury", "top-p 0.9", samples=3, max_new_tokens=6)
    assert len(first) == 3 and all(len(s) == 6 for s in first)
    greedy = gpt.generate_ids(tiny, gpt2_tok, "The jury", "greedy", samples=3, max_new_tokens=6)
    assert greedy[0] == greedy[1] == greedy[2]
    with pytest.raises(ValueError, match="unknown strategy 'hot'"):
        gpt.generate_ids(tiny, gpt2_tok, "The jury", "hot")


def test_compare_decoding_reports_every_strategy(tiny, gpt2_tok):
    rows = gpt.compare_decoding(tiny, gpt2_tok, "The jury", ["greedy", "top-k 40"], samples=2, max_new_tokens=5)
    assert [r["strategy"] for r in rows] == ["greedy", "top-k 40"]
    assert all(0 < r["distinct_1"] <= 1 and 0 <= r["repetition_3"] <= 1 for r in rows)


def test_lm_blocks_cut_documents_into_full_blocks_with_separators(gpt2_tok):
    texts = ["The jury said it did find that many of the laws are outmoded. " * 3] * 4
    ds = DatasetDict({s: Dataset.from_dict({"text": texts, "label": [0] * 4}) for s in ("train", "validation")})
    blocks = gpt.lm_blocks(ds, gpt2_tok, context=16)
    ids = [i for row in blocks["train"]["input_ids"] for i in row]
    per_doc = len(gpt2_tok(texts[0])["input_ids"]) + 1
    assert len(blocks["train"]) == 4 * per_doc // 16
    assert all(len(row) == 16 for row in blocks["train"]["input_ids"])
    assert blocks["train"]["labels"] == blocks["train"]["input_ids"]
    assert ids[per_doc - 1] == gpt2_tok.eos_token_id
    with pytest.raises(ValueError, match="fewer than 4096 tokens"):
        gpt.lm_blocks(ds, gpt2_tok, context=4096)


def test_pretrain_records_a_held_out_curve(gpt2_tok):
    texts = ["The jury said it did find that many of the laws are outmoded. " * 8] * 6
    ds = DatasetDict({s: Dataset.from_dict({"text": texts}) for s in ("train", "validation")})
    blocks = gpt.lm_blocks(ds, gpt2_tok, context=32)
    model = GPT2LMHeadModel(tiny_config(len(gpt2_tok)))
    run = gpt.pretrain(model, gpt2_tok, blocks, steps=4, lr=1e-2, evals=2, name="test-gpt")
    assert [row["step"] for row in run.history] == [0, 2, 4]
    assert run.history[-1]["eval_loss"] < run.history[0]["eval_loss"]
    assert run.tokens_seen == 4 * settings.profile().batch_size * 32


def test_small_gpt2_follows_the_profile(gpt2_tok):
    model = gpt.small_gpt2(gpt2_tok)
    profile = settings.profile()
    assert (model.config.n_layer, model.config.n_embd, model.config.n_positions) == (
        profile.small.layers, profile.small.width, profile.small.context)
    assert model.config.vocab_size == len(gpt2_tok) == 50257
    assert torch.equal(model.transformer.wte.weight, gpt.small_gpt2(gpt2_tok).transformer.wte.weight)


def test_decoder_classifier_reads_the_extract_token(provisioned):
    clf = gpt.decoder_classifier(["negative", "positive"])
    tok, model = clf.tokenizer, clf.model
    start, extract = tok.convert_tokens_to_ids([gpt.START, gpt.EXTRACT])
    assert model.get_input_embeddings().weight.shape[0] == len(tok) > max(start, extract)
    assert model.config.pad_token_id == tok.pad_token_id is not None
    encode = gpt.gpt_encoder(tok, max_length=8)
    rows = encode(["a very long sentence that will not fit in eight tokens at all", "short"])
    assert [r[0] for r in rows["input_ids"]] == [start, start]
    assert [r[-1] for r in rows["input_ids"]] == [extract, extract]
    assert len(rows["input_ids"][0]) == 8 and rows["attention_mask"][1] == [1] * len(rows["input_ids"][1])


def test_gpt_encoder_needs_the_delimiters(gpt2_tok):
    with pytest.raises(ValueError, match="decoder_classifier"):
        gpt.gpt_encoder(gpt2_tok, 16)


def test_brown_tokenizer_keeps_gpt2s_algorithm_with_a_smaller_vocabulary_and_is_cached(gpt2_tok):
    tok = gpt.brown_tokenizer()
    assert len(tok) == gpt.VOCAB_SIZE and tok.eos_token == gpt2_tok.eos_token == "<|endoftext|>"
    text = "The jury praised the handling of the Fulton County election, naïvely!"
    assert tok.decode(tok(text)["input_ids"]) == text  # byte-level: any string round-trips
    assert tok.convert_ids_to_tokens(tok(" the jury")["input_ids"]) == ["Ġthe", "Ġjury"]
    path = settings.cache_dir() / "tokenizers" / f"gpt2-brown-bpe-{gpt.VOCAB_SIZE}-{settings.source()}.json"
    assert path.is_file() and gpt.brown_tokenizer().get_vocab() == tok.get_vocab()


def test_output_layer_share_counts_multiply_adds_per_token():
    # 1 layer of width 2, context 1: blocks 12*4 + 2*1*2 = 52 multiply-adds, output layer 10*2 = 20
    assert gpt.output_layer_share(10, 2, 1, 1) == pytest.approx(20 / 72)
    assert gpt.output_layer_share(50_257, 128, 4, 128) > 0.85 > gpt.output_layer_share(8_192, 128, 4, 128)
