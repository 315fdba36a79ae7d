"""The harness's side of a labgrid board farm: places acquired, their serial ports and power switches found.

A farm (:mod:`host.net.farm`) exports every node's board as one labgrid *place* with two resources: the
board's serial port (a ``NetworkSerialPort``: ser2net on the exporter, RFC 2217) and its power switch (a
``NetworkPowerPort``). :class:`LabgridClient` talks to the coordinator through ``labgrid-client``, labgrid's
public command line (one short process per call, 0.5-1 s): its Python API is an asyncio/gRPC session that would
have to live inside the harness's threads, while the CLI keeps the coordinator's protocol out of our process
and says what went wrong in one line we can pass on.

:class:`AcquiredPlaces` is what ``python -m host.harness --labgrid ADDRESS`` holds while it runs: every node's
place acquired (none left acquired if one fails), its serial URL and its power switch; released at the end,
also after an error or Ctrl-C.
"""
from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Iterable, Mapping

import yaml

from host.net.launch import BoardError

#: labgrid's default coordinator port (``labgrid-client -x HOST`` means HOST:20408)
COORDINATOR_PORT = 20408
#: seconds one labgrid-client call may take (a coordinator that accepts but never answers)
CALL_TIMEOUT_S = 30.0


class FarmError(BoardError):
    """A labgrid farm the harness cannot use: coordinator unreachable, place missing or taken (the message
    names it and says what to do)."""


@dataclass(frozen=True)
class PlaceResources:
    """What an acquired place gives the harness: where its board's serial port is, and its power switch."""

    place: str
    serial_url: str               # rfc2217://HOST:PORT?ign_set_control (or socket:// for a raw export)
    power: bool                   # the place has a NetworkPowerPort (``power on/off`` works)


def serial_url(host: str, port: int, protocol: str = "rfc2217") -> str:
    """The pyserial URL of an exported serial port. ``ign_set_control``: a pty (an emulated board) has no
    modem lines, so ser2net never acknowledges pyserial's DTR/RTS requests; the open would time out."""
    if protocol == "raw":
        return f"socket://{host}:{port}"
    return f"rfc2217://{host}:{port}?ign_set_control"


class LabgridClient:
    """One coordinator, driven through ``labgrid-client -x ADDRESS`` (labgrid's own CLI, from this venv)."""

    def __init__(self, address: str) -> None:
        self.address = address if ":" in address else f"{address}:{COORDINATOR_PORT}"

    def run(self, *args: str, place: str | None = None) -> str:
        """``labgrid-client`` with ``args``; its stdout, or FarmError with its own last error line."""
        cmd = [sys.executable, "-m", "labgrid.remote.client", "-x", self.address]
        cmd += ["-p", place] if place else []
        try:
            # a session of its own: the harness's Ctrl-C must not kill the release of the places
            res = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=CALL_TIMEOUT_S,
                                 start_new_session=True)
        except subprocess.TimeoutExpired:
            raise FarmError(f"labgrid coordinator {self.address} did not answer within {CALL_TIMEOUT_S:g} s "
                            f"(labgrid-client {' '.join(args)}); check it runs: labgrid-coordinator -l "
                            f"{self.address}") from None
        if res.returncode != 0:
            raise FarmError(self._problem(res.stderr, args, place))
        return res.stdout

    def _problem(self, stderr: str, args: tuple[str, ...], place: str | None) -> str:
        lines = [l.strip() for l in stderr.splitlines() if l.strip()]
        last = lines[-1] if lines else "no output"
        # "labgrid-client: Error: ...", "client.py: Error: ..." (run as a module), "Server error: Error: ..."
        last = re.sub(r"^(labgrid-client|client\.py|Server error): (Error: )?", "", last)
        where = f"place {place}: " if place else ""
        if "connect to coordinator" in last or "coordinator is unavailable" in stderr:
            return (f"labgrid coordinator {self.address} is unreachable; start it (labgrid-coordinator -l "
                    f"{self.address}) or use the address it listens on")
        return f"labgrid {where}{' '.join(args)}: {last}"

    # ------------------------------------------------------------------ places
    def places(self) -> list[str]:
        return [line.split()[0] for line in self.run("places").splitlines() if line.strip()]

    def create_place(self, place: str, patterns: list[str]) -> bool:
        """Create ``place`` (unless it exists) and give it ``patterns`` (exporter/group/cls matches); False
        if it existed (its matches are then completed, never removed)."""
        created = place not in self.places()
        if created:
            self.run("create", place=place)
        self.run("add-match", *patterns, place=place)
        return created

    def acquire(self, place: str) -> None:
        self.run("acquire", place=place)

    def release(self, place: str) -> None:
        self.run("release", place=place)

    def resources(self, place: str, tries: int = 10) -> PlaceResources:
        """The serial port and power switch of an acquired place (``labgrid-client env``)."""
        env = yaml.safe_load(self.run("env", place=place)) or {}
        found: dict[str, dict] = {}
        for entry in env.get("targets", {}).get(place, {}).get("resources", []):
            for cls, params in entry.items():
                found.setdefault(cls, params)
        ser = found.get("NetworkSerialPort")
        if ser is not None and ser.get("port") is None and tries > 0:
            # the exporter starts ser2net when the place is acquired and then publishes its port
            time.sleep(0.5)
            return self.resources(place, tries - 1)
        if ser is None:
            raise FarmError(f"labgrid place {place} has no NetworkSerialPort (a board's serial port); add one: "
                            f"labgrid-client -p {place} add-match EXPORTER/GROUP/NetworkSerialPort")
        if ser.get("port") is None:
            raise FarmError(f"labgrid place {place}: its exporter did not export the serial port (is ser2net "
                            f"installed there? see the exporter's log)")
        url = serial_url(str(ser["host"]), int(ser["port"]), ser.get("protocol", "rfc2217"))
        return PlaceResources(place, url, "NetworkPowerPort" in found)

    def power(self, place: str, action: str) -> None:
        """Switch the place's power ``on`` or ``off`` (its NetworkPowerPort, through labgrid's driver)."""
        self.run("power", action, place=place)


