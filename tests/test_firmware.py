"""The bare-metal node runtime on both emulated boards (QEMU netduinoplus2 = qemu_f405,
mps2-an386 = qemu_an386), driven over its UART with host/net/protocol.py; plus builds for the
real Nucleo boards, the fit check and the launcher.

The node images run tests/firmware_testmodel (exact Python model in tests/firmware_support.py)
under two configurations: PLAIN (two zero-point-filled inputs) and MUX (a ResiliNet mux of
a primary and a fallback link, plus a plain input; the node sends RESULT)."""
from __future__ import annotations

import os
import random
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from host.net import protocol as p
from boards import board_names, load_board
from host.deploy.firmware import (FirmwareFitError, Input, LinkIn, build_node, memory_ld, render_node_config,
                                 toolchain_available, write_node_config)
from codegen.emulator import EmulatedBoard, launch, qemu_available, qemu_command

from firmware_support import (AVERAGE, BYTES, CONFIGS, DEADLINE_MS, EXAMPLE_CONFIG, HOST, MODEL_HASH, MUX, PLAIN,
                              STANDBY,
                              TESTMODEL_SOURCES, ZP_IN1, NodeClient, data, expected_counts, link_down, model,
                              sample_frames, stats_delta, stats_drops, tensor)

REPO = Path(__file__).resolve().parents[1]
EMULATED = ["qemu_f405", "qemu_an386"]
REAL = ["nucleo_f446re", "nucleo_l476rg", "nucleo_h743zi"]

needs_gcc = pytest.mark.skipif(not toolchain_available(),
                               reason="arm-none-eabi-gcc not installed (apt-get install gcc-arm-none-eabi "
                                      "libnewlib-arm-none-eabi)")
needs_qemu = pytest.mark.skipif(not (toolchain_available() and qemu_available()),
                                reason="arm-none-eabi-gcc or qemu-system-arm not installed "
                                       "(apt-get install --no-install-recommends qemu-system-arm)")

DATA_T, RESULT_T, DOWN_T = int(p.FrameType.DATA), int(p.FrameType.RESULT), int(p.FrameType.LINK_DOWN)


# ---- Images ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fw_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("firmware")


def _build(fw_dir: Path, board: str, cfg_name: str, variant: str = "", **kwargs):
    cfg = CONFIGS[cfg_name]
    header = write_node_config(cfg, fw_dir / "configs" / cfg_name / "node_config.h")
    return build_node(board, header, TESTMODEL_SOURCES, fw_dir / f"{cfg_name}-{board}{variant}", node_name=cfg_name,
                      werror=True, **kwargs)


@pytest.fixture(scope="session")
def images(fw_dir):
    if not toolchain_available():
        pytest.skip("arm-none-eabi-gcc not installed")
    return {(b, c): _build(fw_dir, b, c) for b in EMULATED for c in CONFIGS}


@pytest.fixture(scope="module", params=EMULATED)
def board_name(request) -> str:
    return request.param


class Running:
    """A booted node: its QEMU, its client, and the boot HELLO it sent."""

    def __init__(self, board: str, image, cfg) -> None:
        self.board, self.image, self.cfg = board, image, cfg
        t0 = time.monotonic()
        self.qemu = launch(board, image.elf)
        self.client = NodeClient(self.qemu.connect(), cfg.node_id)
        self.boot_frame = self.client.wait_for(lambda f: f.type == p.FrameType.HELLO, 10, "boot HELLO")
        self.boot_seconds = time.monotonic() - t0
        self.seq = 100

    def next_seq(self, step: int = 1) -> int:
        self.seq += step
        return self.seq

    def close(self) -> None:
        self.qemu.close()


@pytest.fixture(scope="module")
def plain_node(board_name, images):
    if not qemu_available():
        pytest.skip("qemu-system-arm not installed")
    node = Running(board_name, images[(board_name, "plain")], PLAIN)
    yield node
    node.close()


@pytest.fixture(scope="module")
def mux_node(board_name, images):
    if not qemu_available():
        pytest.skip("qemu-system-arm not installed")
    node = Running(board_name, images[(board_name, "mux")], MUX)
    yield node
    node.close()


@pytest.fixture
def plain(plain_node) -> Running:
    plain_node.client.reset(plain_node.seq)
    return plain_node


@pytest.fixture
def mux(mux_node) -> Running:
    mux_node.client.reset(mux_node.seq)
    return mux_node


def _send_plain(node: Running, seq: int, a: bytes | None, b: bytes | None, skip: tuple[int, ...] = ()) -> None:
    parts = {(HOST, 1): a, (HOST, 2): b}
    node.client.send(*(f for f in sample_frames(seq, PLAIN.node_id, parts) if f.link not in skip))


def _check_plain_outputs(out: dict, a: bytes | None, b: bytes | None) -> None:
    o0, o1 = model(a, b)
    assert set(out) == {(DATA_T, 5), (DATA_T, 6)}
    f5, f6 = out[(DATA_T, 5)], out[(DATA_T, 6)]
    assert (f5.src, f5.dst, f6.src, f6.dst) == (p.NODE_IMPLIED,) * 4  # DATA: the link names its ends
    assert f5.payload == o0 and f6.payload == o1


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- Boot, HELLO, PING, STATS -------------------------------------------------------------


