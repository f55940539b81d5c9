import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value
from transformers import (BertConfig, BertForMaskedLM, BertForQuestionAnswering, BertForTokenClassification,
                          DataCollatorForLanguageModeling)

from companion import bert, brown, settings

SENTENCES = ["The jury praised the city of Atlanta for the manner of the election.",
             "It said the election was conducted well.", "Nobody complained about it."]


@pytest.fixture(scope="module")
def tok(provisioned):
    from companion import resources

    return resources.tokenizer("all-MiniLM-L6-v2")


def tiny_config(tok, **extra) -> BertConfig:
    return BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=128, **extra)


def encoded(tok, texts):
    rows = tok(texts * 40, return_special_tokens_mask=True)
    return [{k: rows[k][i] for k in rows} for i in range(len(texts) * 40)]


def test_masking_draws_exactly_what_the_library_collator_draws(tok):
    rows = encoded(tok, SENTENCES)
    theirs = DataCollatorForLanguageModeling(tok, mlm_probability=0.15, seed=7)([dict(r) for r in rows])
    ours = bert.PretrainingCollator(tok, generator=torch.Generator().manual_seed(7))(
        [{**r, "next_sentence_label": 0} for r in rows])
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    assert torch.equal(ours["labels"], theirs["labels"])


def test_masking_proportions_are_15_then_80_10_10(tok):
    ids = torch.randint(1000, 29000, (400, 128), generator=torch.Generator().manual_seed(0))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    inputs, labels = bert.mask_tokens(ids, special, tok.mask_token_id, len(tok),
                                      generator=torch.Generator().manual_seed(1))
    shares = bert.masking_shares(ids, inputs, labels, tok.mask_token_id, special)
    # 400 x 126 = 50,400 candidates, ~7,560 selected: 3 standard deviations are < 0.5 % and < 1.5 %
    assert shares["selected"] == pytest.approx(0.15, abs=0.005)
    assert shares["mask"] == pytest.approx(0.8, abs=0.015)
    assert shares["random"] == pytest.approx(0.1, abs=0.012)
    assert shares["unchanged"] == pytest.approx(0.1, abs=0.012)
    assert not (labels[special] != -100).any()  # special tokens are never selected
    assert torch.equal(inputs[labels == -100], ids[labels == -100])  # nor changed


def test_masking_refuses_a_bad_probability(tok):
    with pytest.raises(ValueError, match="between 0 and 1"):
        bert.mask_tokens(torch.ones(1, 4, dtype=torch.long), torch.zeros(1, 4), tok.mask_token_id, 10, 1.5)


def test_embeddings_are_the_layer_norm_of_three_summed_tables(tok):
    torch.manual_seed(0)
    model = BertForQuestionAnswering(tiny_config(tok)).eval()
    parts = bert.embedding_parts(model, tok, "The jury met.", "It praised the city.")
    assert parts["tokens"][0] == "[CLS]" and parts["tokens"].count("[SEP]") == 2
    first_sep = parts["tokens"].index("[SEP]")
    assert parts["segments"] == [0] * (first_sep + 1) + [1] * (len(parts["tokens"]) - first_sep - 1)
    assert parts["gap"] < 1e-5


def test_embedding_parts_names_a_model_without_segment_embeddings(tok):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    model = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=1, n_heads=2,
                                                                 hidden_dim=64, max_position_embeddings=128))
    with pytest.raises(ValueError, match="distilbert .*DistilBertForSequenceClassification.* no segment"):
        bert.embedding_parts(model, tok, "The jury met.", "It praised the city.")


