"""Partitioning the teacher's final-layer filters into parts, one filter subset per student (group).

Both partitioners start from the same per-image filter activity (``docs/nonn.md`` §3.3, [CODE]):
the spatial mean of every channel of the teacher's last conv stage after its final BN+ReLU, clipped at
0 and divided by the image's largest activity, so ``a_f(x)`` is in [0, 1]; only each image's ``top_k``
most active filters add edges.

- :func:`nonn_partition` is NoNN's (§3.3–3.4, [CODE]): "activation hub" edges
  ``W_ij += a_i a_j |a_i - a_j|``, normalised by the maximum, only edges at or above the 99th percentile
  of the non-zero weights kept, Louvain communities at resolution 0.7, then the framework's
  post-processing: communities of equal size are merged into one group (which also pools all isolated
  filters), groups sorted by size, the largest group "P0" dropped, the next K groups seed the K parts and
  every remaining group goes to the part that currently has the fewest filters. Parts come out uneven
  and some filters are not used at all; :class:`Partition` records both. When there are fewer groups
  than parts (the framework only ever ran 2 students), the largest group is halved ([INFERENCE]).
- :func:`balanced_eigen_partition` is the Electronics-2021 fix as reconstructed in §4.3 ([INFERENCE]):
  a co-activation graph ``W_ij += a_i a_j`` (no ``|a_i - a_j|`` penalty), Newman's modularity matrix,
  and a recursive split of each group at the median of its leading eigenvector, so the M parts have
  exactly F/M filters (sizes differ by at most one when M does not divide F).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

#: NoNN framework defaults ([CODE]): top-k filters per image for F = 256, edge percentile, Louvain resolution.
NONN_TOPK_AT_256 = 50
NONN_PERCENTILE = 99.0
NONN_RESOLUTION = 0.7


@dataclass
class Partition:
    """Disjoint filter subsets of the teacher's final layer; part j is learnt by students j, j+M, ...

    ``parts[j]`` holds sorted filter indices in ``[0, num_filters)``; filters in no part are ``unused``
    (NoNN drops its largest group). ``info`` keeps what the partitioner saw (community sizes, threshold).
    """

    method: str
    num_filters: int
    parts: list[list[int]]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.parts = [sorted(int(i) for i in p) for p in self.parts]
        seen: set[int] = set()
        for j, p in enumerate(self.parts):
            if not p:
                raise ValueError(f"{self.method}: part {j} is empty")
            if min(p) < 0 or max(p) >= self.num_filters:
                raise ValueError(f"{self.method}: part {j} indexes outside [0, {self.num_filters})")
            if seen & set(p):
                raise ValueError(f"{self.method}: parts overlap on filters {sorted(seen & set(p))}")
            seen |= set(p)

    @property
    def num_parts(self) -> int:
        return len(self.parts)

    @property
    def sizes(self) -> list[int]:
        return [len(p) for p in self.parts]

    @property
    def used(self) -> list[int]:
        return sorted(i for p in self.parts for i in p)

    @property
    def unused(self) -> list[int]:
        u = set(self.used)
        return [i for i in range(self.num_filters) if i not in u]

    def labels(self) -> np.ndarray:
        """Part id per filter, -1 for unused filters."""
        lab = np.full(self.num_filters, -1, np.int64)
        for j, p in enumerate(self.parts):
            lab[p] = j
        return lab

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sizes": self.sizes, "unused": len(self.unused)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Partition":
        return cls(d["method"], int(d["num_filters"]), [list(p) for p in d["parts"]], dict(d.get("info", {})))


# ----------------------------------------------------------------------------------- activity
def default_topk(num_filters: int) -> int:
    """NoNN's top-50 of 256 filters, scaled to ``num_filters`` ([INFERENCE]: the code fixes 50 for F = 256)."""
    return max(2, min(num_filters, int(round(num_filters * NONN_TOPK_AT_256 / 256))))


