"""Shared fixtures: quiet TensorFlow, a throwaway cache, small real and synthetic datasets."""
from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from hypothesis import settings

# Property-based tests draw the same examples on every run (the suite is deterministic) and keep no database.
settings.register_profile("resilinet", derandomize=True, deadline=None, database=None)
settings.load_profile("resilinet")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Trained models are cached under a per-session directory, never in the user's cache."""
    monkeypatch.setenv("RESILINET_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def write_health_like_npz(path, n: int = 6000, seed: int = 0) -> str:
    """A 23-feature, 13-class data set shaped like the paper's Health data (class 0 unused).

    MHEALTH itself is not reachable offline; this is clustered data with the same shapes so the Health MLP
    topology can be trained and evaluated end to end.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3.0, size=(13, 23))
    y = rng.integers(1, 13, size=n)
    x = centres[y] + rng.normal(0, 2.0, size=(n, 23))
    np.savez(path, x=x.astype(np.float32), y=y, class_names=np.array([str(i) for i in range(13)]),
             feature_groups=json.dumps({"chest": list(range(0, 5)), "ankle": list(range(5, 14)),
                                        "arm": list(range(14, 23))}))
    return str(path)


@pytest.fixture(scope="session")
def health_npz(tmp_path_factory) -> str:
    return write_health_like_npz(tmp_path_factory.mktemp("health") / "health23.npz")
