"""A hub-shaped cache built from ``companion/hub_manifest.json``, so the hub path (``COMPANION_SOURCE=hub``)
runs without the hub: point ``HF_HOME`` at the folder and set ``HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1``.

- ``hub/``: for every model repository, a TINY checkpoint of the same ``model_type`` and architecture
  (2 layers, width 64, random weights: it only runs the code path, it knows nothing) with the real
  tokenizer where one exists offline, laid out as the hub client writes it (``refs/<revision>`` holding a
  commit sha, ``snapshots/<sha>/``).
- ``datasets/``: every data set in its real splits and features, a few dozen rows of text taken from the
  offline data (more where the book carves 1,000 rows out of a train split), written as ``load_dataset``
  reads its prepared cache offline (``<namespace>___<name>/<config>/<version>/<hash>/``).
- ``modules/``: the metrics in evaluate's module cache under their hub names (``evaluate-metric--<name>``).
  The hub scripts themselves are not redistributed here: the companion's offline twins stand in for them;
  ``tests/test_hub.py`` checks that they take exactly the hub modules' keywords.

Needs the provisioned offline cache (``python -m companion fetch``). As a script:
``python tests/hub_fixture.py FOLDER`` builds FOLDER, or does nothing when it is already built from the
same manifest and builder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import transformers
from datasets import BuilderConfig, Dataset, DatasetDict, DatasetInfo, Features, SplitDict, SplitInfo
from datasets.arrow_writer import ArrowWriter
from datasets.naming import camelcase_to_snakecase
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase

from companion import brown, data, hub, resources, settings, t5

ROOT = Path(__file__).resolve().parent.parent
STAMP = "hub-fixture.json"
SEED = 0
WIDTH = 64  # hidden size of every tiny model; 2 layers, 4 heads (the chapters plot heads 0..3)

# The tiny shape of each model_type (AutoConfig keyword arguments); vocabulary and special ids come from
# the tokenizer.
TINY: dict[str, dict[str, Any]] = {
    "gpt2": {"n_layer": 2, "n_embd": WIDTH, "n_head": 4},
    "bert": {"num_hidden_layers": 2, "hidden_size": WIDTH, "num_attention_heads": 4, "intermediate_size": 2 * WIDTH},
    "distilbert": {"n_layers": 2, "dim": WIDTH, "n_heads": 4, "hidden_dim": 2 * WIDTH},
    "llama": {"num_hidden_layers": 2, "hidden_size": WIDTH, "num_attention_heads": 4, "num_key_value_heads": 1,
              "intermediate_size": 2 * WIDTH, "tie_word_embeddings": True},
    "gemma3_text": {"num_hidden_layers": 2, "hidden_size": WIDTH, "num_attention_heads": 4, "num_key_value_heads": 1,
                    "head_dim": WIDTH // 4, "intermediate_size": 2 * WIDTH, "sliding_window": 64},
    "t5": {"num_layers": 2, "num_decoder_layers": 2, "d_model": WIDTH, "d_kv": WIDTH // 4, "num_heads": 4,
           "d_ff": 2 * WIDTH},
}
# T5 v1.1 checkpoints (flan-t5) differ from t5-small in the feed-forward and the untied output layer.
T5_V1_1 = {"google/flan-t5-small": {"feed_forward_proj": "gated-gelu", "tie_word_embeddings": False}}


@contextmanager
def _source(name: str) -> Iterator[None]:
    """The companion's source set to ``name`` for the duration (to read the offline resources)."""
    before = os.environ.get(settings.SOURCE_VAR)
    os.environ[settings.SOURCE_VAR] = name
    try:
        yield
    finally:
        if before is None:
            del os.environ[settings.SOURCE_VAR]
        else:
            os.environ[settings.SOURCE_VAR] = before


def offline_tokenizer(kind: str) -> PreTrainedTokenizerBase:
    """The offline tokenizer that stands in for a hub tokenizer of ``kind`` (the manifest's ``tokenizer``):
    the real one where the offline sources ship it (GPT-2 BPE, Gemma 3, SmolLM2), else the nearest kin:
    MiniLM's uncased WordPiece for every BERT, the book's own SentencePiece vocabulary for T5."""
    with _source("offline"):
        if kind == "t5-sentencepiece":
            return t5.tokenizer()
        folders = {"gpt2-bpe": resources.GPT2_TOKENIZER, "wordpiece-uncased": resources.MINILM,
                   "wordpiece-chinese": resources.MINILM, "smollm2-chat": resources.SMOLLM2,
                   "smollm2": resources.SMOLLM2, "gemma3": resources.GEMMA3}
        if kind not in folders:
            raise ValueError(f"no offline tokenizer stands in for tokenizer kind {kind!r}; add one to hub_fixture")
        tok = AutoTokenizer.from_pretrained(str(folders[kind].path()))
    if kind == "smollm2":
        tok.chat_template = None  # the base model is not chat-tuned
    return tok


