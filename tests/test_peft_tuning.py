import pytest
import torch
from peft import PeftModel
from datasets import Dataset
from transformers import (BertConfig, BertForSequenceClassification, GPT2Config, GPT2ForSequenceClassification,
                          TrainerCallback, default_data_collator)

from companion import data, peft_tuning, resources, training
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
    everything = peft_tuning.prepare(tiny_bert(), Strategy("d", "llrd", 1e-4, decay=0.5))
    assert peft_tuning.trainable(everything) == (total, total)
    gradual = peft_tuning.prepare(tiny_bert(), Strategy("g", "gradual", 1e-4))  # starts as the probe
    assert peft_tuning.trainable(gradual)[0] == head
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


def test_depth_counts_from_the_output():
    blocks = 3
    assert peft_tuning.depth("classifier.weight", blocks) == 0
    assert peft_tuning.depth("bert.pooler.dense.bias", blocks) == 1
    assert peft_tuning.depth("bert.encoder.layer.2.output.dense.weight", blocks) == 1
    assert peft_tuning.depth("bert.encoder.layer.0.attention.self.query.weight", blocks) == 3
    assert peft_tuning.depth("bert.embeddings.word_embeddings.weight", blocks) == 4
    assert peft_tuning.depth("distilbert.transformer.layer.5.ffn.lin1.weight", 6) == 1
    assert peft_tuning.depth("pre_classifier.bias", 6) == 0


def test_layerwise_groups_decay_the_rate_with_depth_and_skip_weight_decay_for_biases_and_norms():
    model = tiny_bert()
    groups = peft_tuning.layerwise_groups(model, 1e-3, 0.5)
    names = {id(p): n for n, p in model.named_parameters()}
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(names)  # every parameter once, frozen or not
    for group in groups:
        for p in group["params"]:
            name = names[id(p)]
            assert group["lr"] == pytest.approx(1e-3 * 0.5 ** peft_tuning.depth(name, 3)), name
            plain = name.endswith("bias") or "LayerNorm" in name
            assert group["weight_decay"] == (0.0 if plain else training.WEIGHT_DECAY), name
    assert sorted({g["lr"] for g in groups}, reverse=True) == pytest.approx([1e-3, 5e-4, 2.5e-4, 1.25e-4, 6.25e-5])
    assert peft_tuning.optimizer(model, Strategy("f", "full", 1e-4)) is None
    same_rate = peft_tuning.optimizer(model, Strategy("g", "gradual", 1e-4))
    assert {g["lr"] for g in same_rate.param_groups} == {1e-4}


class TrainedCount(TrainerCallback):
    """Records how many parameters are trainable at each step (after the unfreezing callback ran)."""

    def __init__(self):
        self.counts: list[int] = []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.counts.append(peft_tuning.trainable(model)[0])


def test_gradual_unfreezing_reaches_one_block_deeper_per_stage_and_trains_everything_by_the_end():
    unfreezing = peft_tuning.GradualUnfreezing(blocks=3)
    assert [unfreezing.stage(step, 10) for step in range(10)] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    model = tiny_bert()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    strategy = Strategy("g", "gradual", 1e-2)
    peft_tuning.prepare(model, strategy)
    torch.manual_seed(0)
    rows = Dataset.from_dict({"input_ids": torch.randint(0, 50, (40, 6)).tolist(), "attention_mask": [[1] * 6] * 40,
                              "labels": [i % 2 for i in range(40)]})
    counts = TrainedCount()
    training.train(model, rows, name="gradual-test", lr=strategy.lr, schedule=training.FINETUNING, batch_size=4,
                   collator=default_data_collator, epochs=1, optimizer=peft_tuning.optimizer(model, strategy),
                   callbacks=[unfreezing, counts])
    assert counts.counts == sorted(counts.counts) and len(set(counts.counts)) == 5  # five stages, growing
    assert counts.counts[0] == 16 * 2 + 2  # the head alone
    assert counts.counts[-1] == peft_tuning.trainable(tiny_bert())[1]  # everything
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.cpu(), before[n])}  # Trainer may move it to a GPU
    assert "bert.embeddings.word_embeddings.weight" in changed  # the last stage trains the embeddings


def tiny_bert_in_4_bits(folder) -> BertForSequenceClassification:
    """:func:`tiny_bert` saved and loaded back with QLoRA's 4-bit quantization."""
    tiny_bert().save_pretrained(folder)
    return BertForSequenceClassification.from_pretrained(folder, quantization_config=peft_tuning.four_bit())


