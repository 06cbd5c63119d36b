"""``graphbatch bench gather``: feature-gather bandwidth against the memcpy limit.

For each row size, gathers the same number of bytes from a table larger than the
caches: a plain copy of a contiguous block (memcpy, the limit), the feature store's
public ``FeatureStore.gather`` (ids checked, reused buffers), its ``gather_unchecked``,
the store with sorted ids, ``index_select`` into a preallocated tensor (``out=``) and an
allocating ``index_select``, each path's fastest call over ``--rounds`` rounds of
``--repeats`` calls in a row per path (a load from other processes that comes and goes
then hits every path alike). Then the store's gather runs in a background thread, as a
loader's prefetch thread does, first alone and then while the main thread trains a
small GraphSAGE on the CPU (2,048 random nodes, 20,480 edges, 64 features, 64 hidden
channels): torch's OpenMP threads, which spin-wait after each op, share the cores with
the gather. On a CUDA machine it adds the zero-copy GPU gather, the pinned
host-to-device copy of the same bytes, and the naive CPU gather followed by
``.to('cuda')``.

Rows (``--out``, ``--csv``), one per row size, bandwidths in GB/s (1e9 bytes):
``row_bytes``, ``memcpy_gb_per_s``, ``store_gb_per_s`` (``FeatureStore.gather``),
``store_pct_of_memcpy``, ``unchecked_gb_per_s`` (``gather_unchecked``),
``store_pct_of_unchecked``, ``sorted_ids_gb_per_s``, ``index_select_out_gb_per_s``,
``index_select_gb_per_s`` (allocating); the background thread's gather (mean over its
calls, not the best) alone, ``thread_gb_per_s``, and while the model trains,
``thread_training_gb_per_s``; the training step alone, ``train_ms_per_step``, and beside
the gathering thread, ``train_gathering_ms_per_step``; the CUDA paths (None without
CUDA): ``pinned_h2d_gb_per_s``, ``zero_copy_gb_per_s``, ``zero_copy_pct_of_h2d``,
``cpu_gather_copy_gb_per_s``, ``zero_copy_speedup_vs_naive``.
"""
from __future__ import annotations

import argparse
import os
import threading
import time
from operator import itemgetter
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from graphbatch.cli import results
from graphbatch.cli._args import add_check, positive_int
from graphbatch.cli.harness.models import SAGE
from graphbatch.cli.report import formatted, number, print_table
from graphbatch.features import FeatureStore

#: The model trained beside the gathering thread: nodes, edges, features, hidden
#: channels, classes of its random graph; a step takes a few ms on 2 cores.
TRAIN_SIZES = dict(nodes=2048, edges=20480, features=64, hidden=64, classes=16)


def _best_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def _best_over_rounds(paths: dict[str, Callable[[], object]], repeats: int,
                      rounds: int) -> dict[str, float]:
    """Each path's fastest call: ``rounds`` rounds over the paths, each timing
    ``repeats`` calls of one path in a row (its steady state) before the next path. A
    load from other processes that comes and goes then hits every path alike."""
    best = dict.fromkeys(paths, float("inf"))
    for _ in range(rounds):
        for name, fn in paths.items():
            best[name] = min(best[name], _best_seconds(fn, repeats))
    return best


