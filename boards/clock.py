"""The clock tree of a real board (the ``[clock]`` table of its ``board.toml``) as typed records.

A Nucleo starts on its reset oscillator (F4: HSI 16 MHz, L4: MSI 4 MHz, H7: HSI 64 MHz); the firmware
(``firmware/bsp/clock_stm32*.c``) then sets the PLL, flash wait states, voltage scaling and bus prescalers
from these numbers (``codegen/toolchain.py`` turns them into the generated ``board_clock.h``). Emulated boards
have no clock tree: the emulator's clock is fixed.

This reader checks what the registers can hold (a factor outside its field would be silently truncated by
the C code) and that the tree gives the board's ``clock_hz``. The electrical limits of each chip (VCO ranges,
bus maxima, wait states per frequency) are checked against the reference manuals by tests/test_clock_trees.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Clock sources a family's PLL takes, by the name the reference manuals use.
SOURCES = {"stm32f4": ("HSI", "HSE"), "stm32l4": ("MSI", "HSI", "HSE"), "stm32h7": ("HSI", "HSE")}
#: Values each PLL factor's register field can encode (RCC_PLLCFGR of RM0390 and RM0351; RCC_PLLCKSELR and
#: RCC_PLL1DIVR of RM0433).
PLL_FIELDS: dict[str, dict[str, tuple[int, ...]]] = {
    "stm32f4": {"m": tuple(range(2, 64)), "n": tuple(range(50, 433)), "p": (2, 4, 6, 8),
                "q": tuple(range(2, 16)), "r": tuple(range(2, 8))},
    "stm32l4": {"m": tuple(range(1, 9)), "n": tuple(range(8, 87)), "p": (7, 17), "q": (2, 4, 6, 8),
                "r": (2, 4, 6, 8)},
    # H7 PLL1: DIVP1 takes even values only (odd ones are reserved for PLL1)
    "stm32h7": {"m": tuple(range(1, 64)), "n": tuple(range(4, 513)), "p": tuple(range(2, 129, 2)),
                "q": tuple(range(1, 129)), "r": tuple(range(1, 129))},
}
#: The PLL output that becomes SYSCLK: P on F4/H7, R on L4.
SYSCLK_OUTPUT = {"stm32f4": "p", "stm32l4": "r", "stm32h7": "p"}
#: H7 PLL input ranges (PLL1RGE, 0..3) in MHz and its two VCOs (PLL1VCOSEL 0 = wide, 1 = medium).
H7_INPUT_RANGES = ("1-2", "2-4", "4-8", "8-16")
H7_VCOS = ("wide", "medium")
#: Prescaler values and their register codes: AHB-type (HPRE, H7 D1CPRE), APB-type (PPRE*).
AHB_CODES = {1: 0, 2: 8, 4: 9, 8: 10, 16: 11, 64: 12, 128: 13, 256: 14, 512: 15}
APB_CODES = {1: 0, 2: 4, 4: 5, 8: 6, 16: 7}
#: Voltage settings of each family: F4 scale 1..3, L4 range 1..2, H7 VOS1..3 (VOS0 is H7 rev V only).
VOLTAGE_SCALES = {"stm32f4": (1, 2, 3), "stm32l4": (1, 2), "stm32h7": (1, 2, 3)}
#: APB buses of each family (H7: APB3 = D1PPRE, APB1/2 = D2PPRE1/2, APB4 = D3PPRE).
APB_BUSES = {"stm32f4": (1, 2), "stm32l4": (1, 2), "stm32h7": (1, 2, 3, 4)}


class ClockError(ValueError):
    """A ``[clock]`` table that the firmware could not program as written."""


@dataclass(frozen=True)
class Pll:
    """The main PLL: VCO = source / m * n; outputs VCO / p, / q, / r (H7: PLL1 with its input range and VCO)."""
    m: int
    n: int
    p: int
    q: int
    r: int
    input_range: str | None = None   # H7 only: "1-2" | "2-4" | "4-8" | "8-16" (MHz)
    vco: str | None = None           # H7 only: "wide" | "medium"


@dataclass(frozen=True)
class ClockTree:
    family: str                  # "stm32f4" | "stm32l4" | "stm32h7": which firmware/bsp/clock_*.c programs it
    reset_source: str            # the oscillator the chip starts on (and falls back to)
    reset_hz: int
    source: str                  # the PLL's input oscillator
    source_hz: int
    pll: Pll
    flash_wait_states: int
    voltage_scale: int           # F4 scale 1..3, L4 range 1..2, H7 VOS 1..3
    hse_bypass: bool = False     # HSE from an external clock (the ST-LINK's MCO), not a crystal
    overdrive: bool = False      # F4 over-drive (needed above 168 MHz)
    flash_write_delay: int = 0   # H7 WRHIGHFREQ
    cpu_div: int = 1             # H7 D1CPRE (sys_ck -> core); the F4/L4 core runs at HCLK
    ahb_div: int = 1
    apb_divs: tuple[int, ...] = (1, 1)   # APB1, APB2 (, APB3, APB4 on H7)
    uart_bus: int = 1            # the APB bus whose clock drives the node UART

    @property
    def vco_in_hz(self) -> float:
        return self.source_hz / self.pll.m

    @property
    def vco_hz(self) -> float:
        return self.vco_in_hz * self.pll.n

    def pll_out_hz(self, output: str) -> float:
        """The PLL's output ``"p"``, ``"q"`` or ``"r"`` in Hz."""
        return self.vco_hz / getattr(self.pll, output)

    @property
    def sysclk_hz(self) -> int:
        return round(self.pll_out_hz(SYSCLK_OUTPUT[self.family]))

    @property
    def cpu_hz(self) -> int:
        """The core clock (what SysTick and DWT count): H7 sys_ck / D1CPRE, F4/L4 HCLK."""
        return self.sysclk_hz // self.cpu_div if self.family == "stm32h7" else self.hclk_hz

    @property
    def hclk_hz(self) -> int:
        base = self.sysclk_hz // self.cpu_div if self.family == "stm32h7" else self.sysclk_hz
        return base // self.ahb_div

    def apb_hz(self, bus: int) -> int:
        return self.hclk_hz // self.apb_divs[APB_BUSES[self.family].index(bus)]

    @property
    def uart_hz(self) -> int:
        """The node UART's kernel clock at full speed (after reset every prescaler is /1: reset_hz)."""
        return self.apb_hz(self.uart_bus)


