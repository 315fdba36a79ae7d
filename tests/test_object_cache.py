"""The shared object cache of firmware builds (codegen/objcache.py, used by codegen.toolchain.compile_object):
hits across node directories, misses on any changed dependency (a node's own header included), fallback on a
broken entry, concurrent builders, and byte-identical node images with and without the cache."""
from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import codegen.toolchain as tc
from boards import load_board
from firmware_support import EXAMPLE_CONFIG, TESTMODEL_SOURCES
from host.deploy.firmware import build_node

pytestmark = pytest.mark.skipif(not tc.toolchain_available(), reason="arm-none-eabi-gcc not installed")

KERNEL = "#include \"shared.h\"\nint kernel(int x) { return x * SCALE + 7; }\n"
RUNTIME = ("#include \"node_config.h\"\nconst int node_value = NODE_VALUE;\n"
           "int node_id(void) { return NODE_VALUE * 3; }\n")


@pytest.fixture
def compiles(tmp_path, monkeypatch) -> list[str]:
    """A private object cache, and the list of sources the real compiler was run on."""
    monkeypatch.setenv("RESILINET_CACHE", str(tmp_path / "cache"))
    tc.compiler_identity()  # its own compiler run happens before counting starts
    ran: list[str] = []
    real_run = tc.run

    def counting_run(cmd, cwd=None):
        ran.append(cmd[cmd.index("-c") + 1])
        return real_run(cmd, cwd)

    monkeypatch.setattr(tc, "run", counting_run)
    return ran


@pytest.fixture
def shared(tmp_path) -> Path:
    """Sources outside any node directory (like firmware/cmsis_nn)."""
    d = tmp_path / "shared"
    d.mkdir()
    (d / "shared.h").write_text("#define SCALE 3\n")
    (d / "kernel.c").write_text(KERNEL)
    (d / "runtime.c").write_text(RUNTIME)
    return d


def node_dir(tmp_path: Path, name: str, node_value: int = 1) -> Path:
    out = tmp_path / "nodes" / name
    (out / "include").mkdir(parents=True, exist_ok=True)
    (out / "obj").mkdir(exist_ok=True)
    (out / "include" / "node_config.h").write_text(f"#define NODE_VALUE {node_value}\n")
    return out


def compile_in(out: Path, src: Path, force: bool = False, extra: tuple[str, ...] = ()) -> bytes:
    """compile_object as build_node calls it: the node's include dir on the path, its dir local."""
    cflags = [*tc.cpu_flags(load_board("qemu_f405")), *tc.COMMON_CFLAGS, *extra, f"-I{out / 'include'}",
              f"-I{src.parent}"]
    obj = out / "obj" / f"{src.stem}.o"
    code, msg = tc.compile_object(src, obj, cflags, force, [out])
    assert code == 0, msg
    return obj.read_bytes()


def fresh(out: Path, src: Path) -> bytes:
    """The object a compile without the cache gives (force bypasses the cache)."""
    return compile_in(out, src, force=True)


def test_second_node_hits_the_cache(tmp_path, shared, compiles):
    a, b = node_dir(tmp_path, "a"), node_dir(tmp_path, "b")
    first = compile_in(a, shared / "kernel.c")
    assert compiles == [str(shared / "kernel.c")]
    second = compile_in(b, shared / "kernel.c")
    assert compiles == [str(shared / "kernel.c")]  # no second compiler run
    assert second == first == fresh(b, shared / "kernel.c")
    # the node's own stamp was written: its next build is up to date without asking the cache
    shutil.rmtree(tc.object_cache_dir())
    compile_in(b, shared / "kernel.c")
    assert len(compiles) == 2  # only fresh()'s forced run


def test_changed_dependency_misses(tmp_path, shared, compiles):
    a, b = node_dir(tmp_path, "a"), node_dir(tmp_path, "b")
    before = compile_in(a, shared / "kernel.c")
    (shared / "shared.h").write_text("#define SCALE 5\n")
    after = compile_in(b, shared / "kernel.c")
    assert len(compiles) == 2 and after != before
    assert after == fresh(b, shared / "kernel.c")


def test_node_local_header_never_validates_another_node(tmp_path, shared, compiles):
    a, b = node_dir(tmp_path, "a", node_value=1), node_dir(tmp_path, "b", node_value=2)
    obj_a = compile_in(a, shared / "runtime.c")
    obj_b = compile_in(b, shared / "runtime.c")  # same key, but b's node_config.h differs
    assert len(compiles) == 2 and obj_a != obj_b
    assert obj_b == fresh(b, shared / "runtime.c")
    # identical header content in another directory: the object may name its directory, so still a miss
    c = node_dir(tmp_path, "c", node_value=2)
    compile_in(c, shared / "runtime.c")
    assert len(compiles) == 4
    # the same node directory rebuilt from scratch (objects and stamps removed) hits
    shutil.rmtree(c / "obj")
    (c / "obj").mkdir()
    n = len(compiles)
    compile_in(c, shared / "runtime.c")
    assert len(compiles) == n


