"""Leaving a loader's epoch early, then exiting: repeated to catch rare aborts.

Each run is a child process that makes a ``NeighborLoader``, leaves its epoch one way
(``break``, ``next(iter(loader))``, an exception in the loop body, SIGINT), and exits
through the interpreter's normal shutdown with the loader's prefetch threads, and
worker processes, possibly still busy. A producer thread still inside libtorch when
the interpreter finalizes aborts the process (``terminate called without an active
exception``, SIGABRT), so every run must end with its pattern's expected status.

The children are forked from a warm parent (torch, PyG and the numba kernels already
loaded, torch on one intra-op thread), so a run costs a fraction of a second, not an
interpreter start; each child still exits, and finalizes, as a script does. Usage::

    python benchmarks/exit_stress.py --runs 200 [--patterns break-0 sigint-2 ...] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time

#: pattern -> the exit status a run must end with (negative: killed by that signal).
EXPECTED = {
    "break-0": 0, "break-2": 0,
    "next-0": 0, "next-2": 0,
    "raise-0": 1, "raise-2": 1,
    "sigint-0": -signal.SIGINT, "sigint-2": -signal.SIGINT,
}
#: stderr lines that count against a run even when its status is right.
BAD_OUTPUT = ("terminate called", "Attempted to fork from a non-main thread",
              "Unable to join threads")


def _child(data, graph, pattern: str) -> None:
    """The body of one run; exceptions escape to the top level on purpose."""
    import torch
    from graphbatch import NeighborLoader

    how, workers = pattern.rsplit("-", 1)
    # Python leaves SIGINT ignored when it starts ignored (a background job of a
    # non-interactive shell, as CI may be); a script run at a terminal raises on it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    torch.manual_seed(os.getpid())
    loader = NeighborLoader(data, num_neighbors=[10, 10], batch_size=512, shuffle=True,
                            num_workers=int(workers), graph=graph)
    if how == "next":
        next(iter(loader))
        return
    for i, _ in enumerate(loader):
        if i == 5:
            if how == "break":
                break
            if how == "raise":
                raise RuntimeError("raised in the loop body")
            if how == "sigint":
                os.kill(os.getpid(), signal.SIGINT)


def _status(wait_status: int) -> int:
    return os.waitstatus_to_exitcode(wait_status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="runs of each pattern")
    parser.add_argument("--patterns", nargs="+", choices=list(EXPECTED), default=list(EXPECTED))
    parser.add_argument("--jobs", type=int, default=2, help="children at once")
    parser.add_argument("--nodes", type=int, default=50_000)
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.jobs < 1 or args.nodes < 1:
        parser.error("--runs, --jobs and --nodes must be positive")

    import torch
    from torch_geometric.data import Data
    from graphbatch import CSRGraph, NeighborLoader

    # GNU OpenMP, torch's intra-op pool, hangs in a child forked after the parent used
    # it; one torch thread keeps the pool unused (numba's TBB pool is fork-safe).
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    n = args.nodes
    data = Data(x=torch.randn(n, 64, generator=gen),
                edge_index=torch.randint(0, n, (2, 10 * n), generator=gen), num_nodes=n)
    graph = CSRGraph.from_data(data)
    # Compiles (or loads) every kernel the children run, in this process.
    next(iter(NeighborLoader(data, num_neighbors=[10, 10], batch_size=512, prefetch=0,
                             graph=graph)))

    logs = tempfile.mkdtemp(prefix="exit_stress-")
    results = {p: {"runs": 0, "wrong_status": 0, "bad_output": 0, "statuses": {}}
               for p in args.patterns}
    queue = [(p, i) for i in range(args.runs) for p in args.patterns]
    running: dict[int, tuple[str, str]] = {}
    start = time.perf_counter()
    while queue or running:
        while queue and len(running) < args.jobs:
            pattern, i = queue.pop(0)
            log = os.path.join(logs, f"{pattern}.{i}.err")
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(fd, 2)
                os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
                _child(data, graph, pattern)
                sys.exit(0)
            running[pid] = (pattern, log)
        pid, wait_status = os.wait()
        pattern, log = running.pop(pid)
        status = _status(wait_status)
        with open(log, errors="replace") as f:
            err = f.read()
        r = results[pattern]
        r["runs"] += 1
        r["statuses"][str(status)] = r["statuses"].get(str(status), 0) + 1
        if status != EXPECTED[pattern]:
            r["wrong_status"] += 1
            print(f"{pattern}: exit status {status}, expected {EXPECTED[pattern]}; "
                  f"stderr ends: {err[-300:]!r}", file=sys.stderr)
        elif any(line in err for line in BAD_OUTPUT):
            r["bad_output"] += 1
            print(f"{pattern}: stderr: {err[-300:]!r}", file=sys.stderr)
        else:
            os.unlink(log)
    elapsed = time.perf_counter() - start
    failed = sum(r["wrong_status"] + r["bad_output"] for r in results.values())
    if args.json:
        print(json.dumps({"results": results, "seconds": elapsed, "failed": failed}))
    else:
        print(f"{'pattern':<10} {'runs':>5} {'wrong exit':>10} {'bad stderr':>10}  statuses")
        for p, r in results.items():
            print(f"{p:<10} {r['runs']:>5} {r['wrong_status']:>10} {r['bad_output']:>10}  "
                  f"{r['statuses']}")
        print(f"{failed} failed runs in {elapsed:.0f} s; logs of failures in {logs}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
