import pytest

from companion import settings


def test_profile_defaults_to_cpu_and_reads_the_environment(monkeypatch):
    monkeypatch.delenv("COMPANION_PROFILE")
    assert settings.profile().name == "cpu"
    monkeypatch.setenv("COMPANION_PROFILE", "GPU")
    assert settings.profile().name == "gpu"


def test_unknown_profile_is_named_in_the_error(monkeypatch):
    monkeypatch.setenv("COMPANION_PROFILE", "huge")
    with pytest.raises(settings.ConfigError, match="'huge'.*smoke, cpu, gpu"):
        settings.profile()


def test_smoke_is_smaller_than_cpu():
    smoke, cpu = settings.PROFILES["smoke"], settings.PROFILES["cpu"]
    assert smoke.finetune.train_rows < cpu.finetune.train_rows and smoke.finetune.epochs <= cpu.finetune.epochs
    assert smoke.small.width < cpu.small.width and smoke.icl.test_rows < cpu.icl.test_rows


@pytest.mark.parametrize("value", ["hub", "offline"])
def test_source_can_be_forced(monkeypatch, value):
    monkeypatch.setenv("COMPANION_SOURCE", value)
    monkeypatch.setattr(settings, "hub_reachable", lambda *a, **k: pytest.fail("must not probe the hub"))
    assert settings.source() == value


def test_auto_source_is_offline_when_hf_hub_offline(monkeypatch):
    monkeypatch.setenv("COMPANION_SOURCE", "auto")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(settings, "hub_reachable", lambda *a, **k: pytest.fail("must not probe the hub"))
    assert settings.source() == "offline"


@pytest.mark.parametrize("reachable,expected", [(True, "hub"), (False, "offline")])
def test_auto_source_probes_the_endpoint(monkeypatch, reachable, expected):
    monkeypatch.setenv("COMPANION_SOURCE", "auto")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/")
    probed = []
    monkeypatch.setattr(settings, "hub_reachable", lambda endpoint: probed.append(endpoint) or reachable)
    assert settings.source() == expected
    assert probed == ["https://mirror.example"]


def test_unreachable_endpoint_is_reported_unreachable():
    assert settings.hub_reachable("http://127.0.0.1:9", timeout=1.0) is False


def test_unknown_source_is_named_in_the_error(monkeypatch):
    monkeypatch.setenv("COMPANION_SOURCE", "s3")
    with pytest.raises(settings.ConfigError, match="'s3'"):
        settings.source()


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "c"))
    assert settings.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()


def test_setup_chapter_seeds_and_reports(monkeypatch, capsys):
    import random

    import numpy as np
    import torch

    monkeypatch.setenv(settings.PROFILE_VAR, "smoke")
    monkeypatch.setenv(settings.SOURCE_VAR, "offline")
    draws = []
    for _ in range(2):
        assert settings.setup_chapter() is settings.PROFILES["smoke"]
        draws.append((random.random(), float(np.random.rand()), float(torch.rand(1))))
    assert draws[0] == draws[1]  # Python, NumPy and torch all start from the book's seed
    printed = capsys.readouterr().out
    assert "profile=smoke source=offline" in printed and "torch threads=" in printed
