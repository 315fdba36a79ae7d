"""Clock trees as board data: every real board's ``[clock]`` table against its reference manual's limits, the
UART baud error, the generated ``board_clock.h``, the loader's checks, and the fallback the firmware takes when
the clock tree does not come up (QEMU's netduinoplus2 has no RCC model: the Nucleo-F446RE image must stay on
its 16 MHz HSI, say so in HELLO, and keep SysTick and the UART divisor consistent with that clock).

Limits (all at VDD 2.7-3.6 V), from the reference manuals (by section/table title, which outlive revisions) and
the datasheets they defer to for maximum frequencies:
  F446 -- RM0390: "RCC PLL configuration register" (VCO input 1-2 MHz, VCO output 100-432 MHz, PLL48CLK <= 48
          MHz), "Number of wait states according to CPU clock (HCLK) frequency" (30 MHz per wait state), "Entering
          Over-drive mode"; DS10693 general operating conditions (HCLK <= 180 MHz with over-drive, 168 without,
          scale 2: 168/144, scale 3: 120; APB1 <= 45 MHz (42 without over-drive), APB2 <= 90 MHz (84)).
  L476 -- RM0351: "PLL" (input 4-16 MHz, VCO output 64-344 MHz, outputs <= 80 MHz), "Dynamic voltage scaling
          management" (range 1 up to 80 MHz, range 2 up to 26 MHz), "Number of wait states according to CPU
          clock (HCLK) frequency" (16 MHz per wait state in range 1, 6 MHz in range 2); APB1/APB2 <= 80 MHz.
  H743 -- RM0433: "PLL" (input ranges 1-2/2-4/4-8/8-16 MHz; wide VCO: input >= 2 MHz, output 192-836 MHz;
          medium VCO: input 1-2 MHz, output 150-420 MHz), Table 17 "FLASH recommended number of wait states and
          programming delay" (per AXI clock and VOS); DS12110 rev Y maxima (sys_ck <= 400 MHz at VOS1, 300 VOS2,
          200 VOS3; HCLK <= 200/150/100 MHz; APB1-4 <= 100/75/50 MHz).
"""
from __future__ import annotations

import json
import math
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

import boards
from boards import BoardError, ClockError, ClockTree, board_names, load_board
from boards.clock import clock_tree_from
from codegen import toolchain as tc
from codegen.emulator import EmulatedBoard
from firmware_support import HOST, PLAIN, TESTMODEL_SOURCES, NodeClient, data, model, tensor
from host.deploy.firmware import build_node, write_node_config
from host.net import protocol as p

MHZ = 1_000_000
REAL = [n for n in board_names() if not load_board(n).emulated]
BAUD_ERROR_MAX = 0.02
#: STM32 USART (F4, "v1"): BRR at offset 0x08 (RM0390 25.6.3); SysTick reload value register (ARMv7-M B3.3).
USART_V1_BRR = 0x08
SYST_RVR = 0xE000E014
NM = "arm-none-eabi-nm"


@dataclass(frozen=True)
class Limits:
    """One family's electrical limits at one voltage setting (MHz unless named otherwise)."""
    vco_in: tuple[float, float]
    vco_out: tuple[float, float]
    sysclk_max: float
    hclk_max: float
    apb_max: tuple[float, ...]   # APB1, APB2 (, APB3, APB4)
    ws_step: tuple[float, ...]   # the HCLK bound of 0, 1, 2, ... wait states


def f4_limits(c: ClockTree) -> Limits:
    """RM0390 / DS10693: HCLK 180 needs scale 1 + over-drive; APB bounds follow over-drive."""
    sysclk = {1: 180 if c.overdrive else 168, 2: 168 if c.overdrive else 144, 3: 120}[c.voltage_scale]
    return Limits((1, 2), (100, 432), sysclk, sysclk, (45, 90) if c.overdrive else (42, 84),
                  tuple(30 * (k + 1) for k in range(9)))


