"""Ranks started as local processes (benchmarks, tests): a free loopback port for their
rendezvous, and their results collected without waiting forever."""
from __future__ import annotations

import queue as queue_module
import socket
import time
from typing import Any, Sequence


def free_port() -> int:
    """A TCP port of 127.0.0.1 free now, for ``MASTER_PORT``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def collect(procs: Sequence[Any], results: Any, deadline_s: float) -> dict[int, Any]:
    """The ``(rank, value)`` items ``procs`` (started ``multiprocessing`` processes)
    put on ``results`` (their queue), by rank: until every process gave one, or all
    have exited (what they put is then read from the pipe, not lost), or
    ``deadline_s`` seconds have passed. The caller joins or kills the processes."""
    got: dict[int, Any] = {}
    end = time.monotonic() + deadline_s
    exited = False
    while len(got) < len(procs) and time.monotonic() < end:
        try:
            rank, value = results.get(timeout=2.0 if exited else 0.2)
            got[rank] = value
        except queue_module.Empty:
            if exited:
                break
            exited = all(not p.is_alive() for p in procs)
    return got
