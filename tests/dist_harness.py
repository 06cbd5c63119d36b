"""Runs a function on several local processes joined by ``torch.distributed`` (gloo over
loopback), as ``torchrun --nproc_per_node N`` would, with a hard deadline.

``run_ranks(fn, world_size)`` starts ``world_size`` spawned processes, each calling
``fn(rank, world_size, *args)`` after ``init_process_group``; it returns every rank's
:class:`RankResult` (its return value, or the exception it raised as type and text).
A process still running at the deadline is killed and reported as hung, so a test of
"no deadlock" fails instead of hanging the suite. ``fn`` must be importable by name
(a module-level function of a test module): spawned processes unpickle it.
"""
from __future__ import annotations

import os
import pickle
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Optional

import torch.multiprocessing as mp

from graphbatch.distributed.local import collect, free_port

#: Seconds every collective may wait before raising, in the processes started here.
COLLECTIVE_TIMEOUT_S = 20.0


@dataclass
class RankResult:
    rank: int
    value: Any = None
    error_type: Optional[str] = None
    error: Optional[str] = None
    exitcode: Optional[int] = None
    hung: bool = False

    @property
    def ok(self) -> bool:
        return self.error_type is None and not self.hung and self.exitcode == 0


def _child(rank: int, world_size: int, port: int, fn: Callable, args: tuple, queue,
           timeout_s: float, env: dict) -> None:
    import torch
    import torch.distributed as dist

    from graphbatch import ranks

    os.environ.update(env)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)  # N processes on few cores, as torchrun sets OMP_NUM_THREADS=1
    result = RankResult(rank)
    try:
        dist.init_process_group("gloo", rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=timeout_s))
        result.value = fn(rank, world_size, *args)
    except BaseException as exc:  # noqa: BLE001 -- reported to the parent, which asserts
        result.error_type = type(exc).__name__
        result.error = f"{exc}\n{traceback.format_exc()}"
    # As bytes: a tensor put as is travels as a shared-memory handle, which dies with
    # this process if it exits before the parent has read it.
    queue.put((rank, pickle.dumps(result)))
    ranks.leave(finished=result.error_type is None)


def run_ranks(fn: Callable, world_size: int, args: tuple = (), deadline_s: float = 240.0,
              collective_timeout_s: float = COLLECTIVE_TIMEOUT_S,
              env: Optional[dict] = None) -> list[RankResult]:
    """Runs ``fn(rank, world_size, *args)`` on ``world_size`` spawned processes; see the
    module docstring. ``env`` is set in every process before ``fn`` runs."""
    # Not daemonic, so that ranks may start DataLoader workers; the deadline below
    # kills whatever is left.
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_child, args=(r, world_size, port, fn, args, queue,
                                              collective_timeout_s, dict(env or {})))
             for r in range(world_size)]
    for p in procs:
        p.start()
    end = time.monotonic() + deadline_s
    results = {rank: pickle.loads(r) for rank, r in collect(procs, queue, deadline_s).items()}
    for p in procs:
        p.join(timeout=max(0.0, end - time.monotonic()))
    out = []
    for rank, p in enumerate(procs):
        r = results.get(rank, RankResult(rank))
        if p.is_alive():
            p.kill()
            p.join()
            r.hung = rank not in results
        r.exitcode = p.exitcode
        if rank not in results and not r.hung:
            r.error_type, r.error = "Died", f"exit code {p.exitcode}"
        out.append(r)
    return out


def values(results: list[RankResult]) -> list[Any]:
    """Every rank's value, after asserting that every rank succeeded."""
    bad = [r for r in results if not r.ok]
    assert not bad, "\n".join(
        f"rank {r.rank}: hung={r.hung} exit={r.exitcode} {r.error_type}: {r.error}" for r in bad)
    return [r.value for r in results]