def l4_limits(c: ClockTree) -> Limits:
    """RM0351: range 1 up to 80 MHz (16 MHz per wait state), range 2 up to 26 MHz (6 MHz per wait state)."""
    if c.voltage_scale == 1:
        return Limits((4, 16), (64, 344), 80, 80, (80, 80), (16, 32, 48, 64, 80))
    return Limits((4, 16), (64, 344), 26, 26, (26, 26), (6, 12, 18, 26))


#: RM0433 table 17: AXI clock bound of 0, 1, 2, ... wait states per VOS, and the WRHIGHFREQ it needs.
H7_WAIT_STATES = {1: (70, 140, 210, 225), 2: (55, 110, 165, 225), 3: (45, 90, 135, 180, 225)}
H7_WRITE_DELAY = {1: ((70, 0), (185, 1), (225, 2)), 2: ((55, 0), (165, 1), (225, 2)), 3: ((45, 0), (135, 1), (225, 2))}
H7_INPUT_RANGE_MHZ = {"1-2": (1, 2), "2-4": (2, 4), "4-8": (4, 8), "8-16": (8, 16)}


def h7_limits(c: ClockTree) -> Limits:
    """RM0433 / DS12110 rev Y (VOS0 and 480 MHz are rev V only, not used)."""
    vco = c.pll.vco or "wide"
    vco_in = (2, 16) if vco == "wide" else (1, 2)
    vco_out = (192, 836) if vco == "wide" else (150, 420)
    sysclk, hclk, apb = {1: (400, 200, 100), 2: (300, 150, 75), 3: (200, 100, 50)}[c.voltage_scale]
    return Limits(vco_in, vco_out, sysclk, hclk, (apb,) * 4, H7_WAIT_STATES[c.voltage_scale])


LIMITS = {"stm32f4": f4_limits, "stm32l4": l4_limits, "stm32h7": h7_limits}


