"""``graphbatch bench gather``: feature-gather bandwidth against the memcpy limit.

For each row size, gathers the same number of bytes four ways from a table larger than
the caches: a plain copy of a contiguous block (memcpy, the limit), the feature store
(reused buffers), an allocating ``index_select``, and with sorted ids. On a CUDA machine
it adds the zero-copy GPU gather, the pinned host-to-device copy of the same bytes, and
the naive CPU gather followed by ``.to('cuda')``.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import torch

from graphbatch.cli._args import add_check, positive_int
from graphbatch.cli.report import print_table
from graphbatch.features import FeatureStore


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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--row-bytes", type=positive_int, nargs="+", default=[128, 256, 512, 1024, 4096],
                   help="multiples of 4 (rows of float32)")
    p.add_argument("--table-mib", type=positive_int, default=1024,
                   help="size of the gathered-from table")
    p.add_argument("--gather-mib", type=positive_int, default=128, help="bytes gathered per call")
    p.add_argument("--repeats", type=positive_int, default=10)
    p.add_argument("--seed", type=int, default=0)
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


def _measure(row_bytes: int, args: argparse.Namespace, gen: torch.Generator, cuda: bool) -> dict:
    """One table row: bandwidths for rows of ``row_bytes`` (its tables freed on return)."""
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
    t_memcpy = _best_seconds(lambda: dst.copy_(block), args.repeats)
    t_store = _best_seconds(lambda: store.gather_unchecked("x", ids), args.repeats)
    t_sorted = _best_seconds(lambda: store.gather_unchecked("x", sorted_ids), args.repeats)
    t_alloc = _best_seconds(lambda: table.index_select(0, ids), args.repeats)
    row = {
        "row B": row_bytes,
        "memcpy GB/s": f"{gb / t_memcpy:.1f}",
        "store GB/s": f"{gb / t_store:.1f}",
        "% memcpy": f"{100 * t_memcpy / t_store:.0f}",
        "sorted ids GB/s": f"{gb / t_sorted:.1f}",
        "index_select alloc GB/s": f"{gb / t_alloc:.1f}",
    }
    if cuda:
        pinned = torch.empty_like(block).pin_memory()
        pinned.copy_(block)
        dev = torch.empty_like(block, device="cuda")
        t_h2d = _best_seconds(lambda: dev.copy_(pinned, non_blocking=True), args.repeats)
        t_zero = _best_seconds(lambda: store.gather_unchecked("x", ids, "cuda"), args.repeats)
        t_naive = _best_seconds(lambda: table.index_select(0, ids).to("cuda"), args.repeats)
        row.update({
            "pinned H2D GB/s": f"{gb / t_h2d:.1f}",
            "zero-copy GB/s": f"{gb / t_zero:.1f}",
            "% H2D": f"{100 * t_h2d / t_zero:.0f}",
            "CPU gather+copy GB/s": f"{gb / t_naive:.1f}",
            "zero-copy / naive": f"{t_naive / t_zero:.1f}x",
        })
    return row


def run(args: argparse.Namespace) -> list[dict]:
    gen = torch.Generator().manual_seed(args.seed)
    cuda = torch.cuda.is_available()
    rows = [_measure(row_bytes, args, gen, cuda) for row_bytes in args.row_bytes]
    device = torch.cuda.get_device_name() if cuda else "no CUDA device"
    print(f"gathered {args.gather_mib} MiB per call from a {args.table_mib} MiB table, "
          f"best of {args.repeats}; torch threads {torch.get_num_threads()}; {device}")
    print_table(rows)
    return rows
