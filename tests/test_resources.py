from pathlib import Path

import logging

import pytest
import torch

from companion import data, resources
from companion.provision import PackagedModel, ResourceError


def test_encoder_role_resolves_offline_to_the_packaged_minilm(monkeypatch, capsys):
    monkeypatch.setenv("COMPANION_SOURCE", "offline")
    where = resources.resolve("encoder")
    assert where.name == "all-MiniLM-L6-v2" and where.source == "offline"
    assert (Path(where.location) / "model.safetensors").is_file()
    assert "source=offline" in capsys.readouterr().out


@pytest.mark.parametrize("profile,expected", [("cpu", "distilbert-base-uncased"), ("gpu", "bert-base-uncased")])
def test_encoder_role_resolves_online_to_the_profile_checkpoint(monkeypatch, capsys, profile, expected):
    monkeypatch.setenv("COMPANION_SOURCE", "hub")
    monkeypatch.setenv("COMPANION_PROFILE", profile)
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example")
    assert resources.resolve("encoder") == (expected, "hub", expected)
    assert "https://mirror.example" in capsys.readouterr().out


def test_named_model_resolves_online_to_its_hub_id(monkeypatch):
    monkeypatch.setenv("COMPANION_SOURCE", "hub")
    assert resources.resolve("all-MiniLM-L6-v2").location == "sentence-transformers/all-MiniLM-L6-v2"


def test_unknown_model_lists_the_known_names():
    with pytest.raises(ResourceError, match="unknown model 'gpt-7'.*encoder.*all-MiniLM-L6-v2"):
        resources.resolve("gpt-7")


def test_hub_only_model_offline_says_what_to_set(monkeypatch):
    monkeypatch.setenv("COMPANION_SOURCE", "offline")
    with pytest.raises(ResourceError, match="bert-base-uncased exists only on the hub.*COMPANION_SOURCE=hub"):
        resources.resolve("bert-base-uncased")


def test_missing_package_says_what_to_install():
    with pytest.raises(ResourceError, match="pip install no-such-model-package==1.0"):
        PackagedModel("no-such-model-package", "1.0", "x").path()


@pytest.mark.source("offline")  # the head's names are those of MiniLM's BertForSequenceClassification
def test_classifier_adds_a_new_seeded_head():
    first = resources.classifier("encoder", ["negative", "positive"])
    second = resources.classifier("encoder", ["negative", "positive"])
    assert first.new_weights == ["classifier.bias", "classifier.weight"]
    assert first.model.config.id2label == {0: "negative", 1: "positive"}
    assert first.model.classifier.weight.equal(second.model.classifier.weight)


def test_fetch_provisions_every_offline_resource(provisioned):
    assert set(provisioned) == {"all-MiniLM-L6-v2", "SmolLM2-135M-Instruct", "gemma-3-270m", "gpt2-tokenizer",
                                "movie-sentiment", "chinese-reviews", "brown", "document-classes", "sentence-pairs",
                                "token-tags", "qa"}
    assert all(Path(p).exists() for p in provisioned.values())


def test_decoder_role_resolves_offline_to_the_converted_smollm2(monkeypatch, provisioned):
    monkeypatch.setenv("COMPANION_SOURCE", "offline")
    where = resources.resolve("decoder")
    assert where.name == "SmolLM2-135M-Instruct"
    assert {"model.safetensors", "config.json", "tokenizer.json", "provenance.json"} <= {
        p.name for p in Path(where.location).iterdir()}


def test_gpt2_tokenizer_offline_is_the_real_bpe(provisioned):
    tok = resources.tokenizer("gpt2")
    assert len(tok) == 50257 and tok.eos_token == "<|endoftext|>"
    assert tok("Hello world")["input_ids"] == [15496, 995]  # GPT-2's ids for these two words


def test_decoder_role_resolves_online_to_gpt2(monkeypatch):
    monkeypatch.setenv("COMPANION_SOURCE", "hub")
    assert resources.resolve("decoder").location == "openai-community/gpt2"


