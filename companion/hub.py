"""The hub repositories the book loads, pinned: ``hub_manifest.json`` holds, for every model, data set
and metric, the revision loaded and the facts the hub-shaped test fixture rebuilds (architecture,
features, splits, gating). Models (:mod:`companion.resources`) and data sets (:mod:`companion.data`)
both read their revisions here.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from .provision import ResourceError

MANIFEST = Path(__file__).with_name("hub_manifest.json")


@functools.lru_cache(maxsize=1)
def manifest() -> dict[str, dict[str, Any]]:
    """``hub_manifest.json``: every hub repository the book loads (``models``, ``datasets``, ``metrics``)
    with the revision it loads and the facts the hub-shaped test fixture rebuilds."""
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def revision(location: str) -> str | None:
    """The revision to load of hub model or data set ``location`` (for a data set that holds a loading
    script, its parquet conversion); ``None`` for a local folder. A hub id missing from the manifest is an
    error, so that every repository the book loads is pinned there."""
    pinned = manifest()
    if location in pinned["models"]:
        return pinned["models"][location]["revision"]
    if location in pinned["datasets"]:
        entry = pinned["datasets"][location]
        return entry["parquet_revision"] if entry["script"] else entry["revision"]
    if Path(location).exists():
        return None
    raise ResourceError(f"{location!r} is neither a local folder nor a hub repository of {MANIFEST.name};"
                        f" add it there with the revision to load.")


def load_dataset(repo: str, *args: str, **options: object) -> Any:
    """``datasets.load_dataset`` of hub data set ``repo`` (a configuration name may follow) at the
    revision the manifest pins."""
    import datasets

    return datasets.load_dataset(repo, *args, revision=revision(repo), **options)
