"""The topology's data set as an experiment or a build uses it: loaded, optionally pointed elsewhere, subsampled."""
from __future__ import annotations

from host.ml.datasets import Dataset, load_dataset
from host.ml.topology import Topology


def load_for(topo: Topology, *, max_train: int | None = None, max_test: int | None = None,
             seed: int = 0) -> Dataset:
    """The topology's dataset, optionally subsampled (deterministically) for quick runs."""
    opts = dict(topo.dataset)
    name = opts.pop("name")
    ds = load_dataset(name, seed=seed, **opts)
    if max_train or max_test:
        ds = ds.subset(max_train=max_train, max_val=max_train and max(200, max_train // 10),
                       max_test=max_test, seed=seed)
    return ds


def override_dataset(topo: Topology, name: str | None, options: list[str]) -> None:
    """Point a topology at another dataset (``--dataset``/``--dataset-opt`` of the CLIs)."""
    if name:
        topo.dataset = {"name": name}
    for opt in options:
        key, sep, value = opt.partition("=")
        if not sep:
            raise SystemExit(f"--dataset-opt expects KEY=VALUE, got {opt!r}")
        topo.dataset[key] = value
