import pytest
import torch
from peft import PeftModel
from transformers import BertConfig, BertForSequenceClassification, GPT2Config, GPT2ForSequenceClassification

from companion import data, peft_tuning, resources
from companion.peft_tuning import Strategy


def tiny_bert(seed: int = 0) -> BertForSequenceClassification:
    """A 3-block BERT classifier of width 16 (random weights: these tests check mechanics only)."""
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(config)


def batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {"input_ids": torch.randint(0, 50, (4, 7)), "attention_mask": torch.ones(4, 7, dtype=torch.long)}


def test_trainable_parameters_per_strategy():
    total = peft_tuning.trainable(tiny_bert())[1]
    head = 16 * 2 + 2
    block = peft_tuning.trainable(tiny_bert().bert.encoder.layer[2])[1]
    pooler = 16 * 16 + 16
    assert peft_tuning.trainable(peft_tuning.prepare(tiny_bert(), Strategy("f", "full", 1e-5))) == (total, total)
    assert peft_tuning.trainable(peft_tuning.prepare(tiny_bert(), Strategy("h", "head", 1e-3)))[0] == head
    top = peft_tuning.prepare(tiny_bert(), Strategy("t", "top", 1e-4, layers=1))
    assert peft_tuning.trainable(top)[0] == block + pooler + head
    assert all(p.requires_grad == (".layer.2." in n or ".pooler." in n or n.startswith("classifier"))
               for n, p in top.named_parameters())
    for rank in (2, 4):  # A (r x 16) and B (16 x r) on query and value of 3 blocks, plus the head
        lora = peft_tuning.prepare(tiny_bert(), Strategy("l", "lora", 5e-4, rank=rank))
        assert peft_tuning.trainable(lora)[0] == 3 * 2 * (rank * 16 + 16 * rank) + head
        assert sorted({n.rsplit(".", 1)[-1] for n in peft_tuning.lora_layers(lora)}) == ["query", "value"]
    with pytest.raises(ValueError, match="no LoRA targets named for model type 'gpt2'"):
        peft_tuning.lora_config(GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_embd=8, n_head=2)), 4)
    with pytest.raises(ValueError, match="unknown strategy kind 'prefix'"):
        peft_tuning.prepare(tiny_bert(), Strategy("p", "prefix", 1e-3))


def test_an_untrained_adapter_changes_nothing_and_lora_by_hand_matches_peft():
    base = tiny_bert()
    before = peft_tuning.logits(base, batch())
    lora = peft_tuning.prepare(tiny_bert(), Strategy("l", "lora", 5e-4, rank=4))
    assert torch.allclose(peft_tuning.logits(lora, batch()), before, atol=1e-6)  # B = 0
    layer = peft_tuning.lora_layers(lora)["base_model.model.bert.encoder.layer.0.attention.self.query"]
    assert torch.count_nonzero(layer.lora_B["default"].weight) == 0
    torch.nn.init.normal_(layer.lora_B["default"].weight)
    x = torch.randn(5, 16)
    with torch.no_grad():
        assert layer.scaling["default"] == 2.0  # alpha / r = 2 x 4 / 4
        assert torch.allclose(peft_tuning.lora_by_hand(layer, x), layer(x), atol=1e-5)
        assert not torch.allclose(layer(x), layer.get_base_layer()(x), atol=1e-3)


def test_saved_adapter_reloads_on_a_fresh_base_and_merges_to_the_same_logits(tmp_path):
    lora = peft_tuning.prepare(tiny_bert(), Strategy("l", "lora", 5e-4, rank=4))
    for layer in peft_tuning.lora_layers(lora).values():
        torch.nn.init.normal_(layer.lora_B["default"].weight, std=0.5)
    torch.nn.init.normal_(lora.base_model.model.classifier.modules_to_save["default"].weight)
    trained = peft_tuning.logits(lora, batch())
    lora.save_pretrained(tmp_path)
    assert (tmp_path / "adapter_model.safetensors").exists()
    reloaded = PeftModel.from_pretrained(tiny_bert(), tmp_path)  # the same base weights (seed 0)
    assert torch.allclose(peft_tuning.logits(reloaded, batch()), trained, atol=1e-5)
    merged = reloaded.merge_and_unload()
    assert isinstance(merged, BertForSequenceClassification)
    assert torch.allclose(peft_tuning.logits(merged, batch()), trained, atol=1e-5)
    assert peft_tuning.saved_bytes(lora) < peft_tuning.saved_bytes(peft_tuning.prepare(tiny_bert(), Strategy("f", "full", 1e-5)))


def test_compare_trains_a_strategy_and_scores_it(provisioned):
    ds = data.load("movie-sentiment")
    ds = type(ds)({k: v.select(range(24)) for k, v in ds.items()})
    enc = resources.classifier("encoder", data.SENTIMENT_LABELS)
    outcome = peft_tuning.compare(Strategy("LoRA r=4", "lora", 5e-4, rank=4), enc.model, enc.tokenizer, ds,
                                  epochs=1)
    assert 0 < outcome.trainable < outcome.total / 50 and outcome.saved_bytes > 0 and outcome.peak_bytes >= 0
    assert set(outcome.test) >= {"accuracy", "confusion_matrix"} and outcome.run.train_seconds > 0


def test_block_count_refuses_a_model_without_blocks():
    with pytest.raises(ValueError, match="not an encoder"):
        peft_tuning.block_count(torch.nn.Linear(2, 2))
