"""The hub manifest: every repository the book loads is in it, pinned, and describes what the code reads."""

from __future__ import annotations

import inspect
import json
import re
import tomllib

import datasets
import pytest
from datasets import DatasetDict, Features

from companion import data, hub, resources
from companion.metrics import NAMES
from hub_fixture import ROOT, hub_dataset

MANIFEST = hub.manifest()
COMMIT = re.compile(r"[0-9a-f]{40}")
HUB_LOADS = {"movie-sentiment": "stanfordnlp/sst2", "sentence-pairs": "nyu-mll/glue",
             "token-tags": "eriktks/conll2003", "qa": "rajpurkar/squad", "chinese-reviews": "lansinuote/ChnSentiCorp",
             "document-classes": "SetFit/20_newsgroups"}


def test_every_model_and_metric_of_the_book_is_in_the_manifest():
    assert {entry.hub_id for entry in resources.MODELS.values()} == set(MANIFEST["models"])
    assert {hub_id for hub_id, _ in resources.TOKENIZERS.values()} <= set(MANIFEST["models"])
    assert set(NAMES) == set(MANIFEST["metrics"])
    gated = {m.hub_id for m in resources.MODELS.values() if m.gated_fallback}
    assert gated == {repo for repo, spec in MANIFEST["models"].items() if spec["gated"]}


def test_every_pin_is_a_commit_sha():  # a branch such as main would move under the reader
    for kind in ("models", "datasets"):
        for repo, spec in MANIFEST[kind].items():
            for key in ("revision", "parquet_revision"):
                if key in spec:
                    assert COMMIT.fullmatch(spec[key]), f"{repo}: {key} {spec[key]!r} is not a full commit sha"


def test_script_data_sets_are_read_from_a_parquet_revision():
    for repo, spec in MANIFEST["datasets"].items():
        assert not spec["script"] or spec.get("parquet_revision"), (
            f"{repo} holds a loading script, which datasets >= 4 refuses: give its parquet_revision")
    conll = MANIFEST["datasets"]["eriktks/conll2003"]
    assert hub.revision("eriktks/conll2003") == conll["parquet_revision"] != conll["revision"]


def test_hub_revision_refuses_a_hub_id_missing_from_the_manifest(tmp_path):
    assert hub.revision(str(tmp_path)) is None
    with pytest.raises(resources.ResourceError, match="'org/unpinned' is neither a local folder nor"):
        hub.revision("org/unpinned")


def test_manifest_is_package_data():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "hub_manifest.json" in package_data["companion"]
    assert json.loads(hub.MANIFEST.read_text()) == MANIFEST


@pytest.fixture
def hub_from_manifest(monkeypatch, provisioned):
    """The hub source, with a load_dataset that serves each manifest data set in exactly its features
    and splits (the fixture's rows), and records what it was asked."""
    asked: list[tuple[str, dict]] = []

    def load_dataset(repo: str, *config: str, **options) -> DatasetDict:
        asked.append((repo, {"config": config, **options}))
        return hub_dataset(repo, MANIFEST["datasets"][repo])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)  # what hub.load_dataset calls
    monkeypatch.setenv("COMPANION_SOURCE", "hub")
    return asked


@pytest.mark.parametrize("name", sorted(HUB_LOADS))
def test_code_reads_only_manifest_features_at_the_pinned_revision(hub_from_manifest, name):
    ds = data.load(name)
    ((repo, options),) = hub_from_manifest
    spec = MANIFEST["datasets"][repo]
    assert repo == HUB_LOADS[name] and options["revision"] == hub.revision(repo)
    assert options.get("data_dir") == spec.get("data_dir")
    assert options["config"] in ((), (spec["config"],))
    assert all(len(part) and set(part["label"]) != {-1} for part in ds.values() if "label" in part.column_names)


def test_chinese_reviews_on_the_hub_take_the_book_s_label_names(hub_from_manifest):
    assert data.load("chinese-reviews")["train"].features["label"].names == data.SENTIMENT_LABELS


def test_newsgroups_on_the_hub_are_documents_named_by_newsgroup_with_a_stratified_validation(hub_from_manifest):
    ds = data.load("document-classes", data.Caps(None, None))
    names = ds["train"].features["label"].names
    assert len(names) == 20 and names[0] == "alt.atheism" and names[-1] == "talk.religion.misc"
    assert ds.column_names == {split: ["fileid", "text", "label"] for split in data.SPLITS}
    assert [len(ds[s]) for s in data.SPLITS] == [216, 24, 40]  # the fixture's 240 train posts, a tenth held out
    assert set(ds["validation"]["label"]) == set(range(20))
    fileids = [set(ds[s]["fileid"]) for s in data.SPLITS]
    assert sum(map(len, fileids)) == len(set.union(*fileids)) == 280  # one document, one split


def test_manifest_features_are_datasets_features():
    for repo, spec in MANIFEST["datasets"].items():
        assert set(spec["splits"]) <= {"train", "validation", "test"}
        Features.from_dict(spec["features"])


@pytest.mark.parametrize("name", NAMES)
def test_offline_twin_takes_exactly_the_hub_modules_keywords(name):
    twin = ROOT / "companion" / "metrics" / name / f"{name}.py"
    namespace: dict = {}
    exec(compile(twin.read_text(), str(twin), "exec"), namespace)
    (metric,) = [v for v in namespace.values() if isinstance(v, type) and "_compute" in vars(v)]
    keywords = [p for p in inspect.signature(metric._compute).parameters if p != "self"]
    assert keywords == MANIFEST["metrics"][name]["keywords"]