@pytest.mark.parametrize("damage", ["object bytes", "object missing", "record garbage", "record missing"])
def test_broken_entry_falls_back_to_compiling(tmp_path, shared, compiles, damage):
    a, b = node_dir(tmp_path, "a"), node_dir(tmp_path, "b")
    good = compile_in(a, shared / "kernel.c")
    [entry_obj] = tc.object_cache_dir().rglob("*.o")
    entry_json = entry_obj.with_suffix(".json")
    if damage == "object bytes":
        entry_obj.write_bytes(entry_obj.read_bytes()[:-16] + b"\0" * 16)
    elif damage == "object missing":
        entry_obj.unlink()
    elif damage == "record garbage":
        entry_json.write_text("{\"deps\": 3")
    else:
        entry_json.unlink()
    assert compile_in(b, shared / "kernel.c") == good
    assert len(compiles) == 2
    # the fallback compile repaired the entry
    compile_in(node_dir(tmp_path, "c"), shared / "kernel.c")
    assert len(compiles) == 2


def test_force_bypasses_the_cache(tmp_path, shared, compiles):
    compile_in(node_dir(tmp_path, "a"), shared / "kernel.c")
    compile_in(node_dir(tmp_path, "b"), shared / "kernel.c", force=True)
    assert len(compiles) == 2


def test_path_remapping_flags_only_matter_where_a_dependency_lies(tmp_path, shared, compiles):
    """Staged builds pass -ffile-prefix-map=<staging>=<final>: an object reading nothing under either staging
    directory is shared; one whose source is under it is not (its debug info names the final directory)."""
    a, b = node_dir(tmp_path, "a"), node_dir(tmp_path, "b")
    remap_a = (f"-ffile-prefix-map={tmp_path / 'stage-a'}=/final/a",)
    remap_b = (f"-ffile-prefix-map={tmp_path / 'stage-b'}=/final/b",)
    first = compile_in(a, shared / "kernel.c", extra=remap_a)
    assert compile_in(b, shared / "kernel.c", extra=remap_b) == first and len(compiles) == 1
    # a source under the remapped directory, same path and command but another final directory: its object
    # names /final/a or /final/b, so the entry of one never serves the other
    shutil.copytree(shared, tmp_path / "stage")
    to_a = (f"-ffile-prefix-map={tmp_path / 'stage'}=/final/a",)
    to_b = (f"-ffile-prefix-map={tmp_path / 'stage'}=/final/b",)
    obj_a = compile_in(a, tmp_path / "stage" / "kernel.c", extra=to_a)
    obj_b = compile_in(b, tmp_path / "stage" / "kernel.c", extra=to_b)
    assert len(compiles) == 3 and b"/final/b" in obj_b and b"/final/a" not in obj_b and obj_a != obj_b


def test_concurrent_builders_do_not_clash(tmp_path, shared, compiles):
    """Four builders compile the same source into an empty cache at once: every one gets the right object
    and the entry they leave is whole (a later node hits it)."""
    nodes = [node_dir(tmp_path, f"n{i}") for i in range(4)]
    start = threading.Barrier(len(nodes))

    def build(out: Path) -> bytes:
        start.wait()
        return compile_in(out, shared / "kernel.c")

    with ThreadPoolExecutor(len(nodes)) as pool:
        objects = list(pool.map(build, nodes))
    assert len(set(objects)) == 1
    n = len(compiles)
    assert compile_in(node_dir(tmp_path, "later"), shared / "kernel.c") == objects[0]
    assert len(compiles) == n
    assert not [p for p in tc.object_cache_dir().rglob(".*")]  # no temporary file left behind


def test_node_images_are_byte_identical_with_and_without_the_cache(tmp_path, monkeypatch):
    """A node built from a warm cache (filled by another node directory) equals the same node built with an
    empty cache, byte for byte: node.elf (debug info included), node.bin and the link map."""

    def build(cache: Path, out: Path) -> dict[str, bytes]:
        monkeypatch.setenv("RESILINET_CACHE", str(cache))
        build_node("qemu_f405", EXAMPLE_CONFIG, TESTMODEL_SOURCES, out, node_name="n", jobs=2)
        return {f: (out / f).read_bytes() for f in ("node.elf", "node.bin", "node.map")}

    build(tmp_path / "warm", tmp_path / "other" / "fw")
    cold = build(tmp_path / "empty", tmp_path / "x" / "fw")
    shutil.rmtree(tmp_path / "x")
    monkeypatch.setattr(tc, "run", counting := _Counting(tc.run))
    warm = build(tmp_path / "warm", tmp_path / "x" / "fw")
    assert warm == cold
    sources = [c for c in counting.compiled]
    # only the sources that include the node's own node_config.h are compiled again
    assert 0 < len(sources) <= 2, sources


class _Counting:
    def __init__(self, real) -> None:
        self.real, self.compiled = real, []

    def __call__(self, cmd, cwd=None):
        if "-c" in cmd:
            self.compiled.append(cmd[cmd.index("-c") + 1])
        return self.real(cmd, cwd)