@needs_qemu
def test_boot_hello(plain_node) -> None:
    hello_frame = plain_node.boot_frame
    assert (hello_frame.src, hello_frame.dst, hello_frame.link) == (PLAIN.node_id, HOST, p.LINK_NONE)
    hello = p.Hello.unpack(hello_frame.payload)
    board = load_board(plain_node.board)
    assert hello.model_hash == MODEL_HASH
    assert hello.fw_version == (0, 1, 0)
    assert hello.flash_bytes == plain_node.image.flash_bytes
    assert hello.arena_bytes == PLAIN.arena_bytes
    assert hello.cpu_hz == board.clock_hz
    # which counter its cycle counts come from: SysTick (QEMU does not count DWT->CYCCNT)
    assert len(hello_frame.payload) == p.Hello.SIZE and hello.cycle_counter is p.CycleCounter.SYSTICK
    assert plain_node.boot_seconds < 5
    # an explicit request is answered with the request's seq
    reply = plain_node.client.request(p.FrameType.HELLO, 0x1234)
    assert p.Hello.unpack(reply.payload) == hello
    assert (reply.src, reply.dst) == (PLAIN.node_id, HOST)


@needs_qemu
def test_idle_node_uses_no_cpu(plain) -> None:
    """wfi with the tick stopped: an idle emulated board costs no host CPU."""
    plain.client.collect(0.2)
    cpu0 = _cpu_seconds(plain.qemu.pid)
    time.sleep(1.0)
    assert _cpu_seconds(plain.qemu.pid) - cpu0 < 0.05


@needs_qemu
def test_ping_pong(plain) -> None:
    rng = random.Random(7)
    for n, seq in ((0, 0), (1, 1), (7, 0xFFFF), (300, 42), (p.MAX_PAYLOAD, 43)):
        payload = bytes(rng.randrange(256) for _ in range(n))
        pong = plain.client.request(p.FrameType.PING, seq, payload)
        assert pong.payload == payload and (pong.src, pong.dst) == (PLAIN.node_id, HOST)


@needs_qemu
def test_stats_count_frames_and_samples(plain) -> None:
    c = plain.client
    s0 = c.stats(1)
    c.request(p.FrameType.PING, 2, b"x")
    seq = plain.next_seq()
    rng = np.random.default_rng(1)
    _send_plain(plain, seq, tensor(rng), tensor(rng))
    c.outputs(seq, 2)
    s1 = c.stats(3)
    d = stats_delta(s1, s0)
    # PING, 2 DATA, STATS request; PONG, STATS reply 1, 2 DATA
    assert d["rx_frames"] == 4 and d["tx_frames"] == 4
    assert d["samples"] == 1 and d["input_timeouts"] == 0
    assert all(v == 0 for v in stats_drops(p.Stats(**d)).values())
    assert s1.rx_overrun == 0


# ---- Samples: all inputs, LINK_DOWN, deadline, mux -------------------------------------------


@needs_qemu
def test_sample_with_both_inputs(plain) -> None:
    rng = np.random.default_rng(2)
    for _ in range(5):
        seq = plain.next_seq()
        a, b = tensor(rng), tensor(rng)
        _send_plain(plain, seq, a, b)
        _check_plain_outputs(plain.client.outputs(seq, 2), a, b)
    # saturation both ways
    seq = plain.next_seq()
    a, b = bytes([127] * 8 + [128] * 8), bytes([127] * 8 + [128] * 8)
    _send_plain(plain, seq, a, b)
    _check_plain_outputs(plain.client.outputs(seq, 2), a, b)


@needs_qemu
def test_samples_pipelined_out_of_order(plain) -> None:
    """Three samples in flight (the node's slots).  Each link's frames come in order (a
    link is one sequence stream: an older seq after a newer one is STALE), the links not."""
    rng = np.random.default_rng(3)
    seqs = [plain.next_seq() for _ in range(3)]
    ins = {s: (tensor(rng), tensor(rng)) for s in seqs}
    c = plain.client
    c.send(*(data(HOST, 2, 2, s, ins[s][1]) for s in seqs))
    assert c.collect(0.05) == []
    c.send(*(data(HOST, 2, 1, s, ins[s][0]) for s in seqs))
    for s in seqs:
        _check_plain_outputs(c.outputs(s, 2, timeout=DEADLINE_MS / 1000 * 0.8), *ins[s])


@needs_qemu
def test_link_down_fills_zero_point(plain) -> None:
    rng = np.random.default_rng(4)
    seq = plain.next_seq()
    a = tensor(rng)
    _send_plain(plain, seq, a, None)  # link 2 LINK_DOWN
    out = plain.client.outputs(seq, 2, timeout=DEADLINE_MS / 1000 * 0.8)  # no waiting for a deadline
    _check_plain_outputs(out, a, None)
    assert model(a, None)[0] == model(a, bytes([ZP_IN1 & 0xFF] * BYTES))[0]
    seq = plain.next_seq()
    b = tensor(rng)
    _send_plain(plain, seq, None, b)  # link 1 down: input 0 filled, out1 = its reversal
    _check_plain_outputs(plain.client.outputs(seq, 2), None, b)


@needs_qemu
def test_all_inputs_down_sends_link_down(plain) -> None:
    seq = plain.next_seq()
    s0 = plain.client.stats()
    _send_plain(plain, seq, None, None)
    out = plain.client.outputs(seq, 2)
    assert set(out) == {(DOWN_T, 5), (DOWN_T, 6)}
    assert out[(DOWN_T, 5)].dst == 3 and out[(DOWN_T, 6)].dst == 4
    assert all(p.parse_link_down(f.payload) == p.LinkDownReason.UPSTREAM for f in out.values())
    d = stats_delta(plain.client.stats(), s0)
    assert d["samples"] == 0 and d["samples_down"] == 1   # counted, and reported in STATS


