"""The jupyter-cache that `make book` fills: forget chapters whose results file is gone, print times.

- ``python tools/book_cache.py prepare CACHE PROFILE``: a chapter served from the cache is not run, so
  it does not write ``book/results/<chapter>.<profile>.json`` again; when that file is missing, the
  chapter's cache record is removed so that the build executes it; a results file of a chapter that is
  no longer in ``_toc.yml`` (renamed or removed) is deleted.
- ``python tools/book_cache.py times CACHE SINCE``: seconds per chapter, and whether it was executed
  in this build (cache record newer than SINCE, Unix seconds) or served from the cache (a chapter that
  `make test` ran and stored there says so: book/conftest.py).
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import toc  # tools/toc.py: this script's folder is on sys.path
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parent.parent


def chapters() -> list[Path]:
    """The notebooks of ``_toc.yml``, in book order."""
    return [path for name in toc.read(ROOT)[1] if (path := ROOT / f"{name}.ipynb").is_file()]


def cached(cache_folder: str) -> dict[Path, object | None]:
    """Each chapter's cache record for its present code, or None when it has none."""
    cache, found = get_cache(cache_folder), {}
    for path in chapters():
        try:
            found[path] = cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            found[path] = None
    return found


def prepare(cache_folder: str, profile: str, results: Path = ROOT / "book" / "results") -> None:
    cache = get_cache(cache_folder)
    for path, record in cached(cache_folder).items():
        writes = "results.write(" in path.read_text()
        if record and writes and not (results / f"{path.stem}.{profile}.json").is_file():
            print(f"{path.stem}: cached, but its results file is missing: it will be executed again")
            cache.remove_cache(record.pk)
    in_book = {path.stem for path in chapters()}
    for stale in sorted(results.glob(f"*.{profile}.json")):
        if stale.name.removesuffix(f".{profile}.json") not in in_book:
            print(f"{stale.name}: written by a chapter that is no longer in the book (renamed or removed):"
                  f" deleted, so that the results page does not show its rows")
            stale.unlink()


def times(cache_folder: str, since: float) -> None:
    total = executed = 0.0
    print(f"{'chapter':<28} {'seconds':>8}  how")
    for path, record in cached(cache_folder).items():
        if record is None:
            forced = nbformat.read(path, as_version=4).metadata.get("mystnb", {}).get("execution_mode") == "force"
            print(f"{path.stem:<28} {'-':>8}  " + ("executed on every build, not cached" if forced
                                                   else "no cached run: it failed, or was not built"))
            continue
        seconds = float(record.data.get("execution_seconds", 0.0))
        created = record.created if record.created.tzinfo else record.created.replace(tzinfo=timezone.utc)
        fresh = created.timestamp() >= since
        total += seconds
        executed += seconds if fresh else 0.0
        by = f" by {record.data['executed_by']}" if "executed_by" in record.data else ""
        how = "executed in this build" if fresh else f"from the cache (executed{by} {created:%Y-%m-%d %H:%M} UTC)"
        print(f"{path.stem:<28} {seconds:8.0f}  {how}")
    print(f"{'all cached chapters':<28} {total:8.0f}  ({total / 60:.1f} min of execution, {executed / 60:.1f} min"
          f" of it in this build, finished {datetime.now():%H:%M})")


if __name__ == "__main__":
    command, folder, value = sys.argv[1:4]
    if command == "prepare":
        prepare(folder, value)
    elif command == "times":
        times(folder, float(value))
    else:
        sys.exit(f"unknown command {command!r}: use prepare or times")
