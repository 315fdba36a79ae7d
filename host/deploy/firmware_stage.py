"""Build stage 3: one firmware image per node, from the typed manifest's nodes and links.

Numbers the nodes (1..N in data-flow order; the host is 0) and the links (the host's feed of each sensor
node first, then every link of the network), writes each node's ``node_config.h`` — where every model
input comes from (a link with zero-point fill, a mux, a standby skip, or the average of replicas) and where every output goes —,
and cross-compiles it with the node's generated C module for its board (the build fails, naming the node,
the board and the numbers, when it does not fit).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from boards import load_board
from host.deploy.firmware import BOARD_ID_MAX, Input, LinkIn, LinkOut, NodeConfig, Output, build_node, write_node_config
from host.deploy.manifest import FirmwareImage, Link, Manifest, Node

HOST_ID = 0


def sensor_link(node: str) -> str:
    """The name of the host's feed of a sensor node's input."""
    return f"host->{node}"


def number_network(nodes: Mapping[str, Node], links: Mapping[str, Link]) -> tuple[dict[str, int], dict[str, int]]:
    """Node ids (1..N, manifest order = data-flow order) and link ids (sensor feeds first)."""
    if len(nodes) > BOARD_ID_MAX:
        raise ValueError(f"{len(nodes)} nodes: the link protocol addresses at most {BOARD_ID_MAX} boards")
    node_ids = {name: i + 1 for i, name in enumerate(nodes)}
    names = [sensor_link(n) for n, d in nodes.items() if d.require_model().aggregation == "source"] + list(links)
    if len(names) > 128:
        raise ValueError(f"{len(names)} links: DATA frames number links 0..127 (docs/protocol.md §1)")
    return node_ids, {name: i for i, name in enumerate(names)}


def node_config(name: str, node: Node, links: Mapping[str, Link], node_ids: Mapping[str, int],
                link_ids: Mapping[str, int], *, deadline_ms: int, n_slots: int = 3) -> NodeConfig:
    """The runtime configuration of one node (see firmware/runtime/node_runtime.h)."""
    model = node.require_model()
    by_c = sorted(model.inputs, key=lambda i: i.c_index)
    links_in: list[LinkIn] = []
    inputs: list[Input] = []

    def link_in(link: str, zp: int, nbytes: int) -> int:
        lid = link_ids[link]
        if all(l.link != lid for l in links_in):
            src = HOST_ID if link.startswith("host->") else node_ids[link.split("->")[0]]
            links_in.append(LinkIn(lid, src, nbytes, zp, *_code(links.get(link))))
        return lid

    if model.aggregation == "source":
        spec = by_c[0]
        inputs.append(Input([link_in(sensor_link(name), spec.zero_point, spec.bytes)]))
    else:
        # A standby skip is 0 while any normal link into the node came: the primaries (and averaged replicas)
        # of a mux node's other inputs are exactly its normal links (host/ml/split.py).
        guards = [l for spec in by_c for l in ([spec.primary] if spec.primary else spec.replicas)]
        for spec in by_c:
            zp, nbytes = spec.zero_point, spec.bytes
            if spec.replicas:                                  # average: the mean of the replicas that came
                inputs.append(Input([link_in(l, zp, nbytes) for l in spec.replicas], kind="average"))
            elif spec.fallback is None:                        # plain: one link, zero-point fill
                inputs.append(Input([link_in(str(spec.primary), zp, nbytes)]))
            elif spec.primary is not None:                     # mux: below first, then the skip
                inputs.append(Input([link_in(spec.primary, zp, nbytes), link_in(spec.fallback, zp, nbytes)],
                                    kind="mux"))
            else:                                              # standby: the skip while no normal link came
                inputs.append(Input([link_ids[g] for g in guards] + [link_in(spec.fallback, zp, nbytes)],
                                    kind="standby"))
    outs = sorted(model.outputs, key=lambda o: o.c_index)
    outputs = [Output(o.bytes, o.zero_point) for o in outs]
    links_out: list[LinkOut] = []
    for k, o in enumerate(outs):
        if o.result:
            links_out.append(LinkOut(output=k, dst=HOST_ID, type="result"))
        for link in o.links:
            links_out.append(LinkOut(k, node_ids[links[link].dst], link_ids[link], "data", *_code(links[link])))
    return NodeConfig(
        name=name, node_id=node_ids[name], invoke=f"{model.module}_invoke", model_header=f"{model.module}.h",
        links_in=links_in, inputs=inputs, outputs=outputs, links_out=links_out, deadline_ms=deadline_ms,
        n_slots=n_slots, arena_bytes=int(model.arena_bytes), model_hash=bytes.fromhex(model.model_sha256)[:8],
        board=node.board, comment=f"node {name!r} ({node.role}, {model.aggregation})",
        reset=f"{model.module}_reset" if model.state_bytes else "")


def _code(link: Link | None) -> tuple[int, int]:
    """(bits, lo) of a link on the wire (a sensor feed, or a version-1 manifest's link: plain int8)."""
    if link is None or link.wire_bits == 8:
        return 8, -128
    return link.wire_bits, int(link.code_lo if link.code_lo is not None else -128)


@dataclass
class FirmwareBuild:
    """What stage firmware made: the numbering and one image per node."""

    node_ids: dict[str, int]
    link_ids: dict[str, int]       # sensor feeds ("host-><sensor>") first, then the network's links
    images: dict[str, FirmwareImage]
    deadline_ms: int

    @property
    def sensor_links(self) -> dict[str, int]:
        """Sensor node -> the link id of the host's feed of it."""
        return {l.split("->")[1]: lid for l, lid in self.link_ids.items() if l.startswith("host->")}


def node_depths(nodes: Mapping[str, Node], links: Mapping[str, Link]) -> dict[str, int]:
    """Each node's depth: the most links on a path from a node fed by the host (depth 0) to it.

    A node's deadline grows with its depth (:func:`node_deadline_ms`): an upstream node may itself wait
    its whole deadline for a lost frame before it sends, and the receiver's clock starts at its first input
    (a skip, or the host's LINK_DOWN for a failed node), which can come as early as the sender's did. With
    one deadline everywhere the receiver gave up just before the late sender's data came (seen in the soak
    run: about half the samples lost while a node was down under 10 % frame loss)."""
    depth: dict[str, int] = {}

    def of(name: str) -> int:
        if name not in depth:
            srcs = [l.src for l in links.values() if l.dst == name]
            depth[name] = 1 + max(of(s) for s in srcs) if srcs else 0
        return depth[name]

    return {name: of(name) for name in nodes}


def node_deadline_ms(deadline_ms: int, depth: int) -> int:
    """The deadline of a node ``depth`` links below the sensors: ``deadline_ms`` at depths 0 and 1, and half
    of it more per level below (1, 1.5, 2, ... x): each level outwaits the one above it by half a deadline,
    which covers the sender's compute and transfer, while the deepest node's worst case stays within the
    host's deadline (board deadline x non-sensor nodes + 2 s)."""
    return deadline_ms * (max(1, depth) + 1) // 2


def build_firmware(manifest: Manifest, out: Path, *, deadline_ms: int = 1000, final: Path | None = None,
                   log: Callable[[str], None] = print) -> FirmwareBuild:
    """Write every node's config header and cross-compile its image (the manifest is not changed).

    ``final``: where the build directory ``out`` will be renamed to (host.deploy.staging); the images'
    debug information and file names then name that place (``-ffile-prefix-map``)."""
    out = Path(out).resolve()
    remap = [f"-ffile-prefix-map={out}={Path(final).resolve()}"] if final is not None and Path(final).resolve() != out \
        else []
    nodes, links = manifest.nodes, manifest.require_links()
    node_ids, link_ids = number_network(nodes, links)
    images: dict[str, FirmwareImage] = {}
    depths = node_depths(nodes, links)
    for name, node in nodes.items():
        board = load_board(node.board)
        cfg = node_config(name, node, links, node_ids, link_ids, deadline_ms=node_deadline_ms(deadline_ms, depths[name]))
        fw = out / "nodes" / name / "fw"
        header = write_node_config(cfg, fw / "node_config.h")
        img = build_node(board, header, [out / node.require_model().c], fw / board.name, node_name=name,
                         extra_cflags=remap)
        images[name] = FirmwareImage(
            node_id=node_ids[name], board=board.name, config_header=str(header.relative_to(out)),
            elf=str(img.elf.relative_to(out)), bin=str(img.bin.relative_to(out)), flash_bytes=img.flash_bytes,
            ram_bytes=img.ram_bytes, board_flash_bytes=img.flash_size, board_ram_bytes=img.ram_size,
            model_hash=cfg.model_hash.hex())
        log(f"  fw   {name} (node {node_ids[name]}, {board.name}): flash {img.flash_bytes:,} / "
            f"{img.flash_size:,} B, RAM {img.ram_bytes:,} / {img.ram_size:,} B")
    return FirmwareBuild(node_ids, link_ids, images, deadline_ms)