#: The printed table's columns, made from the rows' numbers; the CUDA ones on CUDA only.
COLUMNS = {
    "row B": itemgetter("row_bytes"),
    "memcpy GB/s": number("memcpy_gb_per_s"),
    "store GB/s": number("store_gb_per_s"),
    "% memcpy": number("store_pct_of_memcpy", ".0f"),
    "unchecked GB/s": number("unchecked_gb_per_s"),
    "% unchecked": number("store_pct_of_unchecked", ".0f"),
    "sorted ids GB/s": number("sorted_ids_gb_per_s"),
    "index_select out= GB/s": number("index_select_out_gb_per_s"),
    "index_select alloc GB/s": number("index_select_gb_per_s"),
    "thread GB/s": number("thread_gb_per_s"),
    "thread, training GB/s": number("thread_training_gb_per_s"),
    "train ms": number("train_ms_per_step", ".2f"),
    "train, gathering ms": number("train_gathering_ms_per_step", ".2f"),
}
CUDA_COLUMNS = {
    "pinned H2D GB/s": number("pinned_h2d_gb_per_s"),
    "zero-copy GB/s": number("zero_copy_gb_per_s"),
    "% H2D": number("zero_copy_pct_of_h2d", ".0f"),
    "CPU gather+copy GB/s": number("cpu_gather_copy_gb_per_s"),
    "zero-copy / naive": number("zero_copy_speedup_vs_naive", suffix="x"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--row-bytes", type=positive_int, nargs="+", default=[128, 256, 512, 1024, 4096],
                   help="row sizes to measure, in bytes (multiples of 4: float32 rows)")
    p.add_argument("--table-mib", type=positive_int, default=1024,
                   help="size of the table gathered from, in MiB")
    p.add_argument("--gather-mib", type=positive_int, default=128,
                   help="bytes gathered per call, in MiB")
    p.add_argument("--repeats", type=positive_int, default=10,
                   help="timed calls in a row per path and round, the fastest reported; the "
                        "background thread's gather makes at least as many calls, their "
                        "mean reported")
    p.add_argument("--rounds", type=positive_int, default=3,
                   help="rounds over the CPU paths, so that a passing load from other "
                        "processes hits them all alike")
    p.add_argument("--train-steps", type=positive_int, default=50,
                   help="training steps timed alone and beside the gathering thread, at "
                        "least (training goes on until the thread has made --repeats calls)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the tables, the row ids and the model trained")
    results.add_output_arguments(p)
    add_check(p, _check)


def _check(args: argparse.Namespace) -> str | None:
    # The bandwidths divide the bytes asked for by the time: each call must gather them
    # all, whole float32 rows, from rows that exist.
    if args.gather_mib > args.table_mib:
        return (f"--gather-mib {args.gather_mib} exceeds the table it gathers from, "
                f"--table-mib {args.table_mib}")
    for row_bytes in args.row_bytes:
        if row_bytes % 4:
            return f"--row-bytes must be multiples of 4 (float32 rows), got {row_bytes}"
        if row_bytes > args.gather_mib << 20:
            return (f"--row-bytes {row_bytes} exceeds the bytes gathered per call, "
                    f"--gather-mib {args.gather_mib}")
    return None


def _train_step(gen: torch.Generator) -> Callable[[], None]:
    """One forward and backward pass and an Adam step of a 2-layer GraphSAGE on a
    random graph of :data:`TRAIN_SIZES`, on the CPU."""
    n, c = TRAIN_SIZES["nodes"], TRAIN_SIZES["classes"]
    x = torch.randn(n, TRAIN_SIZES["features"], generator=gen)
    edge_index = torch.randint(n, (2, TRAIN_SIZES["edges"]), generator=gen)
    y = torch.randint(c, (n,), generator=gen)
    model = SAGE(TRAIN_SIZES["features"], TRAIN_SIZES["hidden"], c)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)

    def step() -> None:
        opt.zero_grad()
        F.cross_entropy(model(x, edge_index), y).backward()
        opt.step()

    return step


def _beside(gather: Callable[[], object], calls: int, step: Optional[Callable[[], None]],
            steps: int) -> tuple[float, float]:
    """Runs ``gather`` in a loop in a background thread, and meanwhile ``step`` in this
    thread (or nothing: this thread waits) until it has made ``steps`` steps and the
    thread ``calls`` whole calls. Returns the gather's mean seconds per call over the
    calls made in that window, and this thread's seconds per step (0 without steps)."""
    times: list[tuple[float, float]] = []  # each call's start and end
    errors: list[BaseException] = []
    stop, warm, enough = threading.Event(), threading.Event(), threading.Event()
    window_start = float("inf")  # set once the thread's first (warm-up) call is done

    def loop() -> None:
        try:
            while not stop.is_set():
                begin = time.perf_counter()
                gather()
                times.append((begin, time.perf_counter()))
                warm.set()
                if sum(b >= window_start for b, _ in times) >= calls:
                    enough.set()
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the main thread
            errors.append(exc)
            warm.set()
            enough.set()

    thread = threading.Thread(target=loop, name="gather", daemon=True)
    thread.start()
    done = 0
    try:
        warm.wait()
        window_start = time.perf_counter()
        while step is not None and (done < steps or not enough.is_set()):
            step()
            done += 1
        enough.wait()
        window_end = time.perf_counter()
    finally:
        stop.set()
        thread.join()
    if errors:
        raise errors[0]
    inside = [t for t in times if window_start <= t[0] and t[1] <= window_end]
    per_call = (inside[-1][1] - inside[0][0]) / len(inside)
    return per_call, (window_end - window_start) / done if done else 0.0