@needs_qemu
def test_deadline_expiry(plain) -> None:
    rng = np.random.default_rng(5)
    c = plain.client
    s0 = c.stats()
    seq = plain.next_seq()
    a = tensor(rng)
    t0 = time.monotonic()
    _send_plain(plain, seq, a, None, skip=(2,))  # link 2 never comes
    out = c.outputs(seq, 2, timeout=5)
    waited = time.monotonic() - t0
    _check_plain_outputs(out, a, None)
    assert waited >= DEADLINE_MS / 1000 * 0.8, waited
    d = stats_delta(c.stats(), s0)
    assert d["input_timeouts"] == 1 and d["samples"] == 1
    # the missing input arriving late changes nothing but the late_inputs counter of STATS
    c.send(data(HOST, 2, 2, seq, tensor(rng)))
    assert [f for f in c.collect(0.3) if f.type in p.SEQUENCED_TYPES] == []
    assert stats_delta(c.stats(), s0)["late_inputs"] == 1


@needs_qemu
def test_full_slots_compute_the_oldest_early(plain) -> None:
    """With all 3 slots waiting, a 4th sample forces the oldest out (computed with a fill)."""
    rng = np.random.default_rng(6)
    c = plain.client
    s0 = c.stats()
    seqs = [plain.next_seq() for _ in range(4)]
    ins = {s: tensor(rng) for s in seqs}
    c.send(*(data(HOST, 2, 1, s, ins[s]) for s in seqs[:3]))
    assert c.collect(0.05) == []
    t0 = time.monotonic()
    c.send(data(HOST, 2, 1, seqs[3], ins[seqs[3]]))
    _check_plain_outputs(c.outputs(seqs[0], 2, timeout=DEADLINE_MS / 1000 * 0.8), ins[seqs[0]], None)
    assert time.monotonic() - t0 < DEADLINE_MS / 1000
    for s in seqs[1:]:  # the others at their deadline
        _check_plain_outputs(c.outputs(s, 2), ins[s], None)
    assert stats_delta(c.stats(), s0)["evictions"] == 1   # the one computed early, as STATS reports


@needs_qemu
def test_duplicate_and_stale_frames_are_dropped(plain) -> None:
    rng = np.random.default_rng(8)
    c = plain.client
    s0 = c.stats()
    done = plain.next_seq(5)
    _send_plain(plain, done, tensor(rng), tensor(rng))
    c.outputs(done, 2)
    seq = plain.next_seq()
    a, b = tensor(rng), tensor(rng)
    c.send(data(HOST, 2, 1, seq, a), data(HOST, 2, 1, seq, tensor(rng)),  # duplicate (other bytes)
           data(HOST, 2, 1, done, tensor(rng)),                            # stale: that sample is done
           data(HOST, 2, 2, seq, b))
    _check_plain_outputs(c.outputs(seq, 2), a, b)
    d = stats_delta(c.stats(), s0)
    assert d["rx_duplicate"] == 1 and d["rx_stale"] == 1 and d["samples"] == 2


@needs_qemu
def test_overtaken_input_is_taken_not_dropped_as_stale(plain) -> None:
    """A producer that waited for a deadline sends sample k after k+1 on the same link: while k is
    still open at the consumer, the input counts (the filter alone would call it stale)."""
    rng = np.random.default_rng(18)
    c = plain.client
    s0 = c.stats()
    k = plain.next_seq()
    k1 = plain.next_seq()
    ak, bk, a1, b1 = (tensor(rng) for _ in range(4))
    c.send(data(HOST, 2, 2, k, bk))                          # k waits for link 1
    _send_plain(plain, k1, a1, b1)                            # k+1 complete: computed first
    _check_plain_outputs(c.outputs(k1, 2), a1, b1)
    c.send(data(HOST, 2, 1, k, ak))                           # link 1's k comes after its k+1
    _check_plain_outputs(c.outputs(k, 2), ak, bk)             # with both inputs, before any deadline
    d = stats_delta(c.stats(), s0)
    assert d["rx_stale"] == 0 and d["samples"] == 2 and d["input_timeouts"] == 0


@needs_qemu
def test_reset_drops_pending_samples(plain) -> None:
    rng = np.random.default_rng(9)
    c = plain.client
    seq = plain.next_seq()
    c.send(data(HOST, 2, 1, seq, tensor(rng)))
    hello = c.reset(seq)
    assert hello.model_hash == MODEL_HASH
    # the pending sample is gone: nothing at its deadline
    assert [f for f in c.collect(DEADLINE_MS / 1000 + 0.2) if f.type in p.SEQUENCED_TYPES] == []
    # and the sequence filters are cleared: the same seq is accepted again
    a, b = tensor(rng), tensor(rng)
    _send_plain(plain, seq, a, b)
    _check_plain_outputs(c.outputs(seq, 2), a, b)


@needs_qemu
def test_errors_for_unknown_link_and_bad_tensor(plain) -> None:
    c = plain.client
    s0 = c.stats(1)
    seq = plain.next_seq()
    c.send(data(HOST, 2, 9, seq, bytes(BYTES)))  # no such link
    err = c.wait_for(lambda f: f.type == p.FrameType.ERROR, what="ERROR")
    code, text = p.parse_error(err.payload)
    assert code == 0x0102 and text.endswith(f" 9 {p.NODE_IMPLIED}"), text  # a DATA frame names no source
    c.send(data(HOST, 2, 1, seq, bytes(BYTES - 1)))  # 15 bytes instead of 16
    code, text = p.parse_error(c.wait_for(lambda f: f.type == p.FrameType.ERROR, what="ERROR").payload)
    assert code == 0x0103 and text.endswith(" 1 15 16"), text
    c.send(link_down(1, 2, 1, seq))  # right link id, wrong producer (LINK_DOWN names its source)
    code, text = p.parse_error(c.wait_for(lambda f: f.type == p.FrameType.ERROR, what="ERROR").payload)
    assert code == 0x0102 and text.endswith(" 1 1"), text
    # and STATS carries the runtime's counters of both
    d = stats_delta(c.stats(2), s0)
    assert (d["unknown_links"], d["bad_tensors"], d["invoke_errors"], d["tx_errors"]) == (2, 1, 0, 0), d