def brr(clock_hz: int, baud: int) -> int:
    """The USART divisor the firmware writes (oversampling by 16, rounded: uart_stm32_usart_v*.c)."""
    return (clock_hz + baud // 2) // baud


def baud_error(clock_hz: int, baud: int) -> float:
    return abs(clock_hz / brr(clock_hz, baud) - baud) / baud


# ---- The trees against the reference manuals -------------------------------------------------------


@pytest.mark.parametrize("name", REAL)
def test_every_real_board_has_a_clock_tree_giving_its_clock(name: str) -> None:
    b = load_board(name)
    assert b.clock is not None, f"{name}: a real board needs a [clock] table"
    assert b.clock.cpu_hz == b.clock_hz
    assert {"nucleo_f446re": 180, "nucleo_l476rg": 80, "nucleo_h743zi": 400}.get(name, b.clock_hz / MHZ) \
        == b.clock_hz / MHZ


@pytest.mark.parametrize("name", REAL)
def test_clock_tree_within_the_reference_manual_limits(name: str) -> None:
    c = load_board(name).clock
    lim = LIMITS[c.family](c)
    vco_in, vco = c.vco_in_hz / MHZ, c.vco_hz / MHZ
    assert lim.vco_in[0] <= vco_in <= lim.vco_in[1], f"VCO input {vco_in} MHz"
    assert lim.vco_out[0] <= vco <= lim.vco_out[1], f"VCO output {vco} MHz"
    assert c.sysclk_hz / MHZ <= lim.sysclk_max
    assert c.cpu_hz / MHZ <= lim.sysclk_max
    assert c.hclk_hz / MHZ <= lim.hclk_max
    for bus in range(1, len(c.apb_divs) + 1):
        assert c.apb_hz(bus) / MHZ <= lim.apb_max[bus - 1], f"APB{bus} at {c.apb_hz(bus) / MHZ} MHz"
    needed = next(ws for ws, top in enumerate(lim.ws_step) if c.hclk_hz / MHZ <= top)
    assert c.flash_wait_states >= needed, f"{c.flash_wait_states} wait states at HCLK {c.hclk_hz / MHZ} MHz"
    for out in "pqr":  # no PLL output above what any of its consumers may take
        assert c.pll_out_hz(out) / MHZ <= lim.sysclk_max


def test_family_specific_limits() -> None:
    """What one family alone has: F4 over-drive and PLL48CLK, H7 input range and write delay."""
    for name in REAL:
        c = load_board(name).clock
        if c.family == "stm32f4":
            assert c.pll_out_hz("q") <= 48 * MHZ
            assert c.sysclk_hz <= 168 * MHZ or (c.overdrive and c.voltage_scale == 1)
        if c.family == "stm32h7":
            lo, hi = H7_INPUT_RANGE_MHZ[c.pll.input_range]
            assert lo <= c.vco_in_hz / MHZ <= hi, f"PLL1 input {c.vco_in_hz / MHZ} MHz outside {c.pll.input_range}"
            delay = next(d for top, d in H7_WRITE_DELAY[c.voltage_scale] if c.hclk_hz / MHZ <= top)
            assert c.flash_write_delay >= delay


def test_limits_catch_a_bad_tree() -> None:
    """The checks above are not vacuous: an F446 tree with the VCO at 450 MHz or APB1 at 90 MHz fails them."""
    c = load_board("nucleo_f446re").clock
    fast_vco = replace(c, pll=replace(c.pll, n=225))
    assert fast_vco.vco_hz / MHZ > f4_limits(fast_vco).vco_out[1]
    fast_apb1 = replace(c, apb_divs=(2, 2))
    assert fast_apb1.apb_hz(1) / MHZ > f4_limits(fast_apb1).apb_max[0]


@pytest.mark.parametrize("name", board_names())
def test_baud_error_under_two_percent(name: str) -> None:
    """At the clock the UART really gets: the tree's APB clock, or an emulated board's fixed clock."""
    b = load_board(name)
    if b.clock is not None:
        clock_hz = b.clock.uart_hz
    else:
        cfg = (b.directory / "board_config.h").read_text()
        clock_hz = int(re.search(r"#define BOARD_UART_PCLK_HZ (\d+)u", cfg).group(1))
    assert brr(clock_hz, b.uart.baud) >= 16  # oversampling by 16 needs USARTDIV >= 1
    assert baud_error(clock_hz, b.uart.baud) < BAUD_ERROR_MAX, f"{name}: {baud_error(clock_hz, b.uart.baud):.2%}"


@pytest.mark.parametrize("name", REAL)
def test_real_boards_run_the_vcp_above_115200(name: str) -> None:
    """The ST-LINK VCP runs well above 115200, and its own UART (an STM32F103's, clocked at 72 or 36 MHz)
    makes the rate within 0.5 % too."""
    b = load_board(name)
    assert b.uart.baud > 115200
    for vcp_clock in (72 * MHZ, 36 * MHZ):
        assert baud_error(vcp_clock, b.uart.baud) < 0.005


def test_fallback_baud_where_the_reset_clock_can_reach_it() -> None:
    """After a fallback the UART runs from the reset oscillator; where that can give the baud at all (USARTDIV >= 16)
    it must be within 2 % (the L476's 4 MHz MSI cannot reach 460800: it is documented in docs/boards.md)."""
    reachable = [load_board(n) for n in REAL if brr(load_board(n).clock.reset_hz, load_board(n).uart.baud) >= 16]
    assert reachable
    for b in reachable:
        assert baud_error(b.clock.reset_hz, b.uart.baud) < BAUD_ERROR_MAX, b.name


# ---- The generated header and the loader -----------------------------------------------------------


def macros(text: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"#define (\w+) (\d+)u?\b", text)}