def test_bert_encoder_role_has_segment_embeddings_from_both_sources(monkeypatch):
    from companion import resources

    monkeypatch.setenv("COMPANION_SOURCE", "offline")
    offline = resources.classifier("bert-encoder", ["a", "b"])
    assert offline.resolved.name == resources.resolve("encoder").name == "all-MiniLM-L6-v2"  # same figures offline
    assert bert.embedding_parts(offline.model, offline.tokenizer, "The jury met.", "It praised it.")["gap"] < 1e-5
    monkeypatch.setenv("COMPANION_SOURCE", "hub")
    for profile in settings.PROFILES:  # DistilBERT, the smaller profiles' hub encoder, has no segments
        monkeypatch.setenv("COMPANION_PROFILE", profile)
        assert resources.resolve("bert-encoder").location == "bert-base-uncased"
    assert BertConfig().type_vocab_size == 2  # bert-base-uncased's config: segments A and B


def test_size_table_counts_bert_base_and_large():
    rows = {r["model"]: r for r in bert.size_table()}
    assert rows["BERT-base"]["total"] == 109_482_240
    assert rows["BERT-large"]["total"] == 335_141_888


def test_small_bert_pretraining_lowers_the_masked_lm_loss(tok):
    profile = settings.profile()
    docs = [[f"The jury in county {d} said the election number {i} was fair." for i in range(12)] for d in range(8)]
    pairs = brown.next_sentence_pairs(docs)
    features = bert.pair_features(DatasetDict(train=pairs, validation=pairs.select(range(32))), tok, 64)
    model = bert.small_bert(tok, profile)
    run = bert.pretrain(model, tok, features, steps=12, lr=3e-3, eval_rows=32, profile=profile)
    assert len(run.mlm_losses) == len(run.nsp_losses) == 12
    assert run.after["mlm_loss"] < run.before["mlm_loss"]
    table = bert.fill_mask(run.model, tok, "The jury said the [MASK] was fair.", k=3)
    assert len(table) == 1 and len(table[0]) == 3
    with pytest.raises(ValueError, match="no \\[MASK\\]"):
        bert.fill_mask(run.model, tok, "No mask here.")


def test_align_labels_scores_only_first_pieces():
    assert bert.align_labels([None, 0, 1, 1, 2, None], [5, 6, 7]) == [-100, 5, 6, -100, 7, -100]


def test_token_features_put_each_tag_on_its_word(tok):
    features = Features({"tokens": Sequence(Value("string")), "tags": Sequence(ClassLabel(names=brown.UNIVERSAL))})
    ds = Dataset.from_dict({"tokens": [["Unbelievably", "tall", "jurors", "."]], "tags": [[3, 2, 0, 10]]},
                           features=features)
    row = bert.token_features(DatasetDict(train=ds), tok, 32)["train"][0]
    pieces = tok.convert_ids_to_tokens(row["input_ids"])
    tagged = [(p, label) for p, label in zip(pieces, row["labels"]) if label != -100]
    assert [label for _, label in tagged] == [3, 2, 0, 10]
    assert not tagged[0][0].startswith("##") and len(pieces) > 6  # "unbelievably" is several pieces


def test_freezing_leaves_only_the_new_head_to_train(tok):
    model = BertForTokenClassification(tiny_config(tok, num_labels=3))
    trainable, total = bert.freeze_pretrained(model, ["classifier.weight", "classifier.bias"])
    assert trainable == 32 * 3 + 3 and total > 100 * trainable
    with pytest.raises(ValueError, match="nothing would train"):
        bert.freeze_pretrained(model, ["head.weight"])


def test_token_scores_read_first_pieces_only():
    logits = np.zeros((1, 5, 3))
    logits[0, [1, 2, 3, 4], [0, 1, 2, 2]] = 1.0  # predicted tags 0, 1, 2, 2 at positions 1..4
    labels = np.array([[-100, 0, 1, -100, 1]])  # position 3 is a later piece: not scored
    scores = bert.token_scores(logits, labels, ["NOUN", "VERB", "ADJ"])
    assert scores["words"] == 3 and scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["per_tag_accuracy"] == {"NOUN": 1.0, "VERB": 0.5}