def commit_sha(repo_id: str, revision: str) -> str:
    """The commit sha that ``revision`` of ``repo_id`` points at: the revision itself when it is one (the
    manifest pins shas), else a stable stand-in."""
    if re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    return hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()


def tiny_model(repo_id: str, spec: dict[str, Any], tok: PreTrainedTokenizerBase) -> transformers.PreTrainedModel:
    """A randomly initialised 2-layer model of the manifest's ``model_type`` and ``architecture``."""
    special = {f"{name}_token_id": getattr(tok, f"{name}_token_id") for name in ("bos", "eos", "pad")
               if getattr(tok, f"{name}_token_id", None) is not None}
    if spec["model_type"] == "t5":
        special = {"pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id,
                   "decoder_start_token_id": tok.pad_token_id}
    config = AutoConfig.for_model(spec["model_type"], vocab_size=len(tok), **TINY[spec["model_type"]],
                                  **T5_V1_1.get(repo_id, {}), **special)
    setattr(config, resources.STAND_IN, f"tiny random stand-in for {repo_id}, built by tests/hub_fixture.py")
    transformers.set_seed(SEED)
    return getattr(transformers, spec["architecture"])(config)


def write_model(hub: Path, repo_id: str, spec: dict[str, Any]) -> Path:
    """``hub/models--org--name/{refs/main, snapshots/<sha>/}`` with a tiny model and its tokenizer (a pinned
    sha is read from its snapshot folder; ``refs/main`` points at it, as after a download of main)."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    sha = commit_sha(repo_id, spec["revision"])
    snapshot = repo / "snapshots" / sha
    tok = offline_tokenizer(spec["tokenizer"])
    tiny_model(repo_id, spec, tok).save_pretrained(snapshot)
    tok.save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(sha)
    return snapshot


# --- data sets ------------------------------------------------------------------------------------

def _movie_sentences() -> list[tuple[str, int]]:
    """(text, 0/1) of the offline movie-review sentences (Hutto & Gilbert's Rotten Tomatoes snippets)."""
    movies = data.binarize(data.read_scored_sentences(data.VADER_MOVIES.path())).shuffle(seed=SEED)  # sorted by label
    return list(zip(movies["text"], movies["label"]))


def _brown_tagged(n_docs: int) -> list[tuple[str, list]]:
    """The first ``n_docs`` Brown documents, as (file id, sentences of (word, tag))."""
    with _source("offline"):
        return brown.tagged(brown.reader(brown.NPM.path()).fileids()[:n_docs])


def _sst2(sizes: dict[str, int]) -> dict[str, dict[str, list]]:
    rows, start, out = _movie_sentences(), 0, {}
    for split, n in sizes.items():
        part = rows[start:start + n]
        start += n
        out[split] = {"idx": list(range(n)), "sentence": [t for t, _ in part], "label": [y for _, y in part]}
    return out


def _mrpc(sizes: dict[str, int]) -> dict[str, dict[str, list]]:
    rows, start, out = _movie_sentences(), 0, {}
    for split, n in sizes.items():
        first, second = rows[start:start + n], rows[start + n:start + 2 * n]
        start += 2 * n
        out[split] = {"sentence1": [t for t, _ in first], "sentence2": [t for t, _ in second],
                      "label": [i % 2 for i in range(n)], "idx": list(range(n))}
    return out


def _conll(sizes: dict[str, int], features: Features) -> dict[str, dict[str, list]]:
    """Brown sentences; proper nouns (Brown ``NP``) tagged as person names, the rest ``O``."""
    names = {key: features[key].feature.names for key in ("pos_tags", "chunk_tags", "ner_tags")}
    sents = [s for _, doc in _brown_tagged(2) for s in doc]
    out, start = {}, 0
    for split, n in sizes.items():
        part, start = sents[start:start + n], start + n
        ner = []
        for sent in part:
            tags, inside = [], False
            for _, tag in sent:
                proper = tag.startswith("NP")
                tags.append(names["ner_tags"].index(("I-PER" if inside else "B-PER") if proper else "O"))
                inside = proper
            ner.append(tags)
        out[split] = {"id": [str(i) for i in range(n)], "tokens": [[w for w, _ in s] for s in part],
                      "pos_tags": [[names["pos_tags"].index("NNP" if t.startswith("NP") else "NN") for _, t in s]
                                   for s in part],
                      "chunk_tags": [[0] * len(s) for s in part], "ner_tags": ner}
    return out


def _squad(sizes: dict[str, int]) -> dict[str, dict[str, list]]:
    """The book's Brown cloze questions, which are in SQuAD's format."""
    with _source("offline"):
        questions = brown.cloze_questions(_brown_tagged(80), brown.detokenize)
    out, start = {}, 0
    for split, n in sizes.items():
        if start + n > len(questions):
            raise ValueError(f"{len(questions)} cloze questions are too few for the fixture's SQuAD")
        out[split], start = questions.select(range(start, start + n)).to_dict(), start + n
    return out


CHINESE = ["房间很干净，服务也很好", "这本书写得非常精彩", "物流很快，质量不错", "性价比很高，推荐购买",
           "酒店位置方便，早餐丰富", "屏幕清晰，运行流畅",
           "房间太小，隔音很差", "书的印刷质量很差", "等了一个星期才到货", "用了两天就坏了",
           "服务态度恶劣，不会再来", "电池不耐用，很失望"]


def _chn_senti_corp(sizes: dict[str, int]) -> dict[str, dict[str, list]]:
    """A few Chinese review phrases (no Chinese data ships offline), the first half positive."""
    half = len(CHINESE) // 2
    out, i = {}, 0
    for split, n in sizes.items():
        texts, labels = [], []
        for _ in range(n):
            a, b = CHINESE[i % len(CHINESE)], CHINESE[(i * 7 + 3) % len(CHINESE)]
            texts.append(f"{a}。{b}。")
            labels.append(int(i % len(CHINESE) < half))
            i += 1
        out[split] = {"text": texts, "label": labels}
    return out


NEWSGROUPS = ["alt.atheism", "comp.graphics", "comp.os.ms-windows.misc", "comp.sys.ibm.pc.hardware",
              "comp.sys.mac.hardware", "comp.windows.x", "misc.forsale", "rec.autos", "rec.motorcycles",
              "rec.sport.baseball", "rec.sport.hockey", "sci.crypt", "sci.electronics", "sci.med", "sci.space",
              "soc.religion.christian", "talk.politics.guns", "talk.politics.mideast", "talk.politics.misc",
              "talk.religion.misc"]


def _newsgroups(sizes: dict[str, int]) -> dict[str, dict[str, list]]:
    """Posts of 60 Brown words each, the newsgroups taken in turn; the last post of each split is empty,
    as some of the real ones are (headers, signatures and quotes removed)."""
    words = [word for _, doc in _brown_tagged(12) for sent in doc for word, _ in sent]
    out, start = {}, 0
    for split, n in sizes.items():
        texts = [" ".join(words[(start + i) * 60:(start + i + 1) * 60]) for i in range(n - 1)] + [""]
        if len(texts[-2].split()) < 60:
            raise ValueError(f"12 Brown documents are too few for {sum(sizes.values())} posts of 60 words")
        start += n
        out[split] = {"text": texts, "label": [i % len(NEWSGROUPS) for i in range(n)],
                      "label_text": [NEWSGROUPS[i % len(NEWSGROUPS)] for i in range(n)]}
    return out


# Rows per split: a few dozen, and 1,000 more in a train split that the book carves 1,000 rows out of.
ROWS: dict[str, tuple[dict[str, int], Callable[..., dict[str, dict[str, list]]]]] = {
    "stanfordnlp/sst2": ({"train": 1_064, "validation": 48, "test": 24}, _sst2),
    "nyu-mll/glue": ({"train": 64, "validation": 32, "test": 24}, _mrpc),
    "eriktks/conll2003": ({"train": 64, "validation": 32, "test": 32}, _conll),
    "rajpurkar/squad": ({"train": 1_048, "validation": 32}, _squad),
    "lansinuote/ChnSentiCorp": ({"train": 48, "validation": 24, "test": 24}, _chn_senti_corp),
    "SetFit/20_newsgroups": ({"train": 240, "test": 40}, _newsgroups),  # a tenth of train: one post per group
}


def hub_dataset(repo_id: str, spec: dict[str, Any]) -> DatasetDict:
    """The fixture's rows of data set ``repo_id`` in the manifest's splits and features; the splits the
    manifest names ``unlabelled`` carry the label -1, as on the hub."""
    features = Features.from_dict(spec["features"])
    sizes, rows = ROWS[repo_id]
    if list(sizes) != spec["splits"]:
        raise ValueError(f"{repo_id}: the fixture builds splits {list(sizes)}, the manifest names {spec['splits']}")
    columns = rows(sizes, features) if rows is _conll else rows(sizes)
    for split in spec.get("unlabelled_splits", []):
        columns[split]["label"] = [-1] * sizes[split]
    return DatasetDict({split: Dataset.from_dict(columns[split], features=features) for split in sizes})


def prepared_folder(cache: Path, repo_id: str, spec: dict[str, Any]) -> Path:
    """Where ``load_dataset`` looks for ``repo_id`` offline: ``<namespace>___<snake name>/<config id>/0.0.0/
    <hash>``; the config id is the config's name, or for a ``data_dir`` call the id datasets derives."""
    *namespace, name = repo_id.split("/")
    config = (BuilderConfig("default").create_config_id(config_kwargs={"data_dir": spec["data_dir"]})
              if "data_dir" in spec else spec["config"])
    return cache / "___".join([*namespace, camelcase_to_snakecase(name)]) / config / "0.0.0" / commit_sha(
        repo_id, spec["revision"])


def write_dataset(cache: Path, repo_id: str, spec: dict[str, Any]) -> Path:
    """The fixture's data set, as the Arrow files and ``dataset_info.json`` of datasets' prepared cache."""
    folder = prepared_folder(cache, repo_id, spec)
    folder.mkdir(parents=True, exist_ok=True)
    name = camelcase_to_snakecase(repo_id.split("/")[-1])
    ds = hub_dataset(repo_id, spec)
    splits = SplitDict(dataset_name=name)
    for split, part in ds.items():
        with ArrowWriter(features=part.features, path=str(folder / f"{name}-{split}.arrow")) as writer:
            writer.write_table(part.data.table)
            n, size = writer.finalize()
        splits.add(SplitInfo(name=split, num_bytes=size, num_examples=n, dataset_name=name))
    DatasetInfo(features=ds["train"].features, config_name=folder.parts[-3], dataset_name=name,
                splits=splits).write_to_directory(str(folder))
    return folder


def write_metric(modules: Path, name: str) -> Path:
    """``modules/evaluate_modules/metrics/evaluate-metric--<name>/<hash>/<name>.py``: the companion's twin of
    the hub module, where ``evaluate.load(name)`` finds it with ``HF_EVALUATE_OFFLINE=1``."""
    twin = ROOT / "companion" / "metrics" / name / f"{name}.py"
    folder = modules / "evaluate_modules" / "metrics" / f"evaluate-metric--{name}" / hashlib.sha256(
        twin.read_bytes()).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    for package in (folder, folder.parent, folder.parent.parent, folder.parent.parent.parent):
        (package / "__init__.py").touch()
    shutil.copyfile(twin, folder / f"{name}.py")
    return folder


def fingerprint() -> str:
    """What the fixture is built from: the manifest, this builder and the metric twins."""
    digest = hashlib.sha256()
    for path in [hub.MANIFEST, Path(__file__), *sorted((ROOT / "companion" / "metrics").glob("*/*.py"))]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build(home: Path) -> Path:
    """Build the fixture in ``home`` (to be ``HF_HOME``) from the manifest, unless it is already built from
    the same inputs; a partial or outdated one is removed first."""
    stamp = home / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()).get("fingerprint") == fingerprint():
        return home
    if home.exists():
        shutil.rmtree(home)
    manifest = hub.manifest()
    for repo_id, spec in manifest["models"].items():
        write_model(home / "hub", repo_id, spec)
    for repo_id, spec in manifest["datasets"].items():
        write_dataset(home / "datasets", repo_id, spec)
    for name in manifest["metrics"]:
        write_metric(home / "modules", name)
    stamp.write_text(json.dumps({"fingerprint": fingerprint()}) + "\n")
    return home


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} FOLDER  (then HF_HOME=FOLDER HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1"
                 f" COMPANION_SOURCE=hub)")
    print(f"hub fixture ready in {build(Path(sys.argv[1]).resolve())}")
