from pathlib import Path

import pytest

from companion import resources
from companion.provision import PackagedModel, ResourceError


def test_encoder_role_resolves_offline_to_the_packaged_minilm(capsys):
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


def test_hub_only_model_offline_says_what_to_set():
    with pytest.raises(ResourceError, match="bert-base-uncased exists only on the hub.*COMPANION_SOURCE=hub"):
        resources.resolve("bert-base-uncased")


def test_missing_package_says_what_to_install():
    with pytest.raises(ResourceError, match="pip install no-such-model-package==1.0"):
        PackagedModel("no-such-model-package", "1.0", "x").path()


def test_classifier_adds_a_new_seeded_head():
    first = resources.classifier("encoder", ["negative", "positive"])
    second = resources.classifier("encoder", ["negative", "positive"])
    assert first.new_weights == ["classifier.bias", "classifier.weight"]
    assert first.model.config.id2label == {0: "negative", 1: "positive"}
    assert first.model.classifier.weight.equal(second.model.classifier.weight)


def test_fetch_provisions_every_offline_resource(provisioned):
    assert set(provisioned) == {"all-MiniLM-L6-v2", "SmolLM2-135M-Instruct", "gemma-3-270m", "gpt2-tokenizer",
                                "movie-sentiment", "brown", "sentence-pairs", "token-tags", "qa"}
    assert all(Path(p).exists() for p in provisioned.values())


def test_decoder_role_resolves_offline_to_the_converted_smollm2(provisioned):
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
    offline = resources.resolve("base-decoder")
    assert offline.name == "gemma-3-270m" and (Path(offline.location) / "model.safetensors").is_file()
    monkeypatch.setenv("COMPANION_SOURCE", "hub")
    assert resources.resolve("base-decoder").location == "google/gemma-3-270m"


def test_cli_reports_errors_without_a_traceback(monkeypatch, capsys):
    from companion.__main__ import main
    monkeypatch.setenv("COMPANION_PROFILE", "nope")
    assert main(["info"]) == 1
    assert "error: COMPANION_PROFILE='nope'" in capsys.readouterr().err
