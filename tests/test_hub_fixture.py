"""The hub path against the hub-shaped fixture (``make test-hub``: HF_HOME holds the fixture, HF_HUB_OFFLINE=1,
HF_EVALUATE_OFFLINE=1): every model, data set and metric of the manifest loads by its hub name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from companion import data, hub, metrics, resources
from hub_fixture import STAMP

pytestmark = pytest.mark.skipif(
    not (Path(os.environ.get("HF_HOME", "/nonexistent")) / STAMP).is_file()
    or os.environ.get("HF_HUB_OFFLINE") != "1",
    reason="needs the hub fixture in HF_HOME with HF_HUB_OFFLINE=1: run `make test-hub`")
MANIFEST = hub.manifest()


@pytest.fixture(autouse=True)
def hub_source(monkeypatch):
    monkeypatch.setenv("COMPANION_SOURCE", "hub")


@pytest.mark.parametrize("repo", sorted(MANIFEST["models"]))
def test_every_model_loads_by_its_hub_id_tiny_and_of_its_architecture(repo):
    import transformers

    spec = MANIFEST["models"][repo]
    model = getattr(transformers, spec["architecture"]).from_pretrained(repo, revision=hub.revision(repo))
    tok = transformers.AutoTokenizer.from_pretrained(repo, revision=hub.revision(repo))
    assert model.config.model_type == spec["model_type"] and model.num_parameters() < 20_000_000
    batch = tok(["The jury said the election was conducted well."], return_tensors="pt")
    batch.pop("token_type_ids", None)
    if spec["model_type"] == "t5":
        batch["decoder_input_ids"] = torch.zeros((1, 1), dtype=torch.long)
    with torch.no_grad():
        model(**batch)


def test_roles_resolve_to_the_profile_checkpoints_and_load(capsys):
    assert resources.language_model("decoder").resolved.location == "openai-community/gpt2"
    assert resources.classifier("bert-encoder", ["a", "b"]).resolved.location == "bert-base-uncased"
    assert "source=hub" in capsys.readouterr().out


@pytest.mark.parametrize("name", [n for n in data.DATASETS if n != "brown"])
def test_every_hub_data_set_loads_from_the_prepared_cache(name):
    ds = data.load(name)
    assert all(len(ds[split]) for split in data.SPLITS)


def test_metrics_load_by_their_hub_names():
    scores = metrics.classification([0, 1, 1, 0], [0, 1, 0, 0])
    assert scores["accuracy"] == 0.75
    with pytest.raises(TypeError, match="zero_division"):
        metrics.load("f1").compute(predictions=[0, 1], references=[0, 1], zero_division=0)
