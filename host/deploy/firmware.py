"""Cross-compile node images: runtime + link codec + board files + model module(s).

One node = one board image::

    from host.deploy.firmware import NodeConfig, LinkIn, Input, Output, LinkOut, build_node
    cfg = NodeConfig(name="edge", node_id=2, invoke="edge_invoke", model_header="edge.h", ...)
    write_node_config(cfg, out / "node_config.h")
    image = build_node("qemu_f405", out / "node_config.h", [out / "edge.c"], out / "build")
    image.elf, image.flash_bytes, image.ram_bytes

``build_node`` fails with :class:`FirmwareFitError` (naming the node, the board and
the numbers) when the image does not fit the board's flash or RAM.

Sources of an image (see ``image_sources``): ``firmware/runtime/*.c``,
``firmware/link/*.c``, ``firmware/bsp/*.c`` (the board's ``boards/<board>/board_config.h``
selects its UART driver and pin set-up), the model sources, and
``firmware/cmsis_nn/*.c`` when a model source includes ``arm_nnfunctions.h``.
The linker script is ``firmware/bsp/sections.ld`` with a ``memory.ld``
generated from ``boards/<board>/board.toml`` (the single source of the memory map).
The compiler driver itself (flags, cached compiles, sizes) is :mod:`codegen.toolchain`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from boards import Board, load_board
from codegen.toolchain import (CC, CMSIS_NN_DIR, COMMON_CFLAGS, DEFAULT_STACK_BYTES, LINK_FLAGS, OBJCOPY,
                               RUNTIME_DIR, SECTIONS_LD, FirmwareBuildError, board_include_dirs, board_sources,
                               compile_object, cpu_flags, image_usage, inputs_digest, memory_ld, read_stamp, run,
                               section_sizes, toolchain_available, write_if_changed)

#: Files of the node runtime that go into every image (node_main.c defines main()).
RUNTIME_SOURCES = ("node_runtime.c", "aggregate.c", "link_pack.c", "node_main.c")

#: Boards are nodes 1..254: link protocol version 3 sends a node id as one byte (docs/protocol.md §1).
#: It equals host.net.protocol.NODE_MAX, which this layer may not import (tests/test_protocol.py checks).
BOARD_ID_MAX = 254


class FirmwareFitError(FirmwareBuildError):
    """The image does not fit the board; the message names node, board and numbers."""

    def __init__(self, node: str, board: str, flash_used: int, flash_size: int, ram_used: int,
                 ram_size: int, detail: str = "") -> None:
        parts = []
        if flash_used > flash_size:
            parts.append(f"flash {flash_used:,} B > {flash_size:,} B (over by {flash_used - flash_size:,} B)")
        if ram_used > ram_size:
            parts.append(f"RAM {ram_used:,} B > {ram_size:,} B (over by {ram_used - ram_size:,} B)")
        super().__init__(f"node {node!r} does not fit board {board!r}: " + "; ".join(parts)
                         + (f" ({detail})" if detail else ""))
        self.node, self.board = node, board
        self.flash_used, self.flash_size, self.ram_used, self.ram_size = flash_used, flash_size, ram_used, ram_size


# ---- Node configuration (emitted as node_config.h) --------------------------------


@dataclass(frozen=True)
class LinkIn:
    """An incoming link: the tensor `link` that node `src` (0 = host) sends."""

    link: int
    src: int
    bytes: int
    zero_point: int
    bits: int = 8     # on the wire: 4 or 2 = packed codes lo + c (firmware/runtime/link_pack.h)
    lo: int = -128


@dataclass(frozen=True)
class Input:
    """A model input: ``kind="link"`` (one link, zero-point fill when missing),
    ``kind="mux"`` (first link that arrived, in priority order; none → zero-point fill), or
    ``kind="standby"`` (``links = (guard, ..., guard, skip)``: the skip when none of the guards — the node's
    normal links — arrived, else zero-point fill; the skips of a mux node beside its pointer mux, or all of
    them when it has several normal links), or
    ``kind="average"`` (the replicas of one part: the mean of the codes of those that arrived, rounded
    half away from zero; none → zero-point fill).
    ``links`` are link ids of ``NodeConfig.links_in``."""

    links: tuple[int, ...]
    kind: str = "link"

    def __post_init__(self) -> None:
        object.__setattr__(self, "links", tuple(self.links))


@dataclass(frozen=True)
class Output:
    bytes: int
    zero_point: int = 0


@dataclass(frozen=True)
class LinkOut:
    """Per sample, the node sends model output `output` as DATA on `link` to node `dst`,
    or (``type="result"``) as RESULT to the host (link = 255)."""

    output: int
    dst: int
    link: int = 0xFF
    type: str = "data"
    bits: int = 8     # DATA: 4 or 2 = the output is clamped and packed (firmware/runtime/link_pack.h)
    lo: int = -128


@dataclass(frozen=True)
class NodeConfig:
    name: str
    node_id: int
    invoke: str                  # C function: int32_t f(const int8_t *const in[], int8_t *const out[])
    model_header: str            # header declaring it, e.g. "node2_model.h"
    links_in: tuple[LinkIn, ...]
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    links_out: tuple[LinkOut, ...]
    deadline_ms: int = 0         # from a sample's first input until it is computed anyway; 0 = none
    n_slots: int = 3             # samples in flight
    arena_bytes: int = 0
    model_hash: bytes = bytes(8)
    board: str = ""              # informational (comment in the header)
    comment: str = ""            # informational (comment in the header)
    reset: str = ""              # C function void f(void) restoring a stateful model before each sample; "": none

    def __post_init__(self) -> None:
        for name in ("links_in", "inputs", "outputs", "links_out"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if len(self.model_hash) != 8:
            raise ValueError("model_hash must be 8 bytes (first 8 of the SHA-256)")
        if not 1 <= self.node_id <= BOARD_ID_MAX:
            raise ValueError(f"node id {self.node_id} outside 1..{BOARD_ID_MAX}")
        # The checks of node_check_config() in firmware/runtime/node_runtime.c, at build time.
        ids = [l.link for l in self.links_in]
        if not 1 <= len(self.links_in) <= 8 or not 1 <= len(self.inputs) <= 8:
            raise ValueError("a node takes 1..8 incoming links and 1..8 model inputs")
        if len(self.outputs) > 8 or len(self.links_out) > 8 or not 1 <= self.n_slots <= 4:
            raise ValueError("a node has at most 8 outputs, 8 outgoing links and 1..4 slots")
        if len(set(ids)) != len(ids):  # a DATA frame names only its link
            raise ValueError(f"incoming links repeat a link id: {self.links_in}")
        for l in self.links_in:
            if not (0 <= l.src <= BOARD_ID_MAX and 0 <= l.link <= 127 and 0 < l.bytes <= 2048 and -128 <= l.zero_point <= 127
                    and l.bits in (2, 4, 8)):
                raise ValueError(f"incoming link out of range: {l}")
        used = [link for inp in self.inputs for link in (inp.links[-1:] if inp.kind == "standby" else inp.links)]
        for inp in self.inputs:
            if inp.kind not in ("link", "mux", "standby", "average"):
                raise ValueError(f"input kind {inp.kind!r}: expected 'link', 'mux', 'standby' or 'average'")
            if inp.kind == "standby":
                if not 2 <= len(inp.links) <= 8 or any(k not in ids for k in inp.links):
                    raise ValueError(f"a 'standby' input has links (1..7 guards, skip) among links_in {ids}: {inp}")
                continue
            if not (len(inp.links) == 1 if inp.kind == "link" else
                    (1 if inp.kind == "average" else 2) <= len(inp.links) <= 8):  # NODE_MUX_MAX
                raise ValueError(f"a 'link' input has 1 link, a 'mux' 2..8, an 'average' 1..8: {inp}")
            for link in inp.links:
                if link not in ids:
                    raise ValueError(f"input uses link {link}, which is not among links_in {ids}")
            first = self.link(inp.links[0])
            if any((self.link(k).bytes, self.link(k).zero_point) != (first.bytes, first.zero_point) for k in inp.links):
                raise ValueError(f"the links of one mux or average must share size and zero point: {inp}")
        if sorted(used) != sorted(ids):
            raise ValueError(f"every incoming link must feed exactly one input: links {ids}, used {used}")
        for o in self.outputs:
            if not 0 < o.bytes <= 2044:
                raise ValueError(f"output of {o.bytes} bytes: a frame carries 1..2044 tensor bytes (a RESULT "
                                 f"adds a 4-byte cycle count to the 2048-byte payload limit)")
        for lo in self.links_out:
            if lo.type not in ("data", "result"):
                raise ValueError(f"link_out type {lo.type!r}: expected 'data' or 'result'")
            if not 0 <= lo.output < len(self.outputs) or not 0 <= lo.dst <= BOARD_ID_MAX:
                raise ValueError(f"outgoing link out of range: {lo}")
            if lo.type == "data" and not 0 <= lo.link <= 127:
                raise ValueError(f"a DATA link needs a link id 0..127: {lo}")

    def input_bytes(self, k: int) -> int:
        inp = self.inputs[k]
        return self.link(inp.links[-1] if inp.kind == "standby" else inp.links[0]).bytes

    def link(self, link_id: int) -> LinkIn:
        return next(l for l in self.links_in if l.link == link_id)


def _c_int8(v: int) -> str:
    return f"{v}" if v >= 0 else f"({v})"


def render_node_config(cfg: NodeConfig) -> str:
    """The C header node_config.h for one node (plain arrays of structs)."""
    index = {l.link: i for i, l in enumerate(cfg.links_in)}
    def align_sum(sizes: Iterable[int]) -> str:
        return " + ".join(f"NODE_ALIGN({s})" for s in sizes) or "0"
    lines = [
        f"/* node_config.h -- node {cfg.node_id} ({cfg.name}){' for ' + cfg.board if cfg.board else ''}.",
        *([f" * {line}" for line in cfg.comment.splitlines()] if cfg.comment else []),
        " * Generated by host/deploy/firmware.py; types in firmware/runtime/node_runtime.h. Do not edit. */",
        "#ifndef NODE_CONFIG_H",
        "#define NODE_CONFIG_H",
        "",
        '#include "node_runtime.h"',
        f'#include "{cfg.model_header}"',
        "",
        f"#define NODE_CFG_ID {cfg.node_id}",
        f"#define NODE_CFG_SLOTS {cfg.n_slots}",
        f"#define NODE_CFG_SLOT_BYTES ({align_sum(l.bytes for l in cfg.links_in)})",
        f"#define NODE_CFG_OUTPUT_BYTES ({align_sum(o.bytes for o in cfg.outputs)})",
        f"#define NODE_CFG_DEADLINE_MS {cfg.deadline_ms}u",
        "",
        "#ifndef BOARD_TICK_HZ",
        '#error "include board.h before node_config.h (deadlines are in board ticks)"',
        "#endif",
        "",
        f"static const node_link_in_t node_links_in[{len(cfg.links_in)}] = {{",
        "    /* link, src, bytes, zero_point, bits (on the wire), lo (int8 of code 0) */",
        *(f"    {{{l.link}, {l.src}, {l.bytes}, {_c_int8(l.zero_point)}, {l.bits}, {_c_int8(l.lo)}}},"
          for l in cfg.links_in),
        "};",
        "",
        f"static const node_input_t node_inputs[{len(cfg.inputs)}] = {{",
        "    /* kind, n_links, {indices into node_links_in, priority order}, bytes */",
    ]
    for k, inp in enumerate(cfg.inputs):
        kind = {"mux": "NODE_INPUT_MUX", "standby": "NODE_INPUT_STANDBY",
                "average": "NODE_INPUT_AVERAGE"}.get(inp.kind, "NODE_INPUT_LINK")
        idx = ", ".join(str(index[l]) for l in inp.links)
        ids = ", ".join(str(l) for l in inp.links)
        lines.append(f"    {{{kind}, {len(inp.links)}, {{{idx}}}, {cfg.input_bytes(k)}}}, /* link {ids} */")
    lines += [
        "};",
        "",
        f"static const node_output_t node_outputs[{len(cfg.outputs)}] = {{",
        "    /* bytes, zero_point */",
        *(f"    {{{o.bytes}, {_c_int8(o.zero_point)}}}," for o in cfg.outputs),
        "};",
        "",
        f"static const node_link_out_t node_links_out[{max(len(cfg.links_out), 1)}] = {{",
        "    /* type, link, dst, output, bits (on the wire), lo (int8 of code 0) */",
        *(f"    {{{'LINK_TYPE_RESULT' if lo.type == 'result' else 'LINK_TYPE_DATA'}, "
          f"{0xFF if lo.type == 'result' and lo.link == 0xFF else lo.link}, {lo.dst}, {lo.output}, {lo.bits}, "
          f"{_c_int8(lo.lo)}}},"
          for lo in cfg.links_out),
        "};",
        "",
        "static const node_config_t node_config = {",
        f"    .node_id = {cfg.node_id},",
        f"    .n_links_in = {len(cfg.links_in)},",
        f"    .n_inputs = {len(cfg.inputs)},",
        f"    .n_outputs = {len(cfg.outputs)},",
        f"    .n_links_out = {len(cfg.links_out)},",
        f"    .n_slots = NODE_CFG_SLOTS,",
        "    .deadline_ticks = (NODE_CFG_DEADLINE_MS * BOARD_TICK_HZ + 999u) / 1000u,",
        f"    .arena_bytes = {cfg.arena_bytes}u,",
        "    .model_hash = {" + ", ".join(f"0x{b:02x}" for b in cfg.model_hash) + "},",
        "    .links_in = node_links_in,",
        "    .inputs = node_inputs,",
        "    .outputs = node_outputs,",
        "    .links_out = node_links_out,",
        f"    .invoke = {cfg.invoke},",
        *([f"    .reset = {cfg.reset},"] if cfg.reset else []),
        "};",
        "",
        "#endif /* NODE_CONFIG_H */",
        "",
    ]
    return "\n".join(lines)


def write_node_config(cfg: NodeConfig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_node_config(cfg)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


# ---- Board → compiler flags and memory map -------------------------------------------


# ---- Build ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeImage:
    node: str
    board: str
    elf: Path
    bin: Path
    map: Path
    sections: dict[str, int]
    flash_bytes: int      # .text + .ARM.exidx + .data (load image)
    ram_bytes: int        # .data + .bss + stack
    stack_bytes: int
    flash_size: int
    ram_size: int
    command: tuple[str, ...] = field(repr=False, default=())
    warnings: str = field(repr=False, default="")

    def summary(self) -> str:
        return (f"{self.node} on {self.board}: flash {self.flash_bytes:,} / {self.flash_size:,} B, "
                f"RAM {self.ram_bytes:,} / {self.ram_size:,} B (stack {self.stack_bytes:,} B)")


def uses_cmsis_nn(sources: Iterable[Path]) -> bool:
    return any("arm_nnfunctions.h" in Path(s).read_text(errors="replace") for s in sources
               if Path(s).suffix in (".c", ".h"))


def image_sources(board: Board, model_sources: Sequence[Path], cmsis_nn: bool | None = None) -> list[Path]:
    srcs = [RUNTIME_DIR / n for n in RUNTIME_SOURCES]
    srcs += board_sources(board)
    srcs += [Path(s) for s in model_sources if Path(s).suffix == ".c"]
    if cmsis_nn is None:
        cmsis_nn = uses_cmsis_nn(model_sources)
    if cmsis_nn:
        srcs += sorted(CMSIS_NN_DIR.glob("*.c"))
    return srcs


def build_node(board: str | Board, config_header: Path, model_sources: Sequence[Path], out_dir: Path, *,
               node_name: str | None = None, include_dirs: Sequence[Path] = (),
               defines: Mapping[str, object] | None = None, stack_bytes: int = DEFAULT_STACK_BYTES,
               cmsis_nn: bool | None = None, extra_cflags: Sequence[str] = (), werror: bool = False,
               force: bool = False, jobs: int | None = None) -> NodeImage:
    """Cross-compile and link one node image into ``out_dir`` (``node.elf``, ``node.bin``, ``node.map``).

    ``config_header`` is the node's node_config.h (any file name; it is copied to
    ``out_dir/include/node_config.h``).  The directories of the model sources and
    ``include_dirs`` are on the include path.  Objects are compiled in parallel (``jobs``,
    default: all cores) and rebuilt only when their command, source or a header they
    include changed (unless ``force``).  Raises FirmwareFitError when the image does not
    fit the board, FirmwareBuildError when the compiler fails.
    """
    if not toolchain_available():
        raise FirmwareBuildError(f"{CC} not found: install gcc-arm-none-eabi and libnewlib-arm-none-eabi")
    b = board if isinstance(board, Board) else load_board(board)
    out_dir = Path(out_dir).resolve()
    node = node_name or Path(config_header).parent.name or "node"
    inc_dir = out_dir / "include"
    obj_dir = out_dir / "obj"
    obj_dir.mkdir(parents=True, exist_ok=True)
    inc_dir.mkdir(parents=True, exist_ok=True)
    write_if_changed(inc_dir / "node_config.h", Path(config_header).read_text())
    write_if_changed(out_dir / "memory.ld", memory_ld(b))

    model_sources = [Path(s).resolve() for s in model_sources]
    srcs = image_sources(b, model_sources, cmsis_nn)
    includes = [inc_dir, RUNTIME_DIR, *board_include_dirs(b)]
    includes += sorted({s.parent for s in model_sources}) + [Path(d).resolve() for d in include_dirs]
    if any(s.parent == CMSIS_NN_DIR for s in srcs):
        includes.append(CMSIS_NN_DIR)
    defs = [f"-D{k}" if v is None else f"-D{k}={v}" for k, v in (defines or {}).items()]
    cflags = [*cpu_flags(b), *COMMON_CFLAGS, *(["-Werror"] if werror else []), *extra_cflags, *defs,
              *(f"-I{d}" for d in includes)]

    # -- compile --
    objects = [obj_dir / f"{s.stem}-{hashlib.sha256(str(s).encode()).hexdigest()[:8]}.o" for s in srcs]
    # this node's own directories: abstracted in the shared object cache's keys, so nodes share kernel objects
    local_dirs = [out_dir, *sorted({s.parent for s in model_sources}), *(Path(d).resolve() for d in include_dirs)]
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        results = list(pool.map(lambda so: compile_object(*so, cflags, force, local_dirs), zip(srcs, objects)))
    failed = [r for r in results if r[0] != 0]
    if failed:
        raise FirmwareBuildError(f"building node {node!r} for {b.name} failed:\n" + "\n".join(r[1] for r in failed))
    warnings = "".join(r[1] for r in results)

    # -- link --
    elf = out_dir / "node.elf"
    mapfile = out_dir / "node.map"
    link_cmd = [CC, *cpu_flags(b), *(str(o) for o in objects), f"-L{out_dir}", f"-T{SECTIONS_LD}",
                f"-Wl,--defsym=__stack_size={stack_bytes}", *LINK_FLAGS, f"-Wl,-Map={mapfile}", "-o", str(elf)]
    stamp = out_dir / "link.json"
    digest = inputs_digest(link_cmd, [*objects, SECTIONS_LD, out_dir / "memory.ld"])
    if force or not elf.exists() or read_stamp(stamp).get("digest") != digest:
        stamp.unlink(missing_ok=True)
        res = run(link_cmd)
        if res.returncode != 0:
            if "overflowed by" in res.stderr or "overlap" in res.stderr:
                _raise_fit_error(b, node, link_cmd, out_dir, stack_bytes, res.stderr)
            raise FirmwareBuildError(f"linking node {node!r} for {b.name} failed:\n{res.stderr}")
        res = run([OBJCOPY, "-O", "binary", str(elf), str(out_dir / "node.bin")])
        if res.returncode != 0:
            raise FirmwareBuildError(res.stderr)
        stamp.write_text(json.dumps({"digest": digest, "command": link_cmd}, indent=1))

    sections = section_sizes(elf)
    flash_used, ram_used = image_usage(sections)
    if flash_used > b.flash_bytes or ram_used > b.ram_bytes:
        raise FirmwareFitError(node, b.name, flash_used, b.flash_bytes, ram_used, b.ram_bytes)
    return NodeImage(node, b.name, elf, out_dir / "node.bin", mapfile, sections, flash_used, ram_used,
                     stack_bytes, b.flash_bytes, b.ram_bytes, tuple(link_cmd), warnings)


def _raise_fit_error(b: Board, node: str, link_cmd: list[str], out_dir: Path, stack_bytes: int, stderr: str) -> None:
    """The link overflowed a region: relink against 16x larger regions to measure by how much."""
    measure = out_dir / "measure"
    measure.mkdir(exist_ok=True)
    (measure / "memory.ld").write_text(memory_ld(b, scale=16))
    elf = measure / "node.elf"
    mcmd = [("-L" + str(measure)) if c == f"-L{out_dir}" else c for c in link_cmd]
    mcmd = [str(elf) if c == str(out_dir / "node.elf") else c for c in mcmd]
    mcmd = [c for c in mcmd if not c.startswith("-Wl,-Map=")]
    res = run(mcmd)
    if res.returncode != 0:
        raise FirmwareBuildError(f"node {node!r} does not fit board {b.name!r}:\n{stderr}")
    flash_used, ram_used = image_usage(section_sizes(elf))
    raise FirmwareFitError(node, b.name, flash_used, b.flash_bytes, ram_used, b.ram_bytes,
                           detail=f"stack {stack_bytes:,} B included")


# ---- CLI --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m host.deploy.firmware", description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", required=True, help="board name or alias (boards/*/board.toml)")
    ap.add_argument("--config", required=True, type=Path, help="the node's node_config.h")
    ap.add_argument("--out", required=True, type=Path, help="output directory")
    ap.add_argument("--node", help="node name for messages (default: the config's directory name)")
    ap.add_argument("--stack", type=int, default=DEFAULT_STACK_BYTES, help="stack bytes (default %(default)s)")
    ap.add_argument("-I", dest="include", action="append", default=[], type=Path, help="extra include dir")
    ap.add_argument("-D", dest="define", action="append", default=[], help="NAME or NAME=VALUE")
    ap.add_argument("sources", nargs="+", type=Path, help="model C sources")
    args = ap.parse_args(argv)
    defines = dict((d.split("=", 1) + [None])[:2] for d in args.define)
    try:
        image = build_node(args.board, args.config, args.sources, args.out, node_name=args.node,
                           include_dirs=args.include, defines=defines, stack_bytes=args.stack)
    except FirmwareBuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(image.summary())
    print(image.elf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