@pytest.mark.parametrize("name", board_names())
def test_generated_header_is_the_toml(name: str) -> None:
    b = load_board(name)
    d = tc.board_include_dirs(b)[-1]
    text = (d / "board_clock.h").read_text()
    assert text == tc.board_clock_h(b)
    m = macros(text)
    assert m["BOARD_UART_BAUD"] == b.uart.baud
    if b.clock is None:
        assert "BOARD_CLOCK_TREE" not in m
        return
    c = b.clock
    assert m[f"BOARD_CLOCK_{c.family.upper()}"] == 1 and m["BOARD_CLOCK_TREE"] == 1
    assert (m["BOARD_CLOCK_CPU_HZ"], m["BOARD_CLOCK_UART_HZ"], m["BOARD_CLOCK_RESET_HZ"]) == \
        (b.clock_hz, c.uart_hz, c.reset_hz)
    assert [m[f"BOARD_CLOCK_PLL_{k}"] for k in "MNPQR"] == [c.pll.m, c.pll.n, c.pll.p, c.pll.q, c.pll.r]
    # prescaler codes: /1 is 0, /2 is 8 (AHB) or 4 (APB), each further factor of two one more
    assert m["BOARD_CLOCK_HPRE"] == (0 if c.ahb_div == 1 else 7 + int(math.log2(c.ahb_div)))
    for i, div in enumerate(c.apb_divs, 1):
        assert m[f"BOARD_CLOCK_PPRE{i}"] == (0 if div == 1 else 3 + int(math.log2(div)))


def _board_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, edit) -> Path:
    """boards/<name> copied into a board table of its own, its TOML edited by ``edit(text) -> text``."""
    d = tmp_path / name
    shutil.copytree(load_board(name).directory, d)
    toml = d / "board.toml"
    toml.write_text(edit(toml.read_text()))
    monkeypatch.setattr(boards, "BOARD_DIR", tmp_path)
    return toml


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("n = 180,", "n = 999,"), "pll.n = 999: the register holds 50..432"),
    (lambda t: t.replace("p = 2,", "p = 3,"), "pll.p = 3: the register holds 2, 4, 6, 8"),
    (lambda t: t.replace("n = 180,", "n = 168,"), "clock_hz = 180000000 but the [clock] tree gives 168000000 Hz"),
    (lambda t: t.replace('source = "HSI"', 'source = "MSI"'), "source = 'MSI'"),
    (lambda t: t.replace("apb1 = 4", "apb1 = 3"), "apb_div.apb1 = 3"),
    (lambda t: t.replace('kind = "real"', 'kind = "emulated"'), "an emulated board has no [clock] table"),
])
def test_loader_rejects_a_tree_the_firmware_cannot_program(tmp_path, monkeypatch, edit, message) -> None:
    toml = _board_copy(tmp_path, monkeypatch, "nucleo_f446re", edit)
    with pytest.raises(BoardError) as err:
        load_board("nucleo_f446re")
    assert message in str(err.value) and str(toml) in str(err.value)


def test_clock_tree_reader_names_a_missing_key() -> None:
    raw = {"family": "stm32l4", "reset_source": "MSI", "reset_hz": 4 * MHZ, "source": "HSI", "source_hz": 16 * MHZ,
           "pll": {"m": 2, "n": 20, "p": 7, "q": 4, "r": 2}, "flash_wait_states": 4, "voltage_scale": 1,
           "ahb_div": 1, "apb_div": {"apb1": 1, "apb2": 1}, "uart_bus": 1}
    assert clock_tree_from(raw).cpu_hz == 80 * MHZ
    with pytest.raises(ClockError, match="overdrive exists on stm32f4 only"):
        clock_tree_from({**raw, "overdrive": True})
    with pytest.raises(KeyError):
        clock_tree_from({k: v for k, v in raw.items() if k != "source_hz"})


# ---- The firmware: every real board builds; the fallback under QEMU ---------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("clock-fw")
    header = write_node_config(PLAIN, out / "cfg" / "node_config.h")
    return {b: build_node(b, header, TESTMODEL_SOURCES, out / b, node_name="plain", werror=True)
            for b in [*REAL, "qemu_f405"]}