def test_base_decoder_role_is_gemma_from_both_sources(monkeypatch, provisioned):
    monkeypatch.setenv("COMPANION_SOURCE", "offline")
    offline = resources.resolve("base-decoder")
    assert offline.name == "gemma-3-270m" and (Path(offline.location) / "model.safetensors").is_file()
    monkeypatch.setenv("COMPANION_SOURCE", "hub")
    assert resources.resolve("base-decoder").location == "google/gemma-3-270m"


def test_cli_reports_errors_without_a_traceback(monkeypatch, capsys):
    from companion.__main__ import main
    monkeypatch.setenv("COMPANION_PROFILE", "nope")
    assert main(["info"]) == 1
    assert "error: COMPANION_PROFILE='nope'" in capsys.readouterr().err


class FakeAuto:
    """Stands for an ``AutoModel*`` class and ``AutoTokenizer``: records each ``from_pretrained`` call; the
    hub refuses ``refused`` as gated, the way transformers reports it (an OSError from GatedRepoError)."""

    def __init__(self, refused: str = ""):
        self.calls: list[tuple[str, dict]] = []
        self.refused = refused

    def from_pretrained(self, location, **options):
        from huggingface_hub.errors import GatedRepoError
        from huggingface_hub.utils import httpx

        self.calls.append((location, options))
        if location == self.refused:
            url = f"https://huggingface.co/{location}/resolve/main/config.json"
            gated = GatedRepoError("401 Client Error. Cannot access gated repo",
                                   response=httpx.Response(401, request=httpx.Request("GET", url)))
            raise OSError(f"You are trying to access a gated repo.\n{gated}") from gated
        return torch.nn.Linear(1, 1)


@pytest.fixture
def fake_hub(monkeypatch):
    """The hub source with fake model classes and tokenizer: no download."""
    monkeypatch.setenv("COMPANION_SOURCE", "hub")
    fakes = {"lm": FakeAuto(refused="google/gemma-3-270m"), "mlm": FakeAuto(), "tok": FakeAuto()}
    monkeypatch.setattr(resources, "AutoModelForCausalLM", fakes["lm"])
    monkeypatch.setattr(resources, "AutoModelForMaskedLM", fakes["mlm"])
    monkeypatch.setattr(resources, "AutoTokenizer", fakes["tok"])
    return fakes