def _field(raw: dict[str, Any], key: str, allowed: tuple[Any, ...], what: str) -> Any:
    value = raw[key]
    if value not in allowed:
        shown = f"{allowed[0]}..{allowed[-1]}" if len(allowed) > 8 else ", ".join(map(str, allowed))
        raise ClockError(f"[clock] {what} = {value!r}: the register holds {shown}")
    return value


def _pll_from(raw: dict[str, Any], family: str) -> Pll:
    fields = PLL_FIELDS[family]
    values = {k: int(_field(raw, k, fields[k], f"pll.{k}")) for k in ("m", "n", "p", "q", "r")}
    if family == "stm32h7":
        return Pll(**values, input_range=_field(raw, "input_range", H7_INPUT_RANGES, "pll.input_range"),
                   vco=_field(raw, "vco", H7_VCOS, "pll.vco"))
    return Pll(**values)


def clock_tree_from(raw: dict[str, Any]) -> ClockTree:
    """The ``[clock]`` table of a board.toml; :class:`ClockError` (or ``KeyError``) names what is wrong."""
    family = _field(raw, "family", tuple(SOURCES), "family")
    buses = APB_BUSES[family]
    apb = raw["apb_div"]
    tree = ClockTree(
        family=family, reset_source=str(raw["reset_source"]), reset_hz=int(raw["reset_hz"]),
        source=_field(raw, "source", SOURCES[family], "source"), source_hz=int(raw["source_hz"]),
        pll=_pll_from(raw["pll"], family), flash_wait_states=int(_field(raw, "flash_wait_states", tuple(range(16)),
                                                                        "flash_wait_states")),
        voltage_scale=int(_field(raw, "voltage_scale", VOLTAGE_SCALES[family], "voltage_scale")),
        hse_bypass=bool(raw.get("hse_bypass", False)), overdrive=bool(raw.get("overdrive", False)),
        flash_write_delay=int(_field(raw, "flash_write_delay", (0, 1, 2, 3), "flash_write_delay")
                              if "flash_write_delay" in raw else 0),
        cpu_div=int(_field(raw, "cpu_div", tuple(AHB_CODES), "cpu_div") if "cpu_div" in raw else 1),
        ahb_div=int(_field(raw, "ahb_div", tuple(AHB_CODES), "ahb_div")),
        apb_divs=tuple(int(_field(apb, f"apb{b}", tuple(APB_CODES), f"apb_div.apb{b}")) for b in buses),
        uart_bus=int(_field(raw, "uart_bus", buses, "uart_bus")))
    if tree.reset_source not in (*SOURCES[family], "MSI"):
        raise ClockError(f"[clock] reset_source = {tree.reset_source!r}: not an oscillator of {family}")
    if family != "stm32h7" and (tree.cpu_div != 1 or tree.flash_write_delay):
        raise ClockError(f"[clock] cpu_div and flash_write_delay exist on stm32h7 only, not on {family}")
    if tree.hse_bypass and tree.source != "HSE":
        raise ClockError(f"[clock] hse_bypass = true with source = {tree.source!r}: it says how the HSE is fed")
    if tree.overdrive and family != "stm32f4":
        raise ClockError(f"[clock] overdrive exists on stm32f4 only, not on {family}")
    out = getattr(tree.pll, SYSCLK_OUTPUT[family])
    if (tree.source_hz * tree.pll.n) % (tree.pll.m * out) or tree.sysclk_hz % (tree.cpu_div * tree.ahb_div):
        raise ClockError("[clock] the PLL factors and prescalers do not give a whole number of Hz")
    return tree
