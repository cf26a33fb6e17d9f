"""A content-addressed cache of CellProfiler feature rows.

Measuring one image set at 2154 x 2554 takes about a minute, and the ground truth of a split is the
same for every submission: its features are stored under a key made of the sha256 of the three
channel files, the magnification, the pipeline version and the CellProfiler library version, so that
scoring a second submission never re-measures the ground truth, and a change of pipeline or library
never reuses a stale row. One small JSON file per entry, written atomically; safe for concurrent
writers (same key, same content).
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

CACHE_ENV = "VSBENCH_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$VSBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/vsbench``, else ``~/.cache/vsbench``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vsbench"


def cellprofiler_library_version() -> str:
    try:
        return metadata.version("cellprofiler-library-nightly")
    except metadata.PackageNotFoundError:  # pragma: no cover - it is a dependency
        return "unknown"


def feature_key(file_digests: list[str], magnification: str, pipeline_version: str) -> str:
    """The cache key of one image set's features."""
    text = "\n".join([pipeline_version, cellprofiler_library_version(), magnification, *file_digests])
    return hashlib.sha256(text.encode()).hexdigest()


class FeatureCache:
    """``get(key)`` / ``put(key, row)`` of feature rows (dict name -> float or None for NaN)."""

    def __init__(self, root: Path | str | None):
        self.root = Path(root) / "cp-features" if root is not None else None

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, float] | None:
        if self.root is None:
            return None
        try:
            row = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        return {k: (float("nan") if v is None else float(v)) for k, v in row.items()}

    def put(self, key: str, row: dict[str, float]) -> None:
        if self.root is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({k: (None if v != v else v) for k, v in row.items()}, allow_nan=False))
        tmp.replace(path)