def test_load_dtype_is_fp32_on_cpu_and_bf16_on_a_bf16_gpu_for_models_only_run(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resources.load_dtype() == resources.load_dtype(trained=True) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resources.load_dtype() == torch.bfloat16 and resources.load_dtype(trained=True) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resources.load_dtype() == torch.float32


def test_every_load_passes_the_dtype_and_prints_it(fake_hub, monkeypatch, capsys):
    monkeypatch.setattr(resources, "load_dtype", lambda trained=False: torch.float16 if trained else torch.bfloat16)
    resources.language_model("decoder")
    resources.masked_lm("bert-base-uncased")
    assert [o["dtype"] for _, o in fake_hub["lm"].calls + fake_hub["mlm"].calls] == [torch.bfloat16] * 2
    out = capsys.readouterr().out
    assert "'decoder' -> gpt2: source=hub" in out and out.count("dtype=bfloat16") == 2


def test_classifier_loads_in_the_policy_dtype_and_says_so(monkeypatch, capsys):
    assert resources.classifier("encoder", ["a", "b"]).model.dtype == torch.float32
    assert "dtype=float32" in capsys.readouterr().out
    monkeypatch.setattr(resources, "load_dtype", lambda trained=False: torch.bfloat16)
    assert resources.classifier("encoder", ["a", "b"]).model.dtype == torch.bfloat16


def test_gated_base_decoder_falls_back_with_a_message_naming_the_licence_and_the_token(fake_hub, monkeypatch, capsys):
    monkeypatch.setattr(resources.huggingface_hub, "get_token", lambda: None)
    lm = resources.language_model("base-decoder")
    assert lm.resolved == ("SmolLM2-135M", "hub", "HuggingFaceTB/SmolLM2-135M")
    assert [location for location, _ in fake_hub["lm"].calls] == ["google/gemma-3-270m", "HuggingFaceTB/SmolLM2-135M"]
    assert fake_hub["tok"].calls[0][0] == "HuggingFaceTB/SmolLM2-135M"
    out = capsys.readouterr().out
    assert "https://huggingface.co/google/gemma-3-270m" in out and "HF_TOKEN" in out and "no token was found" in out
    assert "Falling back to HuggingFaceTB/SmolLM2-135M" in out
    assert resources.MODELS["gemma-3-270m"].gated_fallback == "SmolLM2-135M"
    assert resources.MODELS["SmolLM2-135M"].gated_fallback is None


def test_other_load_errors_are_not_taken_for_a_gated_refusal(fake_hub):
    def unreachable(location, **options):
        raise OSError("We couldn't connect to 'https://huggingface.co'")
    fake_hub["lm"].from_pretrained = unreachable
    with pytest.raises(OSError, match="couldn't connect"):
        resources.language_model("base-decoder")


@pytest.mark.source("offline")  # the head's names are those of MiniLM's BertForSequenceClassification
def test_a_new_head_is_listed_by_the_companion_not_by_transformers_load_report(provisioned, capfd):
    clf = resources.classifier("encoder", data.SENTIMENT_LABELS)
    assert clf.new_weights == ["classifier.bias", "classifier.weight"]
    assert "LOAD REPORT" not in capfd.readouterr().err
    assert logging.getLogger("transformers.modeling_utils").filters == []  # other warnings still show


def test_a_new_masked_lm_head_is_listed_by_the_companion_without_transformers_warnings(provisioned, capfd):
    mlm = resources.new_masked_lm_head("all-MiniLM-L6-v2")  # a sentence-embedding checkpoint: no MLM head
    assert "cls.predictions.transform.dense.weight" in mlm.new_weights and "cls.predictions.bias" in mlm.new_weights
    assert mlm.model.cls.predictions.decoder.weight is mlm.model.bert.embeddings.word_embeddings.weight
    err = capfd.readouterr().err
    assert "LOAD REPORT" not in err and "seem corrupted" not in err


def test_a_warm_started_encoder_decoder_lists_its_new_weights(provisioned):
    warm = resources.warm_started_seq2seq("bert-encoder")
    model, tok = warm.model, warm.tokenizer
    layers = model.decoder.config.num_hidden_layers
    assert all(name.startswith("decoder.") for name in warm.new_weights)
    assert all(".crossattention." in name or ".cls.predictions." in name for name in warm.new_weights)
    for i in range(layers):  # every decoder layer attends to the encoder through new weights
        assert any(f"layer.{i}.crossattention.self.query.weight" in name for name in warm.new_weights)
    assert model.decoder.config.is_decoder and model.decoder.config.add_cross_attention
    assert not hasattr(model.encoder, "pooler") or model.encoder.pooler is None
    checkpoint = resources.bare_encoder("bert-encoder").model
    assert torch.equal(model.encoder.embeddings.word_embeddings.weight, checkpoint.embeddings.word_embeddings.weight)
    assert torch.equal(model.decoder.bert.encoder.layer[0].attention.self.query.weight,
                       checkpoint.encoder.layer[0].attention.self.query.weight)
    assert model.config.decoder_start_token_id == tok.cls_token_id
    assert model.generation_config.eos_token_id == tok.sep_token_id

    scratch = resources.warm_started_seq2seq("bert-encoder", pretrained=False)
    assert len(scratch.new_weights) == len(list(scratch.model.parameters()))
    assert scratch.model.num_parameters() == model.num_parameters()


@pytest.mark.source("offline")  # the hub fixture's tiny checkpoints are themselves seeded random draws
def test_the_random_encoder_decoder_shares_no_weights_with_the_checkpoint(provisioned):
    scratch = resources.warm_started_seq2seq("bert-encoder", pretrained=False).model
    checkpoint = resources.bare_encoder("bert-encoder").model
    assert not torch.equal(scratch.encoder.embeddings.word_embeddings.weight,
                           checkpoint.embeddings.word_embeddings.weight)
    assert not torch.equal(scratch.decoder.bert.encoder.layer[0].attention.self.query.weight,
                           checkpoint.encoder.layer[0].attention.self.query.weight)
