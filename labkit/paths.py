"""Where labkit finds its bundled data and keeps its caches.

``LABKIT_DATA`` overrides the data folder (default: ``data/`` beside the package, i.e. the repo's ``data/``);
``LABKIT_CACHE`` overrides the cache folder (default: ``~/.cache/labkit``).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    return Path(os.environ.get("LABKIT_DATA", REPO_ROOT / "data"))


def cache_dir() -> Path:
    path = Path(os.environ.get("LABKIT_CACHE", Path.home() / ".cache" / "labkit"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def notebooks_dir() -> Path:
    """The course notebooks (``notebooks/``: student copies, ``solutions/``, ``expected/``)."""
    return REPO_ROOT / "notebooks"


def runs_dir() -> Path:
    """Default home of generated artefacts (datasets, checkpoints, predictions): ``<repo>/runs``."""
    path = Path(os.environ.get("LABKIT_RUNS", REPO_ROOT / "runs"))
    path.mkdir(parents=True, exist_ok=True)
    return path