@needs_qemu
def test_mux_primary_then_fallback(mux) -> None:
    rng = np.random.default_rng(10)
    c = mux.client
    n = MUX.node_id

    def check(out, a, b):
        o0, o1 = model(a, b)
        assert set(out) == {(RESULT_T, p.LINK_NONE), (DATA_T, 7)}
        res, d7 = out[(RESULT_T, p.LINK_NONE)], out[(DATA_T, 7)]
        assert (res.dst, d7.dst) == (HOST, p.NODE_IMPLIED)
        assert p.parse_sample_payload(res.payload)[1] == o0
        assert d7.payload == o1

    # primary present: used, without waiting for the fallback
    seq = mux.next_seq()
    a, b = tensor(rng), tensor(rng)
    c.send(data(1, n, 1, seq, a), data(HOST, n, 2, seq, b))
    check(c.outputs(seq, 2, timeout=DEADLINE_MS / 1000 * 0.8), a, b)
    # primary and fallback present: primary wins
    seq = mux.next_seq()
    a, skip, b = tensor(rng), tensor(rng), tensor(rng)
    c.send(data(4, n, 3, seq, skip), data(1, n, 1, seq, a), data(HOST, n, 2, seq, b))
    check(c.outputs(seq, 2), a, b)
    # primary down: fallback used
    seq = mux.next_seq()
    c.send(link_down(1, n, 1, seq), data(4, n, 3, seq, skip), data(HOST, n, 2, seq, b))
    check(c.outputs(seq, 2), skip, b)
    # primary missing (deadline), fallback present: fallback used after the deadline
    seq = mux.next_seq()
    s0 = c.stats()
    t0 = time.monotonic()
    c.send(data(4, n, 3, seq, skip), data(HOST, n, 2, seq, b))
    check(c.outputs(seq, 2), skip, b)
    assert time.monotonic() - t0 >= DEADLINE_MS / 1000 * 0.8
    assert stats_delta(c.stats(), s0)["input_timeouts"] == 1
    # plain input down: zero-point fill next to the mux
    seq = mux.next_seq()
    c.send(data(1, n, 1, seq, a), link_down(HOST, n, 2, seq))
    check(c.outputs(seq, 2), a, None)


@needs_qemu
def test_mux_without_data_is_zero_and_a_node_without_any_input_sends_link_down(mux) -> None:
    """The host reference's rule (host.ml.split.run_split): a mux whose links all failed is the real
    value 0 like any missing input; a node that got nothing at all produces nothing."""
    rng = np.random.default_rng(11)
    c = mux.client
    n = MUX.node_id
    s0 = c.stats()
    # both mux links down, the plain input came: computed with the mux input at its zero point
    seq = mux.next_seq()
    b = tensor(rng)
    c.send(data(HOST, n, 2, seq, b), link_down(1, n, 1, seq), link_down(4, n, 3, seq))
    out = c.outputs(seq, 2, timeout=DEADLINE_MS / 1000 * 0.8)
    o0, o1 = model(None, b)
    assert p.parse_sample_payload(out[(RESULT_T, p.LINK_NONE)].payload)[1] == o0
    assert out[(DATA_T, 7)].payload == o1
    # every link down: no output, LINK_DOWN on every outgoing link, without waiting
    seq = mux.next_seq()
    c.send(link_down(1, n, 1, seq), link_down(4, n, 3, seq), link_down(HOST, n, 2, seq))
    out = c.outputs(seq, 2, timeout=DEADLINE_MS / 1000 * 0.8)
    assert set(out) == {(DOWN_T, p.LINK_NONE), (DOWN_T, 7)}
    assert out[(DOWN_T, p.LINK_NONE)].dst == HOST and out[(DOWN_T, 7)].dst == 6
    assert all(p.parse_link_down(f.payload) == p.LinkDownReason.UPSTREAM for f in out.values())
    # neither mux link arrives at all: computed at the deadline with the zero-point fill
    seq = mux.next_seq()
    c.send(data(HOST, n, 2, seq, b))
    out = c.outputs(seq, 2)
    assert p.parse_sample_payload(out[(RESULT_T, p.LINK_NONE)].payload)[1] == o0
    d = stats_delta(c.stats(), s0)
    assert d["samples"] == 2 and d["input_timeouts"] == 2


@needs_qemu
def test_standby_skip_is_read_only_when_the_link_from_below_is_missing(board_name, images) -> None:
    node = Running(board_name, images[(board_name, "standby")], STANDBY)
    try:
        rng = np.random.default_rng(12)
        c, n = node.client, STANDBY.node_id

        def result(seq):
            out = c.outputs(seq, 2)
            return p.parse_sample_payload(out[(RESULT_T, p.LINK_NONE)].payload)[1]

        below, skip0, skip1 = tensor(rng), tensor(rng), tensor(rng)
        seq = node.next_seq()   # below arrived: the standby skip is 0 even though it came
        c.send(data(6, n, 2, seq, skip1), data(4, n, 3, seq, skip0), data(1, n, 1, seq, below))
        assert result(seq) == model(below, None)[0]
        seq = node.next_seq()   # below lost: both skips
        c.send(link_down(1, n, 1, seq), data(4, n, 3, seq, skip0), data(6, n, 2, seq, skip1))
        assert result(seq) == model(skip0, skip1)[0]
        seq = node.next_seq()   # below and the second skip lost: the first skip and 0
        c.send(link_down(1, n, 1, seq), data(4, n, 3, seq, skip0), link_down(6, n, 2, seq))
        assert result(seq) == model(skip0, None)[0]
    finally:
        node.close()


