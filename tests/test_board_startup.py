"""Emulated boards start up usable: the receiver survives host bytes during the UART set-up, and a board is
never taken for started because another process's QEMU listens on its port.

A byte that reaches the node's UART while the firmware is still setting it up is not a dead receiver.

The harness opens an emulated board's port (which starts the guest) and sends HELLO probes at once, so on a
loaded machine host bytes can arrive while ``board_uart_hw_init`` runs. Seen as a harness start-up failure
("no HELLO after RESET ... also after reopening its port"): the board had become alive by its boot HELLO
alone, and its receiver was dead from boot. With the mux chardev (``rx_buffer``) in front of the UART, a byte
that lands after the UART was enabled but before the NVIC was set up latched the interrupt as pending; the
driver's set-up then read DR (QEMU hands over the next buffered byte there and leaves the interrupt line
low) and ``nvic_enable_irq`` cleared the pending bit: RXNE set, no interrupt ever again, guest asleep in
``wfi``, the mux holding every later byte back.

Here the guest is stopped (QEMU's gdb stub) inside ``board_uart_hw_init`` at the first instruction after
which a byte sent is latched as the UART's pending interrupt, a few more bytes wait in the mux, and then
the node must still answer a HELLO. Deterministic: the guest does not run while the bytes arrive."""
from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from boards import load_board
from codegen.emulator import EmulatedBoard, LaunchError, free_port, qemu_available
from host.deploy.firmware import build_node, toolchain_available, write_node_config
from host.net import protocol as p

from firmware_support import PLAIN, TESTMODEL_SOURCES, NodeClient

pytestmark = pytest.mark.skipif(not (toolchain_available() and qemu_available()),
                                reason="arm-none-eabi-gcc or qemu-system-arm not installed (apt-get install "
                                       "--no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi "
                                       "qemu-system-arm)")

NVIC_ISPR0 = 0xE000E200
NVIC_ISER0 = 0xE000E100


class GdbStub:
    """The few remote-protocol packets of QEMU's gdb stub this test needs (stop, step, read memory)."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.buf = b""

    def _packet(self) -> str:
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start)
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                body, self.buf = self.buf[start + 1:end], self.buf[end + 3:]
                self.sock.sendall(b"+")
                return body.decode()
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("gdb stub closed")
            self.buf += chunk

    def cmd(self, body: str, reply: bool = True) -> str:
        self.sock.sendall(b"$%s#%02x" % (body.encode(), sum(body.encode()) & 0xFF))
        return self._packet() if reply else ""

    def read32(self, addr: int) -> int:
        return int.from_bytes(bytes.fromhex(self.cmd(f"m{addr:x},4")), "little")

    def close(self) -> None:
        self.cmd("D")   # detach: the guest runs on
        self.sock.close()


def _symbol(elf: Path, name: str) -> int:
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(rf"^([0-9a-f]+) [Tt] {name}$", nm, re.M).group(1), 16) & ~1   # Thumb bit off


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict:
    """The test node's image per emulated board, built on first use."""
    root, built = tmp_path_factory.mktemp("startup"), {}

    def get(board: str):
        if board not in built:
            header = write_node_config(PLAIN, root / "cfg" / "node_config.h")
            built[board] = build_node(board, header, TESTMODEL_SOURCES, root / board, node_name="plain", werror=True)
        return built[board]
    return get


@pytest.mark.parametrize("board", ["qemu_f405", "qemu_an386"])
def test_byte_during_uart_setup_leaves_the_receiver_working(board, images) -> None:
    image = images(board)
    irq = load_board(board).uart.irq
    word, bit = 4 * (irq >> 5), 1 << (irq & 31)
    gport = free_port()
    with EmulatedBoard(board, image.elf, rx_buffer=True, extra_args=("-S", "-gdb", f"tcp:127.0.0.1:{gport}")) as qemu:
        port = qemu.connect()   # the guest's CPU stays stopped (-S) until the gdb stub lets it run
        gdb = GdbStub(gport)
        entry = _symbol(image.elf, "board_uart_hw_init")
        assert gdb.cmd(f"Z0,{entry:x},2") == "OK"
        assert gdb.cmd("c").startswith("T")
        gdb.cmd(f"z0,{entry:x},2")
        latched = False
        for _ in range(200):   # one instruction at a time until a byte sent is taken as a pending RX interrupt
            assert gdb.cmd("s").startswith("T")
            assert gdb.read32(NVIC_ISER0 + word) & bit == 0, "the NVIC was set up before a byte got through"
            port.write(b"\x00")   # idle fill (harmless to the link decoder); the port doubles it for the mux
            # QEMU's main loop serves the UART socket and the gdb stub: the byte was in the kernel before the
            # first read's packet, so by the second read's answer the UART model has seen it
            gdb.read32(NVIC_ISPR0 + word)
            if gdb.read32(NVIC_ISPR0 + word) & bit:
                latched = True
                break
        assert latched, "no step of board_uart_hw_init let a received byte raise the UART interrupt"
        port.write(bytes(4))   # more bytes: they wait in the mux for the UART to take them
        gdb.read32(NVIC_ISPR0 + word)
        gdb.close()
        client = NodeClient(port, PLAIN.node_id)
        client.wait_for(lambda f: f.type == p.FrameType.HELLO and f.seq == 0, 10, "boot HELLO")
        hello = client.request(p.FrameType.HELLO, 0x1234, timeout=5)
        assert hello.src == PLAIN.node_id
        assert client.stats().rx_frames >= 1   # the receiver works: frames after the set-up are decoded


def test_a_port_another_process_listens_on_is_not_taken_for_the_board(images) -> None:
    """free_port() hands out a port that is free *now*; another process's QEMU may bind it first. Ours then
    fails to bind and exits, and the board must not count as started meanwhile because *a* QEMU listens
    there (the host connected to the other process's board: "board check failed: ... the port closed")."""
    image = images("qemu_f405")
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        board = EmulatedBoard("qemu_f405", image.elf, other.getsockname()[1], rx_buffer=True)
        with pytest.raises(LaunchError, match="in use"):
            board.start()
        assert not board.is_running()