def test_qlora_trains_adapters_on_a_4_bit_base(tmp_path):
    from bitsandbytes.nn import Linear4bit

    model = tiny_bert_in_4_bits(tmp_path)
    assert model.is_loaded_in_4bit and isinstance(model.bert.encoder.layer[0].attention.self.query, Linear4bit)
    assert type(model.classifier) is torch.nn.Linear  # the new head stays in full precision
    plain = peft_tuning.logits(tiny_bert(), batch())
    assert 0 < (peft_tuning.logits(model, batch()) - plain).abs().max() < 0.5  # NF4 rounds the weights
    with pytest.raises(ValueError, match="loaded in 4 bits: only QLoRA"):
        peft_tuning.prepare(model, Strategy("l", "lora", 5e-4, rank=4))
    with pytest.raises(ValueError, match="not loaded in 4 bits"):
        peft_tuning.prepare(tiny_bert(), Strategy("q", "qlora", 5e-4, rank=4))
    qlora = peft_tuning.prepare(model, Strategy("q", "qlora", 5e-4, rank=4))
    lora = peft_tuning.prepare(tiny_bert(), Strategy("l", "lora", 5e-4, rank=4))
    assert peft_tuning.trainable(qlora) == peft_tuning.trainable(lora)  # 4-bit weights counted as parameters
    layers = peft_tuning.four_bit_layers(qlora)
    assert len(layers) == 3 * 6 + 1  # q, k, v, attention output, intermediate, output per block; the pooler
    original = tiny_bert().bert.encoder.layer[0].attention.self.query.weight.detach()
    restored = peft_tuning.dequantized(next(l for n, l in layers.items() if n.endswith("layer.0.attention.self.query.base_layer")))
    assert restored.shape == original.shape
    # 16 levels between -1 and 1 times each block's absolute maximum: an error of at most half a gap (the
    # widest gap, between -1 and the next level, is 0.304), up to the rounding of the scale itself
    assert (restored - original).abs().max() <= 0.16 * original.abs().max() and not torch.equal(restored, original)
    device = next(qlora.parameters()).device
    loss = qlora(**{k: v.to(device) for k, v in batch().items()}, labels=torch.tensor([0, 1, 0, 1], device=device)).loss
    loss.backward()
    trained = {n for n, p in qlora.named_parameters() if p.grad is not None}
    assert trained and all("lora_" in n or "classifier" in n for n in trained)
    # the adapter alone either way: the same tensors, the config a few hundred bytes longer
    assert abs(peft_tuning.saved_bytes(qlora) - peft_tuning.saved_bytes(lora)) < 1_000


def tiny_gemma_classifier() -> "Gemma3TextForSequenceClassification":
    """A 2-layer Gemma 3 text classifier (random weights) whose pad token is id 0, as Gemma's."""
    from transformers import Gemma3TextConfig, Gemma3TextForSequenceClassification

    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=60, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=8, num_labels=2,
                              pad_token_id=0, layer_types=["full_attention", "full_attention"])
    return Gemma3TextForSequenceClassification(config).eval()


def test_a_decoder_head_reads_the_last_real_token_whatever_the_padding():
    model = tiny_gemma_classifier()
    ids = torch.tensor([[5, 6, 7, 8]])
    alone = model(input_ids=ids).logits
    padded = model(input_ids=torch.tensor([[5, 6, 7, 8, 0, 0]]), attention_mask=torch.tensor([[1, 1, 1, 1, 0, 0]])).logits
    torch.testing.assert_close(alone, padded)
    changed_first = model(input_ids=torch.tensor([[9, 6, 7, 8]])).logits  # the last token has seen the first
    assert not torch.allclose(alone, changed_first)


def test_lora_on_a_decoder_classifier_adapts_query_and_value_and_trains_the_head():
    model = tiny_gemma_classifier()
    config = model.config
    lora = peft_tuning.prepare(model, Strategy("l", "lora", 1e-3, rank=4))
    adapted = sorted({name.split(".")[-1] for name in peft_tuning.lora_layers(lora)})
    assert adapted == ["q_proj", "v_proj"]
    q_out, v_out = config.num_attention_heads * config.head_dim, config.num_key_value_heads * config.head_dim
    per_layer = 4 * (config.hidden_size + q_out) + 4 * (config.hidden_size + v_out)
    assert peft_tuning.trainable(lora)[0] == config.num_hidden_layers * per_layer + config.hidden_size * 2


def test_a_zero_head_starts_at_even_odds():
    model = tiny_gemma_classifier()
    head = peft_tuning.zero_head(model)
    assert head is model.score and not head.weight.any()
    out = model(input_ids=torch.tensor([[5, 6, 7]]), labels=torch.tensor([1]))
    assert torch.equal(out.logits, torch.zeros(1, 2)) and abs(out.loss.item() - 0.6931) < 1e-3
    assert not tiny_bert().classifier.weight.eq(0).all() and not peft_tuning.zero_head(tiny_bert()).weight.any()
    with pytest.raises(ValueError, match="no linear head"):
        peft_tuning.zero_head(torch.nn.Sequential())