@needs_qemu
def test_average_of_the_replicas_that_came(board_name, images) -> None:
    """A distillation aggregator's part: the mean of the replica codes that arrived, rounded half away
    from zero exactly as the host reference (host.ml.split.average_replicas); zero point if none came."""
    from host.ml.split import average_replicas

    node = Running(board_name, images[(board_name, "average")], AVERAGE)
    try:
        rng = np.random.default_rng(13)
        c, n = node.client, AVERAGE.node_id

        def result(seq):
            out = c.outputs(seq, 2)
            return p.parse_sample_payload(out[(RESULT_T, p.LINK_NONE)].payload)[1]

        def mean(*ts):
            return average_replicas([np.frombuffer(t, np.int8)[None] for t in ts])[0].tobytes()

        r1, r3, r4, d = tensor(rng), tensor(rng), tensor(rng), tensor(rng)
        # odd and even sums of both signs, so that halves are rounded both ways
        r1 = bytes(np.array([-3, -2, 3, 2, -128, 127, 1, -1] * 2, np.int8).tobytes())
        r3 = bytes(np.array([0, 1, 0, -1, -127, 126, 0, 0] * 2, np.int8).tobytes())
        seq = node.next_seq()   # all three replicas
        c.send(data(4, n, 3, seq, r3), data(HOST, n, 2, seq, d), data(6, n, 4, seq, r4), data(1, n, 1, seq, r1))
        assert result(seq) == model(mean(r1, r3, r4), d)[0]
        seq = node.next_seq()   # two replicas (halves), the third lost
        c.send(data(1, n, 1, seq, r1), link_down(6, n, 4, seq), data(4, n, 3, seq, r3), data(HOST, n, 2, seq, d))
        assert result(seq) == model(mean(r1, r3), d)[0]
        assert mean(r1, r3)[:8] == np.array([-2, -1, 2, 1, -128, 127, 1, -1], np.int8).tobytes()
        seq = node.next_seq()   # one replica: itself
        c.send(link_down(1, n, 1, seq), link_down(4, n, 3, seq), data(6, n, 4, seq, r4), data(HOST, n, 2, seq, d))
        assert result(seq) == model(r4, d)[0]
        seq = node.next_seq()   # none: the zero point, like any missing input
        c.send(link_down(1, n, 1, seq), link_down(4, n, 3, seq), link_down(6, n, 4, seq), data(HOST, n, 2, seq, d))
        assert result(seq) == model(None, d)[0]
        seq = node.next_seq()   # a replica that never comes: computed at the deadline without it
        c.send(data(1, n, 1, seq, r1), data(4, n, 3, seq, r3), data(HOST, n, 2, seq, d))
        assert result(seq) == model(mean(r1, r3), d)[0]
    finally:
        node.close()


# ---- Robustness ---------------------------------------------------------------------------


def _junk(seed: int, node_id: int) -> bytes:
    """A few KB of random bytes plus damaged frames of every kind the decoder rejects."""
    rng = random.Random(seed)
    good = p.Frame(p.FrameType.PING, HOST, node_id, seq=1, payload=b"junk").encode()
    v = p.PROTOCOL_VERSION
    raw = p._pack_header(v, p.FrameType.PING, HOST, node_id, p.LINK_NONE, 1, 2) + b"ok"
    parts = [bytes(rng.randrange(256) for _ in range(3000)), b"\x00"]
    bad_crc = bytearray(good)
    bad_crc[5] ^= 0x10
    parts += [bytes(bad_crc),                                                       # CRC
              p._encode_raw(p._pack_header(v - 1, 6, HOST, node_id, 255, 1, 2) + b"ok"),  # VERSION
              p._encode_raw(p._pack_header(v, 12, HOST, node_id, 255, 1, 2) + b"ok"),  # TYPE
              p._encode_raw(raw[:5] + b"\x05\x00" + b"ok"),                          # LENGTH
              p.Frame(p.FrameType.PING, HOST, node_id + 1, seq=1).encode(),          # DEST
              good[:6] + b"\x00",                                                   # TRUNCATED
              b"\x01" * 2500 + b"\x00",                                             # OVERSIZE
              bytes(rng.randrange(1, 256) for _ in range(1000))]
    return b"".join(parts) + b"\x00"


@needs_qemu
def test_garbage_on_the_uart(plain) -> None:
    c = plain.client
    junk = _junk(20240611, PLAIN.node_id)
    want = expected_counts(junk, PLAIN.node_id)
    assert want[p.LinkStatus.FRAME_READY] == 0
    s0 = c.stats()
    for piece in (junk[i:i + 512] for i in range(0, len(junk), 512)):
        c.send_raw(piece)
    pong = c.request(p.FrameType.PING, 99, b"still alive")
    assert pong.payload == b"still alive"
    s1 = c.stats()
    d = stats_delta(s1, s0)
    for status in p.DROP_REASONS:
        assert d[f"rx_{status.name.lower()}"] == want[status], status
    assert sum(stats_drops(p.Stats(**d)).values()) >= 7
    assert d["rx_frames"] == 2 and d["rx_overrun"] == 0  # PING + STATS request
    # and it still computes
    rng = np.random.default_rng(12)
    seq = plain.next_seq()
    a, b = tensor(rng), tensor(rng)
    _send_plain(plain, seq, a, b)
    _check_plain_outputs(c.outputs(seq, 2), a, b)


