"""The link protocol (docs/protocol.md): host/net/protocol.py and the C codec in
firmware/link/ checked against the same vectors, against each other, under a
sanitizer fuzz run, and cross-compiled for a Cortex-M4."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from host.net import protocol as p

REPO = Path(__file__).resolve().parents[1]
LINK_DIR = REPO / "firmware" / "link"
VECTORS_PATH = REPO / "tests" / "vectors" / "protocol_vectors.json"
GENERATOR_PATH = REPO / "tests" / "vectors" / "gen_protocol_vectors.py"
C_SOURCES = [LINK_DIR / name for name in ("link_protocol.c", "link_cobs.c", "link_crc16.c")]
C_WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wconversion", "-Werror"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
FUZZ_ITERATIONS = 100_000
FUZZ_SEED = int(os.environ.get("LINK_FUZZ_SEED", "20240611"))

VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())


def _by_name(section: str) -> list[Any]:
    return [pytest.param(case, id=case["name"]) for case in VECTORS[section]]


def _outcome_names(outcomes: list[tuple[p.LinkStatus, p.Frame | None]]) -> list[str]:
    return [status.name.lower() for status, _ in outcomes]


# ---- Python codec against the vectors ---------------------------------------------


def test_vectors_file_is_reproducible() -> None:
    """The committed vectors are what the generator makes: the wire format did not drift."""
    spec = importlib.util.spec_from_file_location("gen_protocol_vectors", GENERATOR_PATH)
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.render() == VECTORS_PATH.read_text(), "run tests/vectors/gen_protocol_vectors.py"


@pytest.mark.parametrize("case", _by_name("crc16"))
def test_crc16_known_answers(case: dict[str, Any]) -> None:
    assert p.crc16_ccitt(bytes.fromhex(case["data_hex"])) == case["crc"]


@pytest.mark.parametrize("case", _by_name("cobs"))
def test_cobs_known_answers(case: dict[str, Any]) -> None:
    raw, encoded = bytes.fromhex(case["raw_hex"]), bytes.fromhex(case["encoded_hex"])
    assert p.cobs_encode(raw) == encoded
    assert p.cobs_decode(encoded) == raw


@pytest.mark.parametrize("case", _by_name("frames"))
def test_frame_vectors(case: dict[str, Any]) -> None:
    frame = p.Frame(p.FrameType[case["type"]], case["src"], case["dst"], case["link"], case["seq"], bytes.fromhex(case["payload_hex"]))
    encoded = bytes.fromhex(case["encoded_hex"])
    assert frame.encode() == encoded
    assert p.decode_frame(encoded) == frame
    assert len(encoded) <= p.encoded_len_max(len(frame.payload), frame.type)
    decoder = p.FrameDecoder(local_node=p.NODE_ANY)
    assert decoder.feed(encoded) == [frame]


@pytest.mark.parametrize("case", _by_name("malformed"))
def test_malformed_and_stream_vectors(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["bytes_hex"])
    limit = case.get("max_payload", p.MAX_PAYLOAD)
    decoder = p.FrameDecoder(local_node=case["local_node"], max_payload=limit)
    assert _outcome_names(decoder.feed_outcomes(data)) == case["expect"]
    assert decoder.frames_ok + decoder.dropped == len(case["expect"])
    # Chunk boundaries of serial reads must not matter.
    rng = random.Random(case["name"])
    chunked = p.FrameDecoder(local_node=case["local_node"], max_payload=limit)
    outcomes: list[str] = []
    pos = 0
    while pos < len(data):
        step = rng.randint(1, 40)
        outcomes += _outcome_names(chunked.feed_outcomes(data[pos : pos + step]))
        pos += step
    assert outcomes == case["expect"]


@pytest.mark.parametrize("case", _by_name("seq_filter"))
def test_seq_filter_vectors(case: dict[str, Any]) -> None:
    seq_filter = p.SeqFilter()
    got = [seq_filter.check(s["src"], s["link"], s["seq"]).name.lower() for s in case["steps"]]
    assert got == [s["expect"] for s in case["steps"]]


def test_seq_expand_vectors() -> None:
    for case in VECTORS["seq_expand"]:
        assert p.seq_expand(case["ref"], case["seq8"]) == case["expect"], case


def test_seq_expand_recovers_every_sample_within_127_of_the_reference() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        ref = rng.randrange(1 << 16)
        seq = (ref + rng.randint(-127, 127)) & 0xFFFF
        assert p.seq_expand(ref, seq & 0xFF) == seq


def test_data_frames_carry_link_low_seq_and_tensor_only() -> None:
    tensor = bytes(range(1, 251))
    wire = p.Frame(p.FrameType.DATA, 3, 4, 9, 0x1234, tensor).encode()
    assert len(wire) == 256  # 2 header + 250 + CRC 2 + 1 COBS code + delimiter
    got = p.decode_frame(wire)
    assert (got.type, got.src, got.dst, got.link, got.seq, got.payload) == (p.FrameType.DATA, p.NODE_IMPLIED, p.NODE_IMPLIED, 9, 0x34, tensor)
    for bad in (dict(link=128), dict(payload=b""), dict(payload=bytes(p.MAX_PAYLOAD + 1)), dict(seq=1 << 16)):
        with pytest.raises(ValueError):
            p.encode_frame(p.Frame(**(dict(type=p.FrameType.DATA, src=1, dst=2, link=0, seq=0, payload=b"x") | bad)))


def test_payload_vectors() -> None:
    hello = VECTORS["payloads"]["hello"]
    h = p.Hello(bytes.fromhex(hello["model_hash_hex"]), tuple(hello["fw_version"]), hello["flash_bytes"], hello["arena_bytes"], hello["cpu_hz"],
                p.CycleCounter(hello["cycle_counter"]))
    assert h.pack().hex() == hello["payload_hex"]
    assert p.Hello.unpack(bytes.fromhex(hello["payload_hex"]) + b"later") == h
    # an older firmware's 24-byte HELLO is still read; it did not say which counter it used
    assert p.Hello.unpack(bytes.fromhex(hello["payload_hex"])[:24]).cycle_counter is p.CycleCounter.UNKNOWN
    stats = VECTORS["payloads"]["stats"]
    s = p.Stats(*stats["values"])
    assert s.pack().hex() == stats["payload_hex"] and len(s.pack()) == p.STATS_LEN
    assert p.Stats.unpack(s.pack() + bytes(4)) == s
    # an older firmware's 17 counters are still read; the runtime counters it did not send are 0
    assert p.Stats.unpack(s.pack()[:68]) == p.Stats(*stats["values"][:17])
    sample = VECTORS["payloads"]["sample"]
    payload = p.build_sample_payload(sample["cycles"], bytes.fromhex(sample["tensor_hex"]))
    assert payload.hex() == sample["payload_hex"]
    assert p.parse_sample_payload(payload) == (sample["cycles"], bytes.fromhex(sample["tensor_hex"]))


def test_constants_match_the_vectors() -> None:
    constants = VECTORS["constants"]
    assert {k: v for k, v in constants.items() if k.startswith("TYPE_")} == {f"TYPE_{t.name}": int(t) for t in p.FrameType}
    assert {k: v for k, v in constants.items() if k.startswith("STATUS_")} == {f"STATUS_{s.name}": int(s) for s in p.LinkStatus}


# ---- Python codec: behaviour beyond the vectors -------------------------------------


def test_payload_helpers_round_trip_and_reject_short_payloads() -> None:
    np = pytest.importorskip("numpy")
    tensor = np.arange(-128, 128, dtype=np.int8)
    cycles, body = p.parse_sample_payload(p.build_sample_payload(1234, tensor))
    assert cycles == 1234 and (np.frombuffer(body, np.int8) == tensor).all()
    assert p.parse_link_down(p.build_link_down(p.LinkDownReason.UPSTREAM)) is p.LinkDownReason.UPSTREAM
    assert p.parse_error(p.build_error(7, "arena too small")) == (7, "arena too small")
    for parse, short in [(p.Hello.unpack, bytes(23)), (p.Stats.unpack, bytes(4 * p.Stats.MIN_FIELDS - 4)), (p.parse_sample_payload, bytes(3)), (p.parse_link_down, b""), (p.parse_error, b"\x01")]:
        with pytest.raises(p.FrameError) as err:
            parse(short)
        assert err.value.status is p.LinkStatus.LENGTH
    decoder = p.FrameDecoder()
    decoder.feed(b"\x01\x00" + p.Frame(p.FrameType.PING, 0, 1).encode())
    stats = p.Stats.from_decoder(decoder, samples=3)
    assert (stats.rx_frames, stats.rx_truncated, stats.samples) == (1, 1, 3)


@pytest.mark.parametrize(
    "kwargs",
    [dict(type=0), dict(type=10), dict(src=255), dict(src=-1), dict(dst=256), dict(dst=p.NODE_ANY), dict(link=256), dict(seq=1 << 16), dict(payload=bytes(p.MAX_PAYLOAD + 1))],
)
def test_encoder_rejects_illegal_fields(kwargs: dict[str, Any]) -> None:
    fields = dict(type=p.FrameType.PING, src=0, dst=1) | kwargs
    with pytest.raises(ValueError):
        p.encode_frame(p.Frame(**fields))


def test_decoder_applies_the_sequence_filter_and_counts_its_drops() -> None:
    decoder = p.FrameDecoder(local_node=2, seq_filter=p.SeqFilter())
    data = [p.Frame(p.FrameType.RESULT, 1, 2, 0, seq, p.build_sample_payload(0, b"\x01")).encode() for seq in (5, 5, 4, 6)]
    down = p.Frame(p.FrameType.LINK_DOWN, 1, 2, 0, 6, p.build_link_down(p.LinkDownReason.TIMEOUT)).encode()
    ping = p.Frame(p.FrameType.PING, 0, 2, p.LINK_NONE, 6).encode()  # not sequenced: never filtered
    got = _outcome_names(decoder.feed_outcomes(b"".join(data) + down + ping + ping))
    assert got == ["frame_ready", "duplicate", "stale", "frame_ready", "duplicate", "frame_ready", "frame_ready"]
    assert decoder.counts[p.LinkStatus.DUPLICATE] == 2 and decoder.counts[p.LinkStatus.STALE] == 1
    decoder.seq_filter.reset(src=1)
    assert _outcome_names(decoder.feed_outcomes(data[0])) == ["frame_ready"]


def test_small_decoder_capacity_drops_big_frames_as_oversize() -> None:
    decoder = p.FrameDecoder(max_payload=16)
    ok = p.Frame(p.FrameType.PING, 0, 1, payload=bytes(16)).encode()
    big = p.Frame(p.FrameType.PING, 0, 1, payload=bytes(17)).encode()
    assert _outcome_names(decoder.feed_outcomes(ok + big + b"\x07" * 100_000 + b"\x00" + ok)) == ["frame_ready", "oversize", "oversize", "frame_ready"]


def _random_frame(rng: random.Random, big: bool = False) -> bytes:
    n = rng.randint(p.MAX_PAYLOAD - 20, p.MAX_PAYLOAD) if big else rng.choice([0, 1, 5, rng.randint(0, 300)])
    payload = bytes(rng.choice([0, rng.randrange(256)]) for _ in range(n))
    ftype = rng.choice(list(p.FrameType))
    if ftype == p.FrameType.DATA:
        frame = p.Frame(ftype, p.NODE_IMPLIED, p.NODE_IMPLIED, rng.randrange(128), rng.randrange(256), payload or b"\x01")
    else:
        frame = p.Frame(ftype, rng.randint(0, p.NODE_MAX), rng.randint(0, p.NODE_BROADCAST), rng.randrange(256), rng.randrange(1 << 16), payload)
    return frame.encode()


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(0, 3)):
        op = rng.randrange(7)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            del b[pos:]
        elif op == 2:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3:
            del b[pos : pos + rng.randint(1, 8)]
        elif op == 4 and b:
            b[min(pos, len(b) - 1)] = 0
        elif op == 5:
            b[pos:pos] = _random_frame(rng)
        else:
            b[pos:pos] = bytes(rng.randrange(1, 256) for _ in range(rng.randint(1, 300)))
    return bytes(b)


def _random_streams(seed: int, count: int) -> list[tuple[int, bytes]]:
    rng = random.Random(seed)
    streams = []
    for _ in range(count):
        pieces = [_mutate(rng, _random_frame(rng, big=rng.random() < 0.03)) for _ in range(rng.randint(1, 3))]
        local = rng.choice([p.NODE_ANY, p.NODE_ANY, rng.randint(0, p.NODE_BROADCAST)])
        streams.append((local, b"".join(pieces) + b"\x00"))
    return streams


def test_python_decoder_survives_mutated_input() -> None:
    for local, data in _random_streams(seed=7, count=1500):
        decoder = p.FrameDecoder(local_node=local)
        for status, frame in decoder.feed_outcomes(data):  # must never raise
            if frame is not None:
                assert status is p.LinkStatus.FRAME_READY and len(frame.payload) <= p.MAX_PAYLOAD
                assert p.decode_frame(frame.encode(), local_node=local) == frame


# ---- Wire overhead -------------------------------------------------------------------


def test_wire_overhead_budget() -> None:
    """Worst case (every byte that can be non-zero is): a 250-byte tensor travels in
    256 bytes, 6 bytes = 2.4 % (2-byte DATA header, CRC 2, 1 COBS code byte, the
    delimiter); 2 KB tensors cost 14 bytes (0.68 %).  Control frames keep the 8-byte
    header (12 bytes at 250 B).  See docs/protocol.md, section 8."""
    worst_250 = bytes.fromhex(next(f for f in VECTORS["frames"] if f["name"] == "data_250_no_zero")["encoded_hex"])
    assert len(worst_250) - 250 == p.wire_overhead(250) == 6
    rng = random.Random(3)
    for n in (250, 2048):
        measured = []
        for _ in range(100):
            tensor = bytes(rng.randrange(1, 256) for _ in range(n))
            frame = p.Frame(p.FrameType.DATA, 1, 2, rng.randrange(0, 128), rng.randrange(1 << 16), tensor)
            measured.append(len(frame.encode()) - n)
        assert max(measured) == p.wire_overhead(n)
    assert p.wire_overhead(250) / 250 <= 0.03
    assert max(p.wire_overhead(n) / n for n in range(250, p.MAX_PAYLOAD + 1)) <= 0.03  # every tensor from 250 B up
    assert p.wire_overhead(2048) == 14
    assert p.wire_overhead(250, p.FrameType.RESULT) == 12  # long header: header 8, CRC 2, COBS 1, delimiter
    for n in (0, 250, 2048):  # the C bound LINK_ENCODED_MAX covers both forms
        raw = p.HEADER_LEN + n + p.CRC_LEN
        assert p.encoded_len_max(n, p.FrameType.RESULT) <= raw + -(-raw // 254) + 1


# ---- C codec ------------------------------------------------------------------------


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed")
    return path


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def _build(tmp: Path, program: str, extra: list[str]) -> Path:
    gcc = _need("gcc")
    exe = tmp / Path(program).stem
    result = _run([gcc, *C_WARNINGS, *extra, "-o", str(exe), str(LINK_DIR / "test" / program), *map(str, C_SOURCES)])
    assert result.returncode == 0, result.stderr
    return exe


@pytest.fixture(scope="module")
def c_vectors_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("link_c"), "test_link_vectors.c", ["-O1", "-g", *SANITIZE])


def _hex_or_dash(h: str) -> str:
    return h or "-"


def vectors_to_text(v: dict[str, Any]) -> str:
    """The JSON vectors in the line format of firmware/link/test/test_link_vectors.c."""
    lines = [f"K {name} {value}" for name, value in v["constants"].items()]
    lines += [f"C {c['name']} {_hex_or_dash(c['data_hex'])} {c['crc']}" for c in v["crc16"]]
    lines += [f"B {c['name']} {_hex_or_dash(c['raw_hex'])} {c['encoded_hex']}" for c in v["cobs"]]
    for f in v["frames"]:
        lines.append(f"F {f['name']} {int(p.FrameType[f['type']])} {f['src']} {f['dst']} {f['link']} {f['seq']} {_hex_or_dash(f['payload_hex'])} {f['encoded_hex']}")
    lines += [f"M {m['name']} {m['local_node']} {_hex_or_dash(m['bytes_hex'])} {','.join(m['expect'])} {m.get('max_payload', p.MAX_PAYLOAD)}" for m in v["malformed"]]
    for s in v["seq_filter"]:
        lines.append(f"S {s['name']} " + " ".join(f"{x['src']}:{x['link']}:{x['seq']}:{x['expect']}" for x in s["steps"]))
    lines += [f"E {e['ref']} {e['seq8']} {e['expect']}" for e in v["seq_expand"]]
    h, st, sm = v["payloads"]["hello"], v["payloads"]["stats"], v["payloads"]["sample"]
    lines.append(f"H {h['model_hash_hex']} {' '.join(map(str, h['fw_version']))} {h['flash_bytes']} {h['arena_bytes']} {h['cpu_hz']} {h['cycle_counter']} {h['payload_hex']}")
    lines.append(f"T {st['payload_hex']} {' '.join(map(str, st['values']))}")
    lines.append(f"Y {sm['cycles']} {sm['tensor_hex']} {sm['payload_hex']}")
    return "\n".join(lines) + "\n"


def test_c_codec_matches_the_vectors(c_vectors_program: Path, tmp_path: Path) -> None:
    text = tmp_path / "vectors.txt"
    text.write_text(vectors_to_text(VECTORS))
    result = _run([str(c_vectors_program), str(text)], timeout=60)
    assert result.returncode == 0, result.stderr
    v = VECTORS
    assert result.stdout.strip() == (
        f"ok constants={len(v['constants'])} crc={len(v['crc16'])} cobs={len(v['cobs'])} frames={len(v['frames'])} "
        f"streams={len(v['malformed'])} seq={len(v['seq_filter'])} expand={len(v['seq_expand'])} payloads=3"
    )


def test_c_and_python_decoders_agree_on_mutated_streams(c_vectors_program: Path, tmp_path: Path) -> None:
    """Differential test: the C decoder must reach the Python decoder's verdicts."""
    lines = [f"K {name} {value}" for name, value in VECTORS["constants"].items()]
    for i, (local, data) in enumerate(_random_streams(seed=11, count=1500)):
        expect = _outcome_names(p.FrameDecoder(local_node=local).feed_outcomes(data))
        lines.append(f"M random_{i} {local} {data.hex()} {','.join(expect)} {p.MAX_PAYLOAD}")
    text = tmp_path / "differential.txt"
    text.write_text("\n".join(lines) + "\n")
    result = _run([str(c_vectors_program), str(text)], timeout=60)
    assert result.returncode == 0, "\n".join(result.stderr.splitlines()[:20])
    assert "streams=1500" in result.stdout


