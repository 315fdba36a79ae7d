"""Low-bit link codes (issue 19): packing in Python and C against shared vectors, the topology's ``bits`` /
``max_bytes`` rule and its errors, and a compressed fashion build bit-exact on emulated boards."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from host.ml.link_codes import clamp_codes, packed_bytes, resolve_bits
from host.ml.topology import TopologyError, load_topology
from host.net.link_pack import PackError, pack, unpack

REPO = Path(__file__).resolve().parents[1]
VECTORS_PATH = REPO / "tests" / "vectors" / "link_pack_vectors.json"
GENERATOR_PATH = REPO / "tests" / "vectors" / "gen_link_pack_vectors.py"
CASES: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text())["link_pack"]
RUNTIME = REPO / "firmware" / "runtime"


def _cases():
    return [pytest.param(c, id=c["name"]) for c in CASES]


def test_vectors_file_is_what_its_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("gen_link_pack_vectors", GENERATOR_PATH)
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.render() == VECTORS_PATH.read_text(), "run tests/vectors/gen_link_pack_vectors.py"


@pytest.mark.parametrize("case", _cases())
def test_python_pack_and_unpack_match_the_vectors(case: dict[str, Any]) -> None:
    values = np.array(case["values"], np.int8)
    packed = pack(values, case["bits"], case["lo"])
    assert packed.hex() == case["packed_hex"]
    assert len(packed) == packed_bytes(len(values), case["bits"])
    got = unpack(packed, len(values), case["bits"], case["lo"])
    assert got.tolist() == case["unpacked"]
    # what the receiver unpacks is what the host reference computes with: the clamp of the sender's codes
    if case["lo"] == -128:
        assert clamp_codes(values, case["bits"]).tolist() == case["unpacked"]
    # a second trip changes nothing: the codes are already in the code space
    assert pack(got, case["bits"], case["lo"]) == packed


def test_unpack_refuses_a_payload_of_the_wrong_length() -> None:
    with pytest.raises(PackError, match="10 values at 4 bits = 5 B"):
        unpack(bytes(4), 10, 4, -128)


def _c_driver() -> str:
    """A C program that packs (into a copy and in place) and unpacks every vector, printing hex and values."""
    body = []
    for k, c in enumerate(CASES):
        vals = ", ".join(str(v) for v in c["values"])
        n = len(c["values"])
        body.append(f"""
    {{
        static const int8_t v{k}[] = {{{vals}}};
        int8_t work[{n}]; uint8_t out[{n}]; int8_t back[{n}];
        size_t m = link_packed_bytes({n}u, {c['bits']}u);
        link_pack(v{k}, out, {n}u, {c['bits']}u, (int8_t)({c['lo']}));
        memcpy(work, v{k}, sizeof work);
        link_pack(work, (uint8_t *)work, {n}u, {c['bits']}u, (int8_t)({c['lo']}));
        if (memcmp(work, out, m) != 0) {{ printf("in-place differs\\n"); return 1; }}
        link_unpack(out, back, {n}u, {c['bits']}u, (int8_t)({c['lo']}));
        for (size_t i = 0; i < m; i++) printf("%02x", out[i]);
        printf(" ");
        for (size_t i = 0; i < {n}u; i++) printf("%d,", back[i]);
        printf("\\n");
    }}""")
    return ('#include <stdio.h>\n#include <string.h>\n#include "link_pack.h"\nint main(void)\n{'
            + "".join(body) + "\n    return 0;\n}\n")


def test_c_pack_and_unpack_match_the_vectors(tmp_path: Path) -> None:
    src, exe = tmp_path / "drive.c", tmp_path / "drive"
    src.write_text(_c_driver())
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Wconversion", "-Werror", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", f"-I{RUNTIME}", str(src), str(RUNTIME / "link_pack.c"),
                    "-o", str(exe)], check=True)
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True, timeout=30).stdout.splitlines()
    assert len(lines) == len(CASES)
    for line, case in zip(lines, CASES):
        packed_hex, values = line.split(" ")
        assert packed_hex == case["packed_hex"], case["name"]
        assert [int(v) for v in values.rstrip(",").split(",")] == case["unpacked"], case["name"]


# ----------------------------------------------------------------------------- the topology's rule
def test_max_bytes_picks_the_most_bits_that_fit() -> None:
    assert resolve_bits("a->b", None, None, 1568) == 8
    assert resolve_bits("a->b", None, 1568, 1568) == 8
    assert resolve_bits("a->b", None, 1567, 1568) == 4
    assert resolve_bits("a->b", None, 784, 1568) == 4
    assert resolve_bits("a->b", None, 783, 1568) == 2
    assert resolve_bits("a->b", 2, 400, 1568) == 2
    with pytest.raises(ValueError, match="max_bytes = 391 is unreachable: .*1568 elements, 392 B at 2 bits"):
        resolve_bits("a->b", None, 391, 1568)
    with pytest.raises(ValueError, match="bits = 4 packs its 1568 elements into 784 B > max_bytes = 500"):
        resolve_bits("a->b", 4, 500, 1568)


def _topology(tmp_path: Path, extra: str) -> Path:
    """fashion with ``extra`` added to its edge->fog link."""
    text = (REPO / "host" / "ml" / "presets" / "fashion.toml").read_text()
    text = text.replace('from = "edge"\nto = "fog"\n', f'from = "edge"\nto = "fog"\n{extra}\n')
    assert extra in text
    path = tmp_path / "fashion_links.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("extra", ["bits = 3", "bits = 16", 'bits = "4"', "max_bytes = 0"])
def test_a_bad_bits_or_budget_is_a_topology_error(tmp_path: Path, extra: str) -> None:
    with pytest.raises(TopologyError, match=r"link edge->fog: (bits|max_bytes) = .*: (a link carries 8, 4 or 2|give)"):
        load_topology(_topology(tmp_path, extra))


def test_bits_and_budget_reach_the_links(tmp_path: Path) -> None:
    topo = load_topology(_topology(tmp_path, "bits = 4\nmax_bytes = 900"))
    link = topo.link("edge->fog")
    assert (link.bits, link.max_bytes) == (4, 900) and topo.link("iot->edge").bits is None
    assert topo.to_dict()["links"][1]["bits"] == 4  # part of the model cache key


@pytest.mark.parametrize("extra,message", [
    ("bits = 3", "link edge->fog: bits = 3: a link carries 8, 4 or 2 bits per element"),
    ("max_bytes = 100", "link edge->fog: max_bytes = 100 is unreachable: its tensor has 1568 elements, 392 B at 2 bits"),
    # fog muxes edge->fog with the skip iot->fog: one int8 scale, one code space on the boards
    ("bits = 4", "links edge->fog (4 bits), iot->fog (8 bits) share one int8 scale and zero point on the boards"),
])
def test_the_build_refuses_them_in_one_line(tmp_path: Path, extra: str, message: str) -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", RESILINET_CACHE=str(tmp_path / "cache"))
    res = subprocess.run([sys.executable, "-m", "host.build", "--preset", str(_topology(tmp_path, extra)),
                          "--max-train", "200", "--max-test", "50", "--epochs", "1", "--out", str(tmp_path / "b")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    errors = [l for l in res.stderr.splitlines() + res.stdout.splitlines() if l.startswith("error: ")]
    assert res.returncode == 2 and len(errors) == 1 and message in errors[0], res.stderr[-2000:]
    assert "Traceback" not in res.stderr and not (tmp_path / "b").exists()


# ----------------------------------------------------------------------------- on emulated boards
COMPRESSED = REPO / "examples" / "link_codes" / "fashion_compressed.toml"


@pytest.fixture(scope="module")
def compressed_build(tmp_path_factory) -> Path:
    """examples/link_codes/fashion_compressed.toml (2-bit links, a bottleneck on iot->edge), one quick epoch."""
    out = tmp_path_factory.mktemp("links") / "fashion_compressed"
    env = dict(os.environ, RESILINET_CACHE=str(tmp_path_factory.getbasetemp() / "links-cache"),
               TF_CPP_MIN_LOG_LEVEL="3")
    res = subprocess.run([sys.executable, "-m", "host.build", "--preset", str(COMPRESSED), "--epochs", "1",
                          "--max-train", "300", "--max-test", "30", "--int8-samples", "10", "--out", str(out),
                          "--quiet"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out


def test_the_manifest_and_node_configs_carry_the_codes(compressed_build: Path) -> None:
    from host.deploy.manifest import MANIFEST_VERSION, read_manifest

    m = read_manifest(compressed_build, stage="firmware")
    assert m.version == MANIFEST_VERSION == 2
    links = m.require_links()
    assert links["iot->edge"].shape == [14, 14, 4]  # the bottleneck: 4 channels on the wire
    for name, l in links.items():
        assert (l.bits, l.code_lo, l.wire_bytes) == (2, -128, l.bytes // 4), name
        # the int8 scale spans exactly the 4 codes -128..-125, and real 0 is one of them
        assert -128 <= l.zero_point <= -125, name
    cfg = (compressed_build / "nodes" / "edge" / "fw" / "node_config.h").read_text()
    ie = links["iot->edge"]
    assert f"{{{ie.id}, 1, 784, ({ie.zero_point}), 2, (-128)}}," in cfg  # link, src, bytes, zero point, bits, lo


@pytest.mark.parametrize("dead", [[], ["edge"]], ids=["none_failed", "edge_dropped"])
def test_compressed_build_is_bit_exact_on_boards(compressed_build: Path, dead: list[str]) -> None:
    """Every node's answer equals the int8 reference's, which clamps each link as the sending board packs it;
    the wire carries the packed bytes (a quarter of the int8 tensor)."""
    from host.net.harness import run_harness

    res = run_harness(compressed_build, samples=6, progress=False, write=False, dead=dead)
    (s,) = res.report["runs"]
    assert s["samples"]["answered"] == 6 and s["mismatches"] == []
    assert s["bit_exact"]["compared"] > 0 and s["bit_exact"]["identical"] == s["bit_exact"]["compared"]
    assert s["accuracy"]["boards"] == s["accuracy"]["int8_host"]
    assert s["wire"]["iot->fog"]["payload_bytes"] == 6 * 392
    if dead:
        assert s["wire"]["edge->fog"]["frames"] == {"LINK_DOWN": 6}