class PlacePower:
    """The power switch of one node's place, as the harness's ``--kill`` uses it (off = the crash, on = the
    reboot: :class:`host.net.launch.BoardLauncher`).

    A switch takes a labgrid-client call (~1-2 s with the switch itself), and the harness must keep routing
    the other boards' frames meanwhile (their samples in flight would miss their deadlines), so each call
    runs in a thread of its own; calls to one place run one after the other, in order. The harness sees the
    result as it sees a real board: the port closes, or the board answers HELLO again."""

    def __init__(self, client: LabgridClient, place: str) -> None:
        self.client = client
        self.place = place
        self._pending: threading.Thread | None = None
        # Off as soon as it is asked (the board may go while labgrid-client still runs), on only once the
        # switch has been done: until then the harness's reviver would connect to a port nothing is behind
        # (ser2net accepts, finds no device and hangs up in the middle of pyserial's RFC 2217 negotiation).
        self._on = True

    def off(self) -> None:
        self._on = False
        self._switch("off")

    def on(self) -> None:
        self._switch("on")

    def powered(self) -> bool:
        return self._on

    def wait(self, timeout: float | None = None) -> None:
        """Until the last switch requested has been done."""
        if self._pending is not None:
            self._pending.join(timeout)

    def _switch(self, action: str) -> None:
        self.wait()
        self._pending = threading.Thread(target=self._call, args=(action,), name=f"power-{self.place}", daemon=True)
        self._pending.start()

    def _call(self, action: str) -> None:
        try:
            self.client.power(self.place, action)
            self._on = action == "on"
        except FarmError as err:
            # the run goes on without the board (it stays silent); say why on the console, as it happens
            print(f"warning: {' '.join(str(err).split())}", file=sys.stderr)


class AcquiredPlaces:
    """Every node's place, acquired for one harness run (a context manager: released at its end, also after
    an error or Ctrl-C). Without a coordinator (``address`` None) it holds nothing and does nothing."""

    def __init__(self, address: str | None, places: Mapping[str, str], powered: Iterable[str] = ()) -> None:
        self.client = LabgridClient(address) if address else None
        self.places = dict(places)                   # node -> place
        self.powered = set(powered)                  # nodes whose power --kill switches: need a power switch
        self.resources: dict[str, PlaceResources] = {}
        self.acquired: list[str] = []
        self.switches: dict[str, PlacePower] = {}     # node -> its place's power switch (filled on acquiring)
        self._lock = threading.Lock()

    def __enter__(self) -> "AcquiredPlaces":
        try:
            self.acquire_all()
        except BaseException:
            self.release_all()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        # The run is over (its report follows): a place that could not be released is said, not raised
        for problem in self.release_all():
            print(f"warning: {' '.join(problem.split())}; release it: labgrid-client -x "
                  f"{self.client.address if self.client else ''} -p PLACE release", file=sys.stderr)

    def acquire_all(self) -> None:
        """Check that every place exists first (one call), then acquire them."""
        client = self.client
        if client is None or not self.places:
            return
        known = set(client.places())
        missing = sorted(p for p in self.places.values() if p not in known)
        if missing:
            raise FarmError(f"labgrid coordinator {client.address} has no place {', '.join(missing)}; create the "
                            f"farm's places (python -m host.net.farm places --coordinator {client.address} "
                            f"--build ...) or name them with --place NODE=PLACE")
        # One labgrid-client per place, all at once: each call is mostly its own start-up (~0.5 s), and a farm
        # of many boards would otherwise take seconds per board. The first failure (in node order) is raised
        # once every call has ended, so everything that was acquired is known and released.
        with ThreadPoolExecutor(max_workers=len(self.places)) as pool:
            futures = {node: pool.submit(self._take, node, place) for node, place in self.places.items()}
        errors = [f.exception() for f in futures.values() if f.exception() is not None]
        if errors:
            raise errors[0]  # type: ignore[misc]
        self.switches = {node: PlacePower(client, r.place) for node, r in self.resources.items() if r.power}

    def _take(self, node: str, place: str) -> None:
        assert self.client is not None
        self.client.acquire(place)
        with self._lock:
            self.acquired.append(place)
        res = self.resources[node] = self.client.resources(place)
        if node in self.powered and not res.power:
            raise FarmError(f"--kill {node}: labgrid place {place} has no power switch (NetworkPowerPort); add one "
                            f"to its exporter group and place, or kill another node")

    def release_all(self) -> list[str]:
        """Release what this run acquired (all at once, after any power switch still under way); returns
        what failed."""
        for sw in self.switches.values():
            sw.wait(CALL_TIMEOUT_S)
        client, places = self.client, list(self.acquired)
        self.acquired.clear()
        if client is None or not places:
            return []
        problems = []
        with ThreadPoolExecutor(max_workers=len(places)) as pool:
            for f in [pool.submit(client.release, p) for p in places]:
                if f.exception() is not None:
                    problems.append(str(f.exception()))
        return problems

    @property
    def urls(self) -> dict[str, str]:
        """node -> the pyserial URL of its place's serial port."""
        return {node: r.serial_url for node, r in self.resources.items()}

    @property
    def power(self) -> dict[str, PlacePower]:
        """node -> its place's power switch (places that have one)."""
        return self.switches