@needs_qemu
def test_full_receive_ring_holds_bytes_back(board_name, fw_dir) -> None:
    """A 64-byte RX ring and a long inference: the bytes that arrive meanwhile fill the
    ring, the driver masks its interrupt and the emulated UART holds the rest back (no
    byte lost, no overrun), and everything is answered once the node is free again."""
    image = _build(fw_dir, board_name, "plain", "-smallring",
                   defines={"BOARD_UART_RX_RING": "64u", "TESTMODEL_WORK": 3_000_000})
    rng = np.random.default_rng(15)
    a, b = tensor(rng), tensor(rng)
    with EmulatedBoard(board_name, image.elf) as qemu:
        c = NodeClient(qemu.connect(), PLAIN.node_id)
        c.wait_for(lambda f: f.type == p.FrameType.HELLO, 10, "boot HELLO")
        pings = [bytes(rng.integers(0, 256, 700, dtype=np.uint8)) for _ in range(6)]
        c.send(data(HOST, 2, 1, 1, a), data(HOST, 2, 2, 1, b),
               *(p.Frame(p.FrameType.PING, HOST, 2, seq=10 + i, payload=x) for i, x in enumerate(pings)))
        _check_plain_outputs(c.outputs(1, 2, timeout=20), a, b)
        for i, x in enumerate(pings):
            assert c.wait_for(lambda f, s=10 + i: f.type == p.FrameType.PONG and f.seq == s, 10).payload == x
        s = c.stats()
        assert s.rx_overrun == 0 and sum(stats_drops(s).values()) == 0 and s.rx_frames == 9


@needs_qemu
def test_fault_is_reported_and_the_board_stops(board_name, fw_dir) -> None:
    image = _build(fw_dir, board_name, "plain", "-fault", defines={"TESTMODEL_FAULT": None})
    with EmulatedBoard(board_name, image.elf) as qemu:
        c = NodeClient(qemu.connect(), PLAIN.node_id)
        c.wait_for(lambda f: f.type == p.FrameType.HELLO, 10, "boot HELLO")
        c.send(data(HOST, 2, 1, 1, b"\x55" * BYTES), data(HOST, 2, 2, 1, bytes(BYTES)))
        err = c.wait_for(lambda f: f.type == p.FrameType.ERROR, 10, "ERROR")
        code, text = p.parse_error(err.payload)
        assert (err.src, code) == (PLAIN.node_id, 0xFA02) and text.startswith("hard fault at pc "), text
        nm = subprocess.run(["arm-none-eabi-nm", str(image.elf)], capture_output=True, text=True).stdout
        invoke = int(re.search(r"^([0-9a-f]+) T testmodel_invoke$", nm, re.M).group(1), 16)
        assert 0 <= int(text.rsplit(" ", 1)[1]) - invoke < 256  # the pc is inside the model
        # stopped: no more answers, and no CPU burnt
        c.send(p.Frame(p.FrameType.PING, HOST, 2, seq=1))
        assert c.collect(0.3) == []
        assert qemu.is_running()
        cpu0 = _cpu_seconds(qemu.pid)
        time.sleep(1.0)
        assert _cpu_seconds(qemu.pid) - cpu0 < 0.1


@needs_qemu
def test_rejected_config_is_reported(fw_dir) -> None:
    """A node_config.h that the runtime rejects (link 2 feeds nothing): ERROR at boot, still
    answers HELLO/PING/STATS, and DATA gets an ERROR instead of a computation."""
    bad = render_node_config(PLAIN).replace("{NODE_INPUT_LINK, 1, {1}, 16}", "{NODE_INPUT_LINK, 1, {0}, 16}")
    assert bad != render_node_config(PLAIN)
    header = fw_dir / "configs" / "bad" / "node_config.h"
    header.parent.mkdir(parents=True, exist_ok=True)
    header.write_text(bad)
    image = build_node("qemu_an386", header, TESTMODEL_SOURCES, fw_dir / "bad-qemu_an386", werror=True)
    with EmulatedBoard("qemu_an386", image.elf) as qemu:
        c = NodeClient(qemu.connect(), PLAIN.node_id)
        first, second = c.take(2, 10)
        assert first.type == p.FrameType.ERROR and p.parse_error(first.payload)[0] == 0x0101
        assert second.type == p.FrameType.HELLO
        assert c.request(p.FrameType.PING, 3, b"?").payload == b"?"
        c.send(data(HOST, 2, 1, 4, bytes(BYTES)))
        err = c.wait_for(lambda f: f.type == p.FrameType.ERROR, what="ERROR")
        assert p.parse_error(err.payload)[0] == 0x0101 and err.seq == 4
        assert c.stats().samples == 0


def test_node_config_is_checked_in_python() -> None:
    import dataclasses
    with pytest.raises(ValueError, match="exactly one input"):
        dataclasses.replace(PLAIN, inputs=[Input([1])])
    with pytest.raises(ValueError, match="share size and zero point"):
        dataclasses.replace(MUX, links_in=[LinkIn(1, 1, 16, -3), LinkIn(3, 4, 16, 0), LinkIn(2, 0, 16, 5)])
    with pytest.raises(ValueError, match="mux"):
        dataclasses.replace(PLAIN, inputs=[Input([1, 2])])


# ---- Cycle counts, restart ------------------------------------------------------------------


