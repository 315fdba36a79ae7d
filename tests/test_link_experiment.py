"""``host.experiments links`` (issue 19) without training: the variants it sweeps, their bytes per inference and
the Pareto front of its report."""
from __future__ import annotations

from pathlib import Path

from host.ml.link_experiment import pareto, variants
from host.ml.topology import load_topology

REPO = Path(__file__).resolve().parents[1]
FASHION = REPO / "host" / "ml" / "presets" / "fashion.toml"
# fashion's link tensors (elements, channels) as the sender computes them (nodes.md of a fashion build)
ELEMENTS = {"iot->edge": (1568, 8), "iot->fog": (1568, 32), "edge->fog": (1568, 32), "edge->cloud": (1024, 64),
            "fog->cloud": (1024, 64)}


def test_variants_are_topologies_with_the_bytes_they_put_on_the_wire(tmp_path: Path) -> None:
    topo = load_topology(FASHION)
    got = variants(topo, FASHION.read_text(), ELEMENTS)
    assert {k: v[1] for k, v in got.items()} == {
        "int8": 6752, "4-bit": 3376, "2-bit": 1688,
        # only iot->edge alone feeds its receiver: the one link a bottleneck may narrow
        "bottleneck 1/2": 6752 - 784, "bottleneck 1/4": 6752 - 1176,
        "4-bit + bottleneck 1/2": 3376 - 392, "2-bit + bottleneck 1/2": 1688 - 196}
    # the smallest variant is the compressed example's configuration, and the reader accepts it
    path = tmp_path / "v.toml"
    path.write_text(got["2-bit + bottleneck 1/2"][0])
    links = {l.name: l for l in load_topology(path).links}
    assert links["iot->edge"].bottleneck == 4 and all(l.bits == 2 for l in links.values())
    assert all(l.bottleneck is None for n, l in links.items() if n != "iot->edge")


def test_pareto_keeps_the_points_nothing_beats() -> None:
    pts = [(6752, 0.86), (3376, 0.86), (1688, 0.84), (1492, 0.845), (5968, 0.85)]
    assert pareto(pts) == [1, 3]  # 6752 and 5968 are beaten by 3376, 1688 by 1492