def _measure(row_bytes: int, args: argparse.Namespace, gen: torch.Generator, cuda: bool,
             step: Callable[[], None]) -> dict:
    """One row: bandwidths for rows of ``row_bytes`` (its tables freed on return)."""
    dim = row_bytes // 4
    num_rows = (args.table_mib << 20) // row_bytes
    n = (args.gather_mib << 20) // row_bytes
    table = torch.randn(num_rows, dim, generator=gen)
    store = FeatureStore({"x": table}, pin=cuda)
    ids = torch.randint(num_rows, (n,), generator=gen)
    sorted_ids = ids.sort().values
    block = table[:n]
    dst = torch.empty_like(block)
    gb = n * row_bytes / 1e9
    t = _best_over_rounds({
        "memcpy": lambda: dst.copy_(block),
        "store": lambda: store.gather("x", ids),
        "unchecked": lambda: store.gather_unchecked("x", ids),
        "sorted": lambda: store.gather("x", sorted_ids),
        "index_select_out": lambda: torch.index_select(table, 0, ids, out=dst),
        "index_select": lambda: table.index_select(0, ids),
    }, args.repeats, args.rounds)
    # A prefetch thread's gather, alone and beside training on the main thread.
    t_thread, _ = _beside(lambda: store.gather("x", ids), args.repeats, None, 0)
    step()
    start = time.perf_counter()
    for _ in range(args.train_steps):
        step()
    t_step = (time.perf_counter() - start) / args.train_steps
    t_thread_training, t_step_gathering = _beside(
        lambda: store.gather("x", ids), args.repeats, step, args.train_steps)
    row = {
        "row_bytes": row_bytes,
        "memcpy_gb_per_s": gb / t["memcpy"],
        "store_gb_per_s": gb / t["store"],
        "store_pct_of_memcpy": 100 * t["memcpy"] / t["store"],
        "unchecked_gb_per_s": gb / t["unchecked"],
        "store_pct_of_unchecked": 100 * t["unchecked"] / t["store"],
        "sorted_ids_gb_per_s": gb / t["sorted"],
        "index_select_out_gb_per_s": gb / t["index_select_out"],
        "index_select_gb_per_s": gb / t["index_select"],
        "thread_gb_per_s": gb / t_thread,
        "thread_training_gb_per_s": gb / t_thread_training,
        "train_ms_per_step": 1000 * t_step,
        "train_gathering_ms_per_step": 1000 * t_step_gathering,
        # The same keys with or without CUDA, so that files from both machines compare.
        **dict.fromkeys(("pinned_h2d_gb_per_s", "zero_copy_gb_per_s", "zero_copy_pct_of_h2d",
                         "cpu_gather_copy_gb_per_s", "zero_copy_speedup_vs_naive")),
    }
    if cuda:
        pinned = torch.empty_like(block).pin_memory()
        pinned.copy_(block)
        dev = torch.empty_like(block, device="cuda")
        t_h2d = _best_seconds(lambda: dev.copy_(pinned, non_blocking=True), args.repeats)
        t_zero = _best_seconds(lambda: store.gather_unchecked("x", ids, "cuda"), args.repeats)
        t_naive = _best_seconds(lambda: table.index_select(0, ids).to("cuda"), args.repeats)
        row.update({
            "pinned_h2d_gb_per_s": gb / t_h2d,
            "zero_copy_gb_per_s": gb / t_zero,
            "zero_copy_pct_of_h2d": 100 * t_h2d / t_zero,
            "cpu_gather_copy_gb_per_s": gb / t_naive,
            "zero_copy_speedup_vs_naive": t_naive / t_zero,
        })
    return row


def run(args: argparse.Namespace) -> list[dict]:
    """Measures every ``--row-bytes``, prints the table, writes ``--out`` and ``--csv``;
    returns the rows."""
    gen = torch.Generator().manual_seed(args.seed)
    cuda = torch.cuda.is_available()
    torch.manual_seed(args.seed)  # the model's initial weights
    step = _train_step(torch.Generator().manual_seed(args.seed))  # and its data
    for _ in range(3):  # warm-up: the allocator, PyG's first calls
        step()
    rows = [_measure(row_bytes, args, gen, cuda, step) for row_bytes in args.row_bytes]
    device = torch.cuda.get_device_name() if cuda else "no CUDA device"
    print(f"gathered {args.gather_mib} MiB per call from a {args.table_mib} MiB table, "
          f"best of {args.rounds} x {args.repeats}; torch threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; {device}")
    print(f"thread: FeatureStore.gather in a background thread, mean of {args.repeats}+ "
          f"calls, alone and while the main thread trains a GraphSAGE "
          f"({args.train_steps}+ steps)")
    print_table(formatted(rows, {**COLUMNS, **CUDA_COLUMNS} if cuda else COLUMNS))
    results.write_outputs(args, "bench gather", rows)
    return rows
