import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from companion import data, resources, training


@pytest.fixture(scope="module")
def tiny_run(provisioned):
    """Two real optimisation steps of the encoder on 32 movie sentences (the session's source, smoke)."""
    ds = data.load("movie-sentiment")
    ds = type(ds)({k: v.select(range(32)) for k, v in ds.items()})
    enc = resources.classifier("encoder", data.SENTIMENT_LABELS)
    return training.finetune(enc.model, enc.tokenizer, ds, lr=5e-5, name="test-tiny", max_steps=2)


def test_finetune_records_history_and_throughput(tiny_run):
    assert tiny_run.history and {"epoch", "eval_accuracy", "eval_loss"} <= set(tiny_run.history[-1])
    assert tiny_run.train_examples == 2 * 16 and tiny_run.examples_per_second > 0


def test_evaluate_returns_every_metric(tiny_run):
    scores = tiny_run.evaluate("test")
    assert {"accuracy", "precision", "recall", "f1", "confusion_matrix"} <= set(scores)
    assert sum(map(sum, scores["confusion_matrix"])) == 32


def test_classify_and_save_reload_agree(tiny_run, tmp_path):
    texts = ["A warm, funny, beautifully acted film.", "Tedious and empty."]
    labels = tiny_run.classify(texts)
    assert [set(r) for r in labels] == [{"text", "label", "score"}] * 2
    folder = tiny_run.save(tmp_path / "model")
    reloaded = AutoModelForSequenceClassification.from_pretrained(folder)
    batch = tiny_run.tokenizer(texts, padding=True, return_tensors="pt")
    tiny_run.model.eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(**batch).logits, tiny_run.model(**batch).logits.cpu(), atol=1e-5)


def test_weight_change_is_zero_for_the_same_model_and_positive_after_training(tiny_run):
    fresh = resources.classifier("encoder", data.SENTIMENT_LABELS).model
    assert training.weight_change(fresh, fresh) == 0.0
    assert training.weight_change(fresh, tiny_run.model) > 0.0


def test_finetune_refuses_a_head_of_the_wrong_size(provisioned):
    ds = data.load("movie-sentiment")
    enc = resources.classifier("encoder", ["a", "b", "c"])
    with pytest.raises(ValueError, match="2 labels but the model head has 3"):
        training.finetune(enc.model, enc.tokenizer, ds, lr=5e-5, name="test-bad")


def test_probabilities_are_distributions(tiny_run):
    probs = tiny_run.probabilities("validation")
    assert probs.shape == (32, 2) and abs(probs.sum(axis=1) - 1).max() < 1e-5
    assert (tiny_run.predictions("validation") == probs.argmax(axis=1)).all()


def test_the_spine_sets_up_trainer_with_the_books_named_choices(tiny_run):
    args = tiny_run.trainer.args
    assert args.warmup_steps == training.FINETUNING.warmup and args.weight_decay == training.WEIGHT_DECAY
    assert args.lr_scheduler_type.value == training.FINETUNING.decay == "linear" and args.seed == 0
    assert isinstance(tiny_run, training.Training) and tiny_run.train_seconds > 0


def test_arguments_use_bf16_only_on_a_gpu_and_let_a_run_keep_fp32(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path))
    on_this_machine = training.arguments("probe")
    assert on_this_machine.bf16 is (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    assert on_this_machine.save_strategy == "no" and on_this_machine.report_to == []
    kept = training.arguments("probe", bf16=False, seed=7)
    assert kept.bf16 is False and kept.seed == 7  # options override the fixed choices, no duplicate keyword


def test_the_spine_refuses_an_empty_set_and_an_unclear_length():
    from datasets import Dataset

    model = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="x: the training data set is empty"):
        training.train(model, Dataset.from_dict({"a": []}), name="x", lr=1e-3, schedule=training.FINETUNING,
                       batch_size=2, collator=list, epochs=1)
    with pytest.raises(ValueError, match="epochs or as steps"):
        training.train(model, Dataset.from_dict({"a": [1]}), name="x", lr=1e-3, schedule=training.FINETUNING,
                       batch_size=2, collator=list, epochs=1, steps=3)


def test_history_keeps_every_eval_score_and_the_last_training_loss():
    log = [{"eval_loss": 0.7, "eval_accuracy": 0.5, "eval_runtime": 1.0, "step": 0},
           {"loss": 0.69, "step": 5}, {"loss": 0.6, "step": 10},
           {"eval_loss": 0.5, "eval_accuracy": 0.8, "eval_samples_per_second": 9.0, "step": 10}]
    assert training.history(log, steps_per_epoch=20) == [
        {"step": 0, "epoch": 0.0, "train_loss": None, "eval_loss": 0.7, "eval_accuracy": 0.5},
        {"step": 10, "epoch": 0.5, "train_loss": 0.6, "eval_loss": 0.5, "eval_accuracy": 0.8}]


def _sentences(texts: list, labels: list) -> "data.DatasetDict":
    from datasets import Dataset, DatasetDict
    ok = Dataset.from_dict({"text": ["good", "bad"], "label": [1, 0]})
    return DatasetDict(train=Dataset.from_dict({"text": texts, "label": labels}), validation=ok, test=ok)


def test_finetune_names_a_missing_text_before_any_work(provisioned):
    enc = resources.classifier("encoder", data.SENTIMENT_LABELS)
    with pytest.raises(ValueError, match="'train' split's 'text' column holds None .not text. in row 1"):
        training.finetune(enc.model, enc.tokenizer, _sentences(["fine", None, "ok"], [1, 0, 1]), lr=5e-5,
                          name="test-none")


def test_finetune_names_a_label_outside_the_head(provisioned):
    enc = resources.classifier("encoder", data.SENTIMENT_LABELS)
    with pytest.raises(ValueError, match="'train' split's 'label' column holds 5 in row 2; the model's head has"
                                         " labels 0 .. 1"):
        training.finetune(enc.model, enc.tokenizer, _sentences(["a", "b", "c"], [1, 0, 5]), lr=5e-5,
                          name="test-label")


def test_probabilities_come_back_in_the_splits_order_though_scored_by_length(tiny_run):
    part = tiny_run.encoded["test"]
    ordered, order = training.by_length(part)
    lengths = [len(ids) for ids in ordered["input_ids"]]
    assert lengths == sorted(lengths) and sorted(order.tolist()) == list(range(len(part)))
    rows = [0, int(order[-1])]  # the first row and the longest one, scored on their own
    tiny_run.model.eval()
    with torch.no_grad():
        alone = [torch.softmax(tiny_run.model(**tiny_run.tokenizer(part["text"][i], truncation=True, max_length=64,
                                                                   return_tensors="pt")).logits, -1)[0].numpy()
                 for i in rows]
    assert abs(tiny_run.probabilities("test")[rows] - np.stack(alone)).max() < 1e-4


def test_finetuning_draws_batches_of_similar_length(tiny_run):
    assert tiny_run.trainer.args.train_sampling_strategy == "group_by_length"