def normalize_activity(acts: np.ndarray) -> np.ndarray:
    """(N, F) spatial-mean activity -> ReLU, divided by each image's maximum ([CODE]); all-zero rows stay 0."""
    a = np.maximum(np.asarray(acts, np.float64), 0.0)
    if a.ndim != 2:
        raise ValueError(f"activity must be (images, filters), got shape {a.shape}")
    peak = a.max(axis=1, keepdims=True)
    return np.divide(a, peak, out=np.zeros_like(a), where=peak > 0)


def topk_mask(a: np.ndarray, k: int) -> np.ndarray:
    """Boolean (N, F): each row's k largest entries (ties broken by the lower filter index)."""
    n, f = a.shape
    k = min(int(k), f)
    order = np.argsort(-a, axis=1, kind="stable")[:, :k]
    mask = np.zeros((n, f), bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def activation_graph(acts: np.ndarray, *, rule: str = "hub", top_k: int | None = None,
                     chunk: int = 256) -> np.ndarray:
    """Symmetric (F, F) filter graph summed over images, zero diagonal.

    ``rule="hub"``: NoNN's activation-hub weight ``a_i a_j |a_i - a_j|`` ([CODE]);
    ``rule="coactivation"``: the Hebbian ``a_i a_j`` ([INFERENCE] for the eigenvector partitioner);
    ``rule="correlation"``: Pearson correlation of the activities over images, negatives clipped to 0
    (ignores ``top_k``). ``top_k`` (default :func:`default_topk`) keeps each image's most active filters.
    """
    a = normalize_activity(acts)
    n, f = a.shape
    if rule == "correlation":
        c = np.corrcoef(a, rowvar=False) if n > 1 else np.zeros((f, f))
        w = np.nan_to_num(np.maximum(c, 0.0))
        np.fill_diagonal(w, 0.0)
        return w
    if rule not in ("hub", "coactivation"):
        raise ValueError(f"unknown graph rule {rule!r} (hub, coactivation, correlation)")
    k = default_topk(f) if top_k is None else int(top_k)
    am = a * topk_mask(a, k)
    w = np.zeros((f, f))
    for s in range(0, n, chunk):
        b = am[s:s + chunk]
        if rule == "coactivation":
            w += b.T @ b
        else:
            w += np.einsum("ni,nj,nij->ij", b, b, np.abs(b[:, :, None] - b[:, None, :]), optimize=True)
    np.fill_diagonal(w, 0.0)
    return w


def sparsify(w: np.ndarray, percentile: float = NONN_PERCENTILE) -> tuple[np.ndarray, float]:
    """Normalise by the maximum and zero edges below the ``percentile`` of the non-zero weights ([CODE])."""
    w = np.asarray(w, np.float64)
    top = w.max() if w.size else 0.0
    if top <= 0:
        return np.zeros_like(w), 0.0
    w = w / top
    nz = w[np.triu_indices_from(w, 1)]
    nz = nz[nz > 0]
    thr = float(np.percentile(nz, percentile)) if nz.size else 0.0
    return np.where(w >= thr, w, 0.0), thr


# ------------------------------------------------------------------------------------- NoNN
def louvain(w: np.ndarray, *, resolution: float = NONN_RESOLUTION, seed: int = 0) -> list[list[int]]:
    """Louvain communities of the weighted graph ``w`` (networkx), every filter a node (isolated ones too)."""
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(range(w.shape[0]))
    iu, ju = np.nonzero(np.triu(w, 1))
    g.add_weighted_edges_from((int(i), int(j), float(w[i, j])) for i, j in zip(iu, ju))
    comms = nx.community.louvain_communities(g, weight="weight", resolution=resolution, seed=seed)
    return sorted((sorted(int(i) for i in c) for c in comms), key=lambda c: (-len(c), c[0]))


def nonn_groups(communities: Sequence[Sequence[int]], *, merge_equal_sizes: bool = True) -> list[list[int]]:
    """The framework's groups, largest first: communities of equal size merged (its loop runs over the
    unique sizes, which also pools all isolated filters); ``merge_equal_sizes=False`` merges only the
    singletons."""
    comms = [sorted(c) for c in communities if len(c)]
    if merge_equal_sizes:
        by_size: dict[int, list[int]] = {}
        for c in comms:
            by_size.setdefault(len(c), []).extend(c)
        groups = list(by_size.values())
    else:
        singles = [c[0] for c in comms if len(c) == 1]
        groups = [c for c in comms if len(c) > 1] + ([singles] if singles else [])
    groups = [sorted(g) for g in groups]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def assign_groups(groups: Sequence[Sequence[int]], num_parts: int, *, drop_largest: bool = True,
                  shortfall: str = "split") -> tuple[list[list[int]], list[str]]:
    """NoNN's greedy assignment: drop P0, seed the parts with the next groups, then each remaining group
    (largest first) to the part with the fewest filters (lowest index on ties). Returns (parts, notes).

    The framework only supports 2 students and never runs short of groups; with more parts it can.
    ``shortfall`` says what then happens ([INFERENCE]): ``"split"`` (default) keeps P0 dropped and halves
    the largest group (by filter index) until there are ``num_parts`` (P0 is taken back only when the other
    groups have fewer than ``num_parts`` filters); ``"keep_p0"`` first takes P0 back.
    """
    if shortfall not in ("split", "keep_p0"):
        raise ValueError(f"shortfall must be 'split' or 'keep_p0', not {shortfall!r}")
    notes: list[str] = []
    groups = [sorted(g) for g in sorted(groups, key=lambda g: (-len(g), min(g))) if len(g)]
    rest = sum(len(g) for g in groups[1:])
    if drop_largest and groups and (len(groups) > num_parts or (shortfall == "split" and rest >= num_parts)):
        notes.append(f"dropped the largest group P0 ({len(groups[0])} filters)")
        groups = groups[1:]
    elif drop_largest:
        notes.append(f"kept P0: only {len(groups)} groups ({rest} filters besides P0) for {num_parts} parts")
    while len(groups) < num_parts:
        if not groups or len(groups[0]) < 2:
            raise ValueError(f"cannot make {num_parts} non-empty parts from the filter groups")
        g = groups.pop(0)
        half = len(g) // 2
        groups += [g[:half], g[half:]]
        groups.sort(key=lambda g: (-len(g), min(g)))
        notes.append(f"split a group of {len(g)} filters in two to reach {num_parts} parts")
    parts = [list(g) for g in groups[:num_parts]]
    for g in groups[num_parts:]:
        j = min(range(num_parts), key=lambda i: (len(parts[i]), i))
        parts[j].extend(g)
    return parts, notes


def nonn_partition(acts: np.ndarray, num_parts: int, *, top_k: int | None = None,
                   percentile: float = NONN_PERCENTILE, resolution: float = NONN_RESOLUTION,
                   seed: int = 0, merge_equal_sizes: bool = True, drop_largest: bool = True,
                   shortfall: str = "split") -> Partition:
    """NoNN's partition of the filters seen in ``acts`` (N images, F filters) into ``num_parts`` parts
    (``drop_largest=False``: keep the group P0 the framework ignores; ``shortfall``: :func:`assign_groups`)."""
    w = activation_graph(acts, rule="hub", top_k=top_k)
    ws, thr = sparsify(w, percentile)
    comms = louvain(ws, resolution=resolution, seed=seed)
    groups = nonn_groups(comms, merge_equal_sizes=merge_equal_sizes)
    parts, notes = assign_groups(groups, num_parts, drop_largest=drop_largest, shortfall=shortfall)
    f = w.shape[0]
    info = {"top_k": default_topk(f) if top_k is None else int(top_k), "percentile": percentile,
            "threshold": thr, "edges_kept": int(np.count_nonzero(np.triu(ws, 1))), "resolution": resolution,
            "seed": seed, "isolated_filters": int(sum(len(c) == 1 for c in comms)),
            "community_sizes": [len(c) for c in comms if len(c) > 1], "group_sizes": [len(g) for g in groups],
            "merge_equal_sizes": merge_equal_sizes, "drop_largest": drop_largest, "shortfall": shortfall,
            "notes": notes}
    return Partition("nonn" if drop_largest else "nonn_all", f, parts, info)


# ------------------------------------------------------------------------------ eigenvector
def modularity_matrix(w: np.ndarray) -> np.ndarray:
    """Newman's ``B = W - k k^T / 2m`` (just W when the graph has no edges)."""
    w = np.asarray(w, np.float64)
    k = w.sum(axis=1)
    two_m = k.sum()
    return w - np.outer(k, k) / two_m if two_m > 0 else w.copy()


def leading_eigenvector(b: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Leading eigenvector of the generalised modularity matrix of the sub-graph ``idx`` (Newman 2006:
    ``B(g)_ij = B_ij - delta_ij sum_{l in g} B_il``), sign fixed so its largest-magnitude entry is > 0."""
    bg = b[np.ix_(idx, idx)].copy()
    bg -= np.diag(bg.sum(axis=1))
    _, vecs = np.linalg.eigh(bg)
    v = vecs[:, -1]
    return v if v[np.argmax(np.abs(v))] >= 0 else -v


def balanced_split(b: np.ndarray, idx: np.ndarray, num_parts: int) -> list[list[int]]:
    """Recursive median split of the leading eigenvector: ``num_parts`` groups of (near-)equal size."""
    idx = np.asarray(idx, np.int64)
    if num_parts <= 1:
        return [sorted(idx.tolist())]
    if len(idx) < num_parts:
        raise ValueError(f"cannot split {len(idx)} filters into {num_parts} non-empty parts")
    left_parts = num_parts // 2
    n_left = int(round(len(idx) * left_parts / num_parts))
    v = leading_eigenvector(b, idx)
    order = np.lexsort((idx, -v))  # largest entries first, ties by filter index
    left, right = idx[order[:n_left]], idx[order[n_left:]]
    return balanced_split(b, np.sort(left), left_parts) + balanced_split(b, np.sort(right), num_parts - left_parts)


def balanced_eigen_partition(acts: np.ndarray, num_parts: int, *, rule: str = "coactivation",
                             top_k: int | None = None) -> Partition:
    """M equal parts by recursive median splits of the leading modularity eigenvector ([INFERENCE], §4.3)."""
    w = activation_graph(acts, rule=rule, top_k=top_k)
    b = modularity_matrix(w)
    f = w.shape[0]
    parts = balanced_split(b, np.arange(f), num_parts)
    info = {"rule": rule, "top_k": None if rule == "correlation" else (default_topk(f) if top_k is None else top_k)}
    return Partition("eigen", f, parts, info)


# --------------------------------------------------------------------------------- quality
def partition_quality(w: np.ndarray, part: Partition) -> dict[str, float]:
    """How much of graph ``w`` a partition keeps inside its parts (unused filters count as one extra group).

    ``within_share``: within-part edge weight / edge weight among used filters; ``modularity``: Newman's Q
    of the labelling (unused filters as their own community).
    """
    lab = part.labels()
    used = lab >= 0
    same = (lab[:, None] == lab[None, :]) & used[:, None] & used[None, :]
    among = w[np.ix_(used, used)].sum()
    lab_q = np.where(used, lab, part.num_parts)
    b = modularity_matrix(w)
    two_m = w.sum()
    q = float((b * (lab_q[:, None] == lab_q[None, :])).sum() / two_m) if two_m > 0 else 0.0
    return {"within_share": float(w[same].sum() / among) if among > 0 else 0.0, "modularity": q}
