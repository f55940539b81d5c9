"""Rehearse a chapter's first minutes on Colab with real pip, short of Colab and of the hub.

    python tools/colab_rehearsal.py [--older transformers==4.57.6 datasets==4.0.0] [--keep FOLDER]

1. A fresh virtual environment stands in for a Colab runtime: torch (the pinned version, which Colab's
   own build stands for) and *older* transformers / datasets, as a runtime has them before the book.
2. The first chapter's install cell runs there as Colab runs it: ``google.colab`` importable,
   transformers imported beforehand (a reader may have), real ``pip``. Two things are redirected, since
   this machine reaches PyPI but not GitHub: ``requirements.txt`` is read from this checkout, and the
   companion is installed from this checkout instead of ``git+<repository>``.
3. The runtime "restarts" (a new process): the cell runs again, and must install nothing and ask for no
   restart; the pinned versions must be the ones imported; then the chapter's import cell and a data
   set load run on the hub source against the hub-shaped fixture (``make test-hub`` builds it).

Prints each step and exits non-zero on the first that fails. Network: PyPI only; a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "book" / "01_finetuning_workflow.ipynb"
FIXTURE = ROOT / ".hub-fixture"

# Run inside the rehearsal environment: Colab's module, the checkout's requirements.txt for the raw URL,
# the checkout for the git URL; then the install cell, unchanged otherwise.
CELL_RUNNER = """
import io, sys, types, urllib.request
sys.modules["google.colab"] = types.ModuleType("google.colab")
root, cell_file, import_first = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
real_urlopen = urllib.request.urlopen
def urlopen(url, *args, **kwargs):
    if url.endswith("/requirements.txt"):
        print(f"[rehearsal] {url} read from the checkout")
        return io.BytesIO(open(f"{root}/requirements.txt", "rb").read())
    return real_urlopen(url, *args, **kwargs)
urllib.request.urlopen = urlopen
if import_first:
    import transformers
    print(f"[rehearsal] transformers {transformers.__version__} imported before the cell")
source = open(cell_file).read()
marker = 'f"pretrained-transformers-companion @ git+{REPOSITORY}@{BRANCH}"'
assert marker in source, "the install cell no longer installs from git+REPOSITORY@BRANCH"
source = source.replace(marker, repr(f"pretrained-transformers-companion @ file://{root}"))
exec(compile(source, "install cell", "exec"), {})
import os
print(f"[rehearsal] COMPANION_SOURCE={os.environ.get('COMPANION_SOURCE')}")
"""


def code_cells(path: Path) -> list[str]:
    """The sources of a notebook's code cells, in order."""
    cells = json.loads(path.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def pins() -> dict[str, str]:
    """``{name: version}`` of the ``==`` lines of requirements.txt (extras dropped)."""
    found = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==")
            found[name.split("[")[0].strip().lower()] = version.strip()
    return found


def run(cmd: list[str], **options) -> subprocess.CompletedProcess:
    print("$", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, text=True, capture_output=True, **options)
    print(textwrap.indent((done.stdout + done.stderr).strip()[-4000:], "  "), flush=True)
    if done.returncode:
        sys.exit(f"step failed (exit {done.returncode}): {' '.join(cmd)}")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--older", nargs="+", default=["transformers==4.57.6", "datasets==4.0.0"],
                        help="what the runtime has before the book (default: %(default)s)")
    parser.add_argument("--keep", type=Path, help="build the environment here and keep it")
    args = parser.parse_args()
    if not (FIXTURE / "hub").is_dir():
        sys.exit(f"no hub-shaped fixture in {FIXTURE}: run `make test-hub` (or python tests/hub_fixture.py {FIXTURE})")
    home = args.keep or Path(tempfile.mkdtemp(prefix="colab-rehearsal-"))
    venv, python = home / "venv", home / "venv" / "bin" / "python"
    cell_file = home / "install_cell.py"
    cell_file.write_text(code_cells(CHAPTER)[0])
    runner = home / "run_cell.py"
    runner.write_text(CELL_RUNNER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPANION_", "HF_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    try:
        print("1. a runtime with torch and older libraries", flush=True)
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], env=env)
        run([str(python), "-m", "pip", "install", "-q", f"torch=={pins()['torch']}", *args.older], env=env)

        print("2. the install cell, transformers imported first", flush=True)
        first = run([str(python), str(runner), str(ROOT), str(cell_file), "1"], env=env)
        restart = [line for line in first.stdout.splitlines() if "Restart the session" in line]
        if not restart:
            sys.exit("the cell replaced an imported transformers but did not ask for a restart")
        print(f"the cell asked: {restart[0]}")

        print("3. after the restart: the cell again, then the chapter", flush=True)
        again = run([str(python), str(runner), str(ROOT), str(cell_file), "0"], env=env)
        if "Restart" in again.stdout:
            sys.exit("the second run of the cell asked for a restart again")
        wanted = {name: pins()[name] for name in ("transformers", "datasets", "evaluate", "peft", "trl")}
        check = ("import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in %r}))"
                 % list(wanted))
        got = json.loads(run([str(python), "-c", check], env=env).stdout.strip().splitlines()[-1])
        if got != wanted:
            sys.exit(f"installed {got}, pinned {wanted}")
        chapter = home / "chapter.py"  # the import cell, then the chapter's first data set, on the hub source
        chapter.write_text(code_cells(CHAPTER)[1] + "\nds = data.load('movie-sentiment')\nprint(ds)\n")
        hub_env = {**env, "COMPANION_SOURCE": "hub", "COMPANION_PROFILE": "smoke", "HF_HUB_OFFLINE": "1",
                   "HF_EVALUATE_OFFLINE": "1", "HF_HOME": str(FIXTURE), "MPLBACKEND": "Agg"}
        run([str(python), str(chapter)], env=hub_env, cwd=home)
        print(f"rehearsal passed: {', '.join(f'{n} {v}' for n, v in got.items())}")
    finally:
        if args.keep is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