@needs_qemu
def test_cycle_count_is_repeatable(board_name, images) -> None:
    """Same sample → same cycle count: twice in one boot, and again after a fresh boot."""
    image = images[(board_name, "plain")]
    rng = np.random.default_rng(13)
    a, b = tensor(rng), tensor(rng)
    counts = []
    with EmulatedBoard(board_name, image.elf) as qemu:
        for boot in range(2):
            if boot:
                qemu.restart()
            c = NodeClient(qemu.connect(), PLAIN.node_id)
            c.wait_for(lambda f: f.type == p.FrameType.HELLO, 10, "boot HELLO")
            before = c.stats()
            for seq in (1, 2, 3):
                if seq < 3:
                    c.send(data(HOST, 2, 1, seq, a), data(HOST, 2, 2, seq, b))
                    _check_plain_outputs(c.outputs(seq, 2), a, b)
                else:
                    c.send(data(HOST, 2, 1, 3, a), link_down(HOST, 2, 2, 3))
                    _check_plain_outputs(c.outputs(3, 2), a, None)
                after = c.stats(0x100 + seq)  # STATS carries the cycles (DATA frames do not)
                assert after.samples - before.samples == 1
                counts.append(after.cycles - before.cycles)
                before = after
            assert before.cycles_max == max(counts[-3:])
    assert counts[:3] == counts[3:], counts
    assert counts[0] == counts[1]
    # SysTick cycles under -icount shift=0: 1 instruction = 1 ns, so cycles * 1e9 / clock
    # is the instruction count; testmodel's busy loop alone is 200000 x 3 instructions.
    instructions = counts[0] * 1e9 / load_board(board_name).clock_hz
    assert 5e5 < instructions < 1.5e6, (counts, instructions)


@needs_qemu
def test_restart_on_a_fixed_port(board_name, images) -> None:
    image = images[(board_name, "plain")]
    qemu = EmulatedBoard(board_name, image.elf)
    try:
        qemu.start()
        port = qemu.port
        for _ in range(2):
            c = NodeClient(qemu.connect(), PLAIN.node_id)
            c.wait_for(lambda f: f.type == p.FrameType.HELLO, 10, "boot HELLO")
            assert c.request(p.FrameType.PING, 5, b"up").payload == b"up"
            pid = qemu.pid
            qemu.stop()
            assert not qemu.is_running() and not Path(f"/proc/{pid}").exists()
            qemu.fixed_port = port
            qemu.start()
            assert qemu.port == port
    finally:
        qemu.close()
    assert not qemu.is_running()


@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")
def test_runtime_under_sanitizers_on_the_host(tmp_path) -> None:
    """node_runtime.c on the PC under ASan + UBSan, fed a seeded random mix of good,
    wrong and damaged frames and deadline expiries (tests/firmware_host_harness.c)."""
    exe = tmp_path / "harness"
    fw = REPO / "firmware"
    subprocess.run(["gcc", "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", f"-I{fw / 'link'}", f"-I{fw / 'runtime'}",
                    str(REPO / "tests" / "firmware_host_harness.c"), str(fw / "runtime" / "node_runtime.c"),
                    str(fw / "runtime" / "aggregate.c"), str(fw / "runtime" / "link_pack.c"),
                    *map(str, sorted((fw / "link").glob("*.c"))), "-o", str(exe)], check=True)
    for seed in (1, 2, 3):
        res = subprocess.run([str(exe), str(seed), "150000"], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-3000:]
        counts = dict(kv.split("=") for kv in res.stdout.split())
        for key in ("samples", "down", "timeouts", "evictions", "late", "unknown", "bad_tensors"):
            assert int(counts[key]) > 0, (key, res.stdout)  # every path was taken


@needs_qemu
def test_connect_keeps_what_arrives_while_opening(images, monkeypatch) -> None:
    """pyserial's socket open() discards bytes that arrived during the open; the guest starts
    when the connection is accepted, so a slow open lost the boot HELLO.  launch's open_uart
    keeps them: here the open is slowed down on purpose."""
    import serial.urlhandler.protocol_socket as ps

    real = ps.socket.create_connection

    def slow_connect(*args, **kwargs):
        sock = real(*args, **kwargs)
        time.sleep(0.3)  # the guest boots and sends its HELLO meanwhile
        return sock

    monkeypatch.setattr(ps.socket, "create_connection", slow_connect)
    with launch("qemu_an386", images[("qemu_an386", "plain")].elf) as qemu:
        c = NodeClient(qemu.connect(), PLAIN.node_id)
        c.wait_for(lambda f: f.type == p.FrameType.HELLO, 5, "boot HELLO")


# ---- Builds without QEMU ----------------------------------------------------------------------


@needs_gcc
@pytest.mark.parametrize("board", EMULATED + REAL)
def test_image_builds_for_every_board(board, fw_dir) -> None:
    """Every board builds warning-free; its UART interrupt vector is the UART handler."""
    image = _build(fw_dir, board, "plain")
    assert image.flash_bytes < 16 * 1024 and image.ram_bytes < 24 * 1024
    nm = subprocess.run(["arm-none-eabi-nm", str(image.elf)], capture_output=True, text=True, check=True).stdout
    sym = {m.group(2): int(m.group(1), 16) for m in re.finditer(r"^([0-9a-f]+) \w (\S+)$", nm, re.M)}
    irq = load_board(board).uart.irq
    table = image.bin.read_bytes()[: (16 + irq + 1) * 4]
    vector = struct.unpack_from("<I", table, (16 + irq) * 4)[0]
    assert vector & ~1 == sym["board_uart_irq_handler"]
    assert struct.unpack_from("<I", table, 4)[0] & ~1 == sym["Reset_Handler"]
    ram = load_board(board).ram
    assert struct.unpack_from("<I", table, 0)[0] == ram.base + ram.size  # initial SP