@pytest.mark.parametrize("name", REAL)
def test_every_real_board_builds_its_clock_code(images, name: str) -> None:
    """-Werror builds of each family's clock_<family>.c from the generated header (the H7/L4 code runs on no
    emulator: this is what checks that it compiles)."""
    objs = sorted((images[name].elf.parent / "obj").glob("clock_*.o"))
    defining = [o.name.split("-")[0] for o in objs
                if " T board_clock_init" in subprocess.run([NM, str(o)], capture_output=True, text=True).stdout]
    assert defining == [f"clock_{load_board(name).clock.family}"]  # the family's file, and no other


def _qmp_words(sock: Path, addresses: list[int]) -> list[int]:
    """32-bit words read through the CPU's view of memory (QEMU's `x` monitor command over QMP)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        f = s.makefile("rw")
        json.loads(f.readline())  # greeting

        def call(cmd: dict) -> dict:
            f.write(json.dumps(cmd) + "\n")
            f.flush()
            while True:
                reply = json.loads(f.readline())
                if "return" in reply or "error" in reply:
                    return reply

        call({"execute": "qmp_capabilities"})
        words = []
        for a in addresses:
            text = call({"execute": "human-monitor-command", "arguments": {"command-line": f"x /1wx {a:#x}"}})["return"]
            words.append(int(text.split(":")[1].strip(), 16))
        return words


def _boot_and_check(image, board: str, tmp_path: Path, expected_hz: int, uart_hz: int) -> None:
    """Boot ``image`` on emulated ``board``: HELLO reports ``expected_hz``; SysTick's reload and the USART's
    divisor are those of that clock (and ``uart_hz``); a sample comes back computed."""
    sock = tmp_path / "qmp.sock"
    with EmulatedBoard(board, image.elf, extra_args=["-qmp", f"unix:{sock},server=on,wait=off"]) as qemu:
        c = NodeClient(qemu.connect(), PLAIN.node_id)
        hello = p.Hello.unpack(c.wait_for(lambda f: f.type == p.FrameType.HELLO, 15, "boot HELLO").payload)
        assert hello.cpu_hz == expected_hz
        rvr, brr_reg = _qmp_words(sock, [SYST_RVR, load_board(board).uart.base + USART_V1_BRR])
        assert rvr + 1 == hello.cpu_hz // 100  # BOARD_TICK_HZ = 100: a 10 ms tick at the clock it reports
        assert brr_reg == brr(uart_hz, load_board(image.board).uart.baud)
        rng = np.random.default_rng(16)
        a, b = tensor(rng), tensor(rng)
        c.send(data(HOST, 2, 1, 1, a), data(HOST, 2, 2, 1, b))
        out = c.outputs(1, 2)
        out0, out1 = model(a, b)  # PLAIN: output 0 as DATA on link 5, output 1 on link 6
        assert (out[(int(p.FrameType.DATA), 5)].payload, out[(int(p.FrameType.DATA), 6)].payload) == (out0, out1)


def test_nucleo_f446re_image_falls_back_to_its_reset_clock_under_qemu(images, tmp_path) -> None:
    """QEMU's netduinoplus2 (the F446RE's USART2 at the same address) has no RCC model: every ready flag reads 0.
    The bounded waits give up, the core stays on the 16 MHz HSI, HELLO says 16 MHz (not 180), SysTick and the
    UART divisor are computed from 16 MHz, and the node works."""
    clock = load_board("nucleo_f446re").clock
    assert clock.reset_hz != clock.cpu_hz
    _boot_and_check(images["nucleo_f446re"], "qemu_f405", tmp_path, clock.reset_hz, clock.reset_hz)


def test_emulated_board_divisors_match_its_fixed_clock(images, tmp_path) -> None:
    """A board without a clock tree reports its fixed clock, and its divisors are that clock's."""
    cfg = (load_board("qemu_f405").directory / "board_config.h").read_text()
    uart_hz = int(re.search(r"#define BOARD_UART_PCLK_HZ (\d+)u", cfg).group(1))
    _boot_and_check(images["qemu_f405"], "qemu_f405", tmp_path, load_board("qemu_f405").clock_hz, uart_hz)
