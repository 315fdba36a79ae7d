"""Start N local workers of a multi-worker training, for trying ``--distribute multiworker`` on one machine.

    python -m host.ml.launch_workers --workers 2 -- python -m host.build --preset fashion --distribute multiworker

Each worker is the command after ``--``, started with its own ``TF_CONFIG`` (a cluster of N workers on free
localhost ports, task index 0..N-1; index 0 is the chief, the one that writes the cache and the build). Their
output is streamed line by line, prefixed ``[worker i]``. The launcher returns the chief's exit status once
every worker has ended. When a worker fails (non-zero status) the others cannot finish -- their collective
ops wait for it forever -- so they are killed and the failing worker's status is returned; Ctrl-C kills them
all (status 130). On several machines, set TF_CONFIG on each yourself (docs/training.md).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, NoReturn, Sequence


class LaunchError(Exception):
    """A command line the launcher cannot run (reported as one ``error:`` line, status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise LaunchError(f"{message} (python -m host.ml.launch_workers --help lists the options)")


@dataclass(frozen=True)
class Worker:
    index: int
    process: subprocess.Popen


def free_ports(n: int, host: str = "localhost") -> list[int]:
    """``n`` distinct ports that were free a moment ago (all held open together, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_config(ports: Sequence[int], index: int, host: str = "localhost") -> str:
    """The TF_CONFIG of worker ``index`` in a cluster of workers on ``host``:``ports``."""
    return json.dumps({"cluster": {"worker": [f"{host}:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def _stream(prefix: str, source: IO[bytes], sink: IO[str], lock: threading.Lock) -> None:
    for raw in iter(source.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        with lock:  # whole lines only: two workers' output never interleaves inside a line
            print(f"{prefix}{line}", file=sink, flush=True)
    source.close()


def _kill(workers: Sequence[Worker]) -> None:
    """Terminate each still-running worker's process group (TensorFlow starts threads, maybe children)."""
    for w in workers:
        if w.process.poll() is None:
            try:
                os.killpg(w.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5.0
    for w in workers:
        try:
            w.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(w.process.pid, signal.SIGKILL)
            w.process.wait()


def launch(command: Sequence[str], workers: int, *, host: str = "localhost", sink: IO[str] = sys.stdout) -> int:
    """Run ``command`` as ``workers`` local workers; the chief's exit status (see the module docstring)."""
    ports = free_ports(workers, host)
    lock = threading.Lock()
    started: list[Worker] = []
    threads = []
    try:
        for i in range(workers):
            env = dict(os.environ, TF_CONFIG=tf_config(ports, i, host), PYTHONUNBUFFERED="1")
            proc = subprocess.Popen(list(command), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            started.append(Worker(i, proc))
            t = threading.Thread(target=_stream, args=(f"[worker {i}] ", proc.stdout, sink, lock), daemon=True)
            t.start()
            threads.append(t)
        status = _wait(started)
    except KeyboardInterrupt:
        _kill(started)
        status = 130
    except OSError as err:  # the command does not exist or cannot run
        _kill(started)
        raise LaunchError(f"cannot start {command[0]!r}: {err.strerror}") from None
    for t in threads:
        t.join(timeout=5.0)
    return status


def _wait(workers: Sequence[Worker]) -> int:
    """Wait for all; on the first failure kill the rest and return its status."""
    while True:
        codes = [w.process.poll() for w in workers]
        failed = [c for c in codes if c not in (None, 0)]
        if failed:
            _kill(workers)
            return failed[0] if failed[0] > 0 else 128 - failed[0]  # killed by signal s: 128 + s, as a shell says
        if all(c is not None for c in codes):
            return codes[0]
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = _Parser(prog="python -m host.ml.launch_workers", description=__doc__,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2, help="number of local workers (default 2)")
    ap.add_argument("--host", default="localhost", help="address the workers listen on (default localhost)")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command every worker runs")
    try:
        args = ap.parse_args(argv)
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            raise LaunchError("no command to run: put it after --, e.g. -- python -m host.build "
                              "--distribute multiworker ...")
        if args.workers < 1:
            raise LaunchError(f"--workers must be at least 1, not {args.workers}")
        return launch(command, args.workers, host=args.host)
    except LaunchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
