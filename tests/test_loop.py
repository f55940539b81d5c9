import pytest
import torch
from datasets import Dataset
from transformers import BertConfig, BertModel, DataCollatorWithPadding, get_linear_schedule_with_warmup

from companion import loop, resources, settings, training


@pytest.fixture(scope="module")
def tok(provisioned):
    return resources.tokenizer("all-MiniLM-L6-v2")


def tiny_classifier(tok) -> loop.SentimentClassifier:
    torch.manual_seed(settings.SEED)
    encoder = BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                   intermediate_size=64, max_position_embeddings=64), add_pooling_layer=False)
    return loop.SentimentClassifier(encoder)


SENTENCES = Dataset.from_dict({
    "text": ["a wonderful film", "dull and far too long", "great acting", "a mess", "loved every minute of it",
             "boring", "superb", "awful script and worse acting"] * 4,
    "label": [1, 0, 1, 0, 1, 0, 1, 0] * 4})


def test_the_collate_pads_like_the_library_and_keeps_labels_for_bce(tok):
    data = loop.SentenceDataset(SENTENCES, tok, max_length=16)
    rows = [data[i] for i in range(4)]
    ours = loop.pad_batch(rows, tok.pad_token_id)
    library = DataCollatorWithPadding(tok)([{"input_ids": r["input_ids"]} for r in rows])
    assert torch.equal(ours["input_ids"], library["input_ids"])
    assert torch.equal(ours["attention_mask"], library["attention_mask"])
    assert ours["labels"].dtype == torch.float and ours["labels"].tolist() == [1.0, 0.0, 1.0, 0.0]


def test_bad_splits_are_named(tok):
    with pytest.raises(ValueError, match="empty"):
        loop.SentenceDataset(SENTENCES.select([]), tok, 16)
    with pytest.raises(ValueError, match="no label column"):
        loop.SentenceDataset(SENTENCES.remove_columns("label"), tok, 16)


def test_one_logit_bce_is_two_class_cross_entropy_with_logits_zero_and_z():
    logits, labels = torch.tensor([2.0, -1.0, 0.3]), torch.tensor([1.0, 0.0, 0.0])
    bce = torch.nn.BCEWithLogitsLoss()(logits, labels)
    two = torch.stack([torch.zeros_like(logits), logits], dim=1)
    assert torch.allclose(bce, torch.nn.functional.cross_entropy(two, labels.long()))
    assert loop.SentimentClassifier.predict(logits).tolist() == [1, 0, 1]


def test_accumulated_micro_batches_give_the_large_batch_gradient(tok):
    model = tiny_classifier(tok)
    batch = loop.pad_batch([loop.SentenceDataset(SENTENCES, tok, 16)[i] for i in range(32)], tok.pad_token_id)
    assert loop.accumulated_gradient(model, batch, 4) < 1e-6
    with pytest.raises(ValueError, match="do not split into 5"):
        loop.accumulated_gradient(model, batch, 5)


def test_the_loop_learns_follows_its_schedule_and_round_trips_its_state_dict(tok, tmp_path):
    model = tiny_classifier(tok)
    train = loop.loader(SENTENCES, tok, batch_size=8, max_length=16, shuffle=True)
    validation = loop.loader(SENTENCES, tok, batch_size=16, max_length=16, shuffle=False)
    before = loop.evaluate(model, validation)
    fitted = loop.fit(model, train, validation, lr=3e-3, epochs=6, progress=False)
    assert len(fitted.history) == 6 and len(fitted.step_losses) == 6 * 4
    assert fitted.history[-1]["validation_loss"] < before["loss"]
    assert fitted.history[-1]["validation_accuracy"] == 1.0  # 8 distinct sentences, learned by heart
    torch.save(model.state_dict(), tmp_path / "classifier.pt")
    fresh = tiny_classifier(tok)
    fresh.load_state_dict(torch.load(tmp_path / "classifier.pt"))
    assert loop.evaluate(fresh, validation) == loop.evaluate(model, validation)


def test_accumulation_takes_one_step_per_group_of_batches(tok):
    model = tiny_classifier(tok)
    train = loop.loader(SENTENCES, tok, batch_size=4, max_length=16, shuffle=True)  # 8 batches
    fitted = loop.fit(model, train, train, lr=1e-3, epochs=1, accumulation=3, progress=False)
    assert len(fitted.step_losses) == 3  # 3 + 3 + the last 2
    with pytest.raises(ValueError, match="at least 1"):
        loop.fit(model, train, train, lr=1e-3, epochs=1, accumulation=0)


def test_the_schedule_is_trainers_linear_warmup_and_decay():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=1.0)
    scheduler = get_linear_schedule_with_warmup(optimizer, 10, 100)
    rates = []
    for _ in range(100):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates[0] == 0.0 and rates[5] == 0.5 and rates[10] == 1.0 and rates[55] == pytest.approx(0.5)


def test_parameter_groups_leave_biases_and_layernorm_undecayed(tok):
    model = tiny_classifier(tok)
    decayed, plain = loop.parameter_groups(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decayed["weight_decay"] == training.WEIGHT_DECAY and plain["weight_decay"] == 0.0
    assert all(not names[id(p)].endswith("bias") and "LayerNorm" not in names[id(p)] for p in decayed["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_trainer_trains_the_same_module_through_the_spine(tok):
    model = tiny_classifier(tok)
    data = loop.SentenceDataset(SENTENCES, tok, max_length=16)
    done = training.train(model, data, name="test-loop-trainer", lr=3e-3, schedule=training.FINETUNING, batch_size=8,
                          collator=lambda rows: loop.pad_batch(rows, tok.pad_token_id), epochs=6)
    validation = loop.loader(SENTENCES, tok, batch_size=16, max_length=16, shuffle=False)
    assert loop.evaluate(done.model, validation)["accuracy"] == 1.0
