"""``pio device monitor`` filter ``resilinet``: a node's frames as readable lines (HELLO, STATS, ERROR, ...).

Every environment of a build's platformio.ini selects it (``monitor_filters = resilinet``, with
``monitor_encoding = latin-1`` so that each received byte reaches the filter as one character, and
``monitor_speed`` = the board's baud); PlatformIO finds it in the project's ``monitor_dir``, this folder.
The frames are decoded by the host's one codec (host/net/protocol.py) through host/net/frame_text.py.

On attach it asks the node for its HELLO (which also says what its cycle counts are) and its STATS. Keys:
``h`` asks for HELLO again, ``s`` for STATS; other keys send nothing (the node understands only frames).
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:   # PlatformIO loads this file by path; the host package lives beside it
    sys.path.insert(0, str(REPO))

from platformio.public import DeviceMonitorFilterBase  # noqa: E402

from host.net.frame_text import FrameLines, monitor_link, request_bytes  # noqa: E402

#: Keys that send a request, and the frame type each asks for.
KEYS = {"h": "HELLO", "s": "STATS"}


class ResilinetFrames(DeviceMonitorFilterBase):
    NAME = "resilinet"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        env = f"env:{self.environment}" if self.environment else None

        def option(name: str) -> str | None:
            return self.config.get(env, name, None) if env and self.config.has_section(env) else None

        self.link = monitor_link(option("custom_resilinet_board"), option("custom_resilinet_build"),
                                 option("custom_resilinet_node"))
        self.lines = FrameLines(self.link.emulated)
        self._greeted = False
        self._answered = False    # a STATS came back: the greeting reached the node
        self._regreeted = False

    def set_running_terminal(self, terminal) -> None:
        super().set_running_terminal(terminal)
        if not self._greeted:   # called once per direction: greet once
            self._greeted = True
            self._greet()

    def _greet(self) -> None:
        terminal = self.get_running_terminal()
        if terminal is not None:   # None: the filter runs outside a monitor (its tests)
            terminal.serial.write(request_bytes("HELLO", self.link.double_nul)
                                  + request_bytes("STATS", self.link.double_nul))

    def rx(self, text: str) -> str:
        # latin-1 decoding maps every byte to the character of the same number: encode it back
        lines = self.lines.feed(text.encode("latin-1"))
        if not self._answered and any(" STATS: " in line for line in lines):
            self._answered = True
        elif not self._answered and not self._regreeted and any(" HELLO: " in line for line in lines):
            # The node's boot HELLO: a board the monitor's connection just started (an emulated one) drops
            # what reaches its UART before the firmware enabled it, so the greeting may be lost; ask again.
            self._regreeted = True
            self._greet()
        return "".join(line + "\n" for line in lines)

    def tx(self, text: str) -> str:
        return "".join(request_bytes(KEYS[c], self.link.double_nul).decode("latin-1") for c in text if c in KEYS)
