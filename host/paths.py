"""Where things live: the repository, the shared data directory, caches."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The one setting that points at shared data (datasets, reference models).
DATA_ENV = "RESILINET_DATA"


def shared_data_dir() -> Path | None:
    """The shared data directory: ``$RESILINET_DATA``, else ``../shared/data`` beside the repository.

    Returns None when neither exists; loaders then say which file is missing and where to get it.
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser().resolve()
    default = REPO_ROOT.parent / "shared" / "data"
    return default if default.is_dir() else None


def shared_models_dir() -> Path | None:
    """Reference models shipped beside the shared data (``<data>/../models``)."""
    data = shared_data_dir()
    if data is None:
        return None
    models = data.parent / "models"
    return models if models.is_dir() else None


def cache_dir() -> Path:
    """Cache for downloaded datasets and trained models (``$RESILINET_CACHE`` or ``<repo>/.cache``)."""
    path = Path(os.environ.get("RESILINET_CACHE", REPO_ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path