def test_brown_tokenizer_keeps_the_encoders_wordpiece_with_a_smaller_vocabulary_and_is_cached(tok):
    small = bert.brown_tokenizer()
    assert len(small) == bert.BROWN_VOCAB and small.mask_token == tok.mask_token == "[MASK]"
    pair = small("The jury said the [MASK] was fine.", "It praised the city.")
    pieces = small.convert_ids_to_tokens(pair["input_ids"])
    assert pieces[:3] == ["[CLS]", "the", "jury"] and pieces.count("[SEP]") == 2 and "[MASK]" in pieces
    assert pair["token_type_ids"][-1] == 1 and pair["token_type_ids"][0] == 0  # segments, as BERT's template
    path = settings.cache_dir() / "tokenizers" / f"bert-brown-wordpiece-{bert.BROWN_VOCAB}-{settings.source()}.json"
    assert path.is_file() and bert.brown_tokenizer().get_vocab() == small.get_vocab()


def test_the_mlm_head_on_a_frozen_encoder_trains_only_its_transform_and_bias_and_shares_the_embeddings(tok):
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config(tok))
    trained = bert.train_only_mlm_head(model)
    assert sorted(trained) == ["cls.predictions.bias", "cls.predictions.transform.LayerNorm.bias",
                               "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.dense.bias",
                               "cls.predictions.transform.dense.weight"]
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight  # tied, frozen
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 32 * 32 + 32 + 2 * 32 + len(tok)
    untied = BertForMaskedLM(tiny_config(tok, tie_word_embeddings=False))
    with pytest.raises(ValueError, match="not tied"):
        bert.train_only_mlm_head(untied)


def test_the_head_trained_on_precomputed_vectors_fills_blanks_as_the_whole_model_does(tok):
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config(tok))
    bert.train_only_mlm_head(model)
    encoder_before = {n: p.detach().clone() for n, p in model.bert.named_parameters()}
    texts = SENTENCES * 20
    vectors = bert.masked_vectors(model, tok, texts, max_length=32)
    assert vectors.column_names == ["hidden", "labels"] and len(vectors["hidden"][0]) == 32
    assert 0.08 < len(vectors) / sum(len(tok(t)["input_ids"]) - 2 for t in texts) < 0.22  # ~15 % of the tokens
    run = bert.train_mlm_head(model, vectors, epochs=8, lr=2e-2, batch_size=32)
    losses = [entry["loss"] for entry in run.trainer.state.log_history if "loss" in entry]
    assert losses[-1] < losses[0]
    assert all(torch.equal(p, encoder_before[n]) for n, p in model.bert.named_parameters())  # frozen
    items = bert.blanks(SENTENCES * 4, [tok], max_length=32)
    short = bert.blanks(SENTENCES, [tok], max_length=12)  # the first sentence has 16 tokens
    assert len(short) == 2 and short == bert.blanks(SENTENCES[1:], [tok], max_length=12)
    assert all(text.count("[MASK]") == 1 and word.isalpha() for text, word in items)
    # the whole model (encoder + trained head) scores the blanks; it has seen these sentences
    scores = bert.fill_accuracy(model, tok, items, k=5)
    assert scores["blanks"] == len(items) and 0 <= scores["top1"] <= scores["top5"] <= 1
    train_items = [("x [MASK]", "the")] * 3 + [("x [MASK]", "of")] * 2 + [("x [MASK]", "dog")]
    baseline = bert.frequent_word_accuracy(train_items, [("x [MASK]", "the"), ("x [MASK]", "of"), ("x [MASK]", "cat")], k=2)
    assert baseline == {"top1": 1 / 3, "top2": 2 / 3, "blanks": 3, "guesses": ["the", "of"]}
    with pytest.raises(ValueError, match="no blanks"):
        bert.fill_accuracy(model, tok, [])
    with pytest.raises(ValueError, match="exactly one"):
        bert.fill_accuracy(model, tok, [("the [MASK] and the [MASK]", "cat")])
    with pytest.raises(ValueError, match="needs training blanks"):
        bert.frequent_word_accuracy([], items)