def test_c_decoder_fuzz_under_sanitizers(tmp_path: Path) -> None:
    exe = _build(tmp_path, "fuzz_link_decoder.c", ["-O1", "-g", *SANITIZE])
    result = _run([str(exe), str(FUZZ_SEED), str(FUZZ_ITERATIONS)], timeout=300, env={**os.environ, "ASAN_OPTIONS": "abort_on_error=0"})
    assert result.returncode == 0, result.stderr[-4000:]
    assert "runtime error" not in result.stderr and "Sanitizer" not in result.stderr
    counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", result.stdout)}
    print(f"\nfuzz (seed {FUZZ_SEED}): {result.stdout.strip()}")
    assert counts["iterations"] == FUZZ_ITERATIONS
    # Every kind of drop was reached, and so were good frames.
    for reason in ("frame_ready", "truncated", "oversize", "crc", "version", "type", "length", "dest"):
        assert counts[reason] > 0, reason


def test_c_codec_builds_freestanding_for_cortex_m4(tmp_path: Path) -> None:
    gcc = _need("arm-none-eabi-gcc")
    size_tool, nm = _need("arm-none-eabi-size"), _need("arm-none-eabi-nm")
    objects = []
    for src in C_SOURCES:
        obj = tmp_path / (src.stem + ".o")
        result = _run([gcc, "-mcpu=cortex-m4", "-mthumb", "-O2", "-ffreestanding", *C_WARNINGS, "-c", str(src), "-o", str(obj)])
        assert result.returncode == 0, result.stderr
        objects.append(str(obj))
    sizes = _run([size_tool, "-t", *objects]).stdout.splitlines()
    text, data, bss = (int(x) for x in sizes[-1].split()[:3])
    print(f"\nCortex-M4 -O2: text={text} data={data} bss={bss} bytes")
    assert data == 0 and bss == 0, "the codec must keep no state of its own"
    assert text < 4096
    undefined = {line.split()[-1] for line in _run([nm, "-u", *objects]).stdout.splitlines() if line.strip() and not line.endswith(":")}
    own = {line.split()[-1] for line in _run([nm, "--defined-only", "-g", *objects]).stdout.splitlines() if line.strip() and not line.endswith(":")}
    assert undefined - own <= {"memcpy", "memset", "memmove", "memcmp"}


def test_node_ids_are_whole_bytes() -> None:
    """Version 3: boards 1..254 (15 and more), 255 = broadcast; ANY and IMPLIED are no wire values."""
    from host.deploy.firmware import BOARD_ID_MAX

    assert p.NODE_MAX == BOARD_ID_MAX == 254 and p.NODE_BROADCAST == 255
    assert {p.NODE_ANY, p.NODE_IMPLIED}.isdisjoint(range(256)) and p.NODE_ANY != p.NODE_IMPLIED
    for src, dst in [(15, 0), (0, 15), (200, 254), (254, p.NODE_BROADCAST)]:
        frame = p.Frame(p.FrameType.LINK_DOWN, src, dst, 3, 0x0102, b"\x01")
        raw = p.cobs_decode(frame.encode()[:-1])
        assert raw[1:3] == bytes([src, dst])  # one byte each, in this order
        assert p.decode_frame(frame.encode()) == frame
    for_200 = p.Frame(p.FrameType.RESET, 0, 200, p.LINK_NONE, 0).encode()
    assert p.decode_frame(for_200, local_node=200).dst == 200
    with pytest.raises(p.FrameError):
        p.decode_frame(for_200, local_node=8)  # 200 & 0x0F: an old 4-bit decoder would have taken it
