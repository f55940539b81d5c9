import torch

from companion import data, heads, resources


def test_cls_logits_recompute_the_models_own_logits(provisioned):
    enc = resources.classifier("encoder", data.SENTIMENT_LABELS)
    enc.model.eval()
    batch = enc.tokenizer(["Great.", "Not great at all."], padding=True, return_tensors="pt")
    cls, logits = heads.cls_logits(enc.model, batch)
    assert cls.shape == (2, enc.model.config.hidden_size)
    with torch.no_grad():
        assert torch.allclose(logits, enc.model(**batch).logits, atol=1e-6)


def test_head_names_are_the_classifier_weights():
    assert heads.is_head("pre_classifier.weight") and heads.is_head("classifier.bias")
    assert not heads.is_head("bert.encoder.layer.0.output.dense.weight")