@needs_gcc
def test_fit_check_names_node_board_and_numbers(fw_dir) -> None:
    with pytest.raises(FirmwareFitError) as err:
        _build(fw_dir, "qemu_f405", "plain", "-fat", defines={"TESTMODEL_BLOAT_FLASH": 600_000})
    msg = str(err.value)
    assert "'plain'" in msg and "'qemu_f405'" in msg and "flash" in msg and "524,288" in msg
    assert err.value.flash_used > 600_000
    with pytest.raises(FirmwareFitError) as err:
        _build(fw_dir, "qemu_f405", "plain", "-fat", defines={"TESTMODEL_BLOAT_RAM": 130_000})
    assert "RAM" in str(err.value) and "131,072" in str(err.value)
    assert err.value.ram_used > 130_000
    with pytest.raises(FirmwareFitError):  # the stack counts too
        _build(fw_dir, "nucleo_l476rg", "plain", "-fat", stack_bytes=96 * 1024)


def test_example_config_is_what_the_emitter_writes() -> None:
    assert EXAMPLE_CONFIG.read_text() == render_node_config(PLAIN), "regenerate node_config_example.h"


@pytest.mark.parametrize("board", board_names())
def test_board_files_match_the_board_table(board) -> None:
    """board_config.h agrees with boards/<board>/board.toml; memory.ld and board_clock.h (baud, clock tree:
    tests/test_clock_trees.py) are generated from the TOML."""
    b = load_board(board)
    d = REPO / "boards" / board
    assert f"ORIGIN = 0x{b.flash.base:08X}, LENGTH = {b.flash.size}" in memory_ld(b)
    assert not (d / "memory.ld").exists() and not (REPO / "firmware" / "boards").exists()
    cfg = (d / "board_config.h").read_text()
    macro = lambda name: int(re.search(rf"#define {name} (0x[0-9A-Fa-f]+|\d+)u?", cfg).group(1), 0)
    assert macro("BOARD_UART_BASE") == b.uart.base
    assert macro("BOARD_UART_IRQ") == b.uart.irq
    assert "#define BOARD_UART_BAUD" not in cfg  # one place: uart.baud in the TOML
    if b.emulated:
        assert macro("BOARD_CPU_HZ") == b.clock_hz
    else:  # the clock comes from the [clock] tree, not from hand-written macros
        assert b.clock is not None and "#define BOARD_CPU_HZ" not in cfg


def test_qemu_command_line() -> None:
    cmd = qemu_command(load_board("qemu_f405"), Path("/x/node.elf"), 4321)
    assert cmd[:3] == ["qemu-system-arm", "-M", "netduinoplus2"]
    i = cmd.index("-serial")
    assert cmd[i:i + 4] == ["-serial", "null", "-serial", "tcp:127.0.0.1:4321,server=on,wait=on,nodelay=on"]
    assert "shift=0" in cmd and "-monitor" in cmd
    cmd = qemu_command(load_board("qemu_an386"), Path("/x/node.elf"), 4321)
    assert cmd[cmd.index("-serial") + 1].startswith("tcp:")


@needs_qemu
def test_nucleo_f446re_image_runs_on_the_emulated_f4(fw_dir) -> None:
    """The real Nucleo-F446RE image (RCC/GPIO set-up, USART2, DWT probe) boots on QEMU's
    netduinoplus2, whose USART2 is the same: a smoke test of the real-board code path."""
    image = _build(fw_dir, "nucleo_f446re", "plain")
    with EmulatedBoard("qemu_f405", image.elf) as qemu:
        c = NodeClient(qemu.connect(), PLAIN.node_id)
        hello = p.Hello.unpack(c.wait_for(lambda f: f.type == p.FrameType.HELLO, 10, "boot HELLO").payload)
        assert hello.cpu_hz == 16_000_000 and hello.flash_bytes == image.flash_bytes
        rng = np.random.default_rng(14)
        a, b = tensor(rng), tensor(rng)
        c.send(data(HOST, 2, 1, 1, a), data(HOST, 2, 2, 1, b))
        _check_plain_outputs(c.outputs(1, 2), a, b)  # cycles > 0: DWT reads 0 in QEMU, SysTick used


@needs_qemu
def test_reset_names_the_newest_sample_for_one_byte_sequence_numbers(plain) -> None:
    """A DATA frame carries the low byte of its sample number; the node expands it around the newest sample
    it knows. After 300 samples it never heard of, DATA and the host's LINK_DOWN (full number) of one sample
    land in two different samples, which both wait for their deadline. A RESET naming the newest sample
    (what the host sends at the start of every run) puts the node back in step."""
    rng = np.random.default_rng(19)
    c = plain.client
    a = tensor(rng)
    s0 = c.stats()
    k = plain.next_seq(300)
    c.send(data(HOST, 2, 1, k, a), link_down(HOST, 2, 2, k))
    late = c.collect(DEADLINE_MS / 1000 * 2.5)
    d = stats_delta(c.stats(), s0)
    # out of step: two half samples, each computed at its deadline (the one with no DATA sends LINK_DOWN)
    assert d["input_timeouts"] == 2 and d["samples"] == 1, d
    assert sorted(f.type.name for f in late if f.type in p.SEQUENCED_TYPES) == ["DATA", "DATA", "LINK_DOWN", "LINK_DOWN"]
    c.reset(plain.seq)
    s1 = c.stats()
    k = plain.next_seq(300)
    c.reset(k - 1)
    c.send(data(HOST, 2, 1, k, a), link_down(HOST, 2, 2, k))
    _check_plain_outputs(c.outputs(k, 2, timeout=DEADLINE_MS / 1000 * 0.8), a, None)  # at once, no deadline
    d = stats_delta(c.stats(), s1)
    assert d["input_timeouts"] == 0 and d["samples"] == 1, d
