"""``graphbatch bench gather``: feature-gather bandwidth against the memcpy limit.

For each row size, gathers the same number of bytes four ways from a table larger than
the caches: a plain copy of a contiguous block (memcpy, the limit), the feature store
(reused buffers), an allocating ``index_select``, and with sorted ids. On a CUDA machine
it adds the zero-copy GPU gather, the pinned host-to-device copy of the same bytes, and
the naive CPU gather followed by ``.to('cuda')``.

Rows (``--out``, ``--csv``), one per row size, bandwidths in GB/s (1e9 bytes):
``row_bytes``, ``memcpy_gb_per_s``, ``store_gb_per_s``, ``store_pct_of_memcpy``,
``sorted_ids_gb_per_s``, ``index_select_gb_per_s``; the CUDA paths (None without CUDA):
``pinned_h2d_gb_per_s``, ``zero_copy_gb_per_s``, ``zero_copy_pct_of_h2d``,
``cpu_gather_copy_gb_per_s``, ``zero_copy_speedup_vs_naive``.
"""
from __future__ import annotations

import argparse
import time
from operator import itemgetter
from typing import Callable

import torch

from graphbatch.cli import results
from graphbatch.cli._args import add_check, positive_int
from graphbatch.cli.report import formatted, number, print_table
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


#: The printed table's columns, made from the rows' numbers; the CUDA ones on CUDA only.
COLUMNS = {
    "row B": itemgetter("row_bytes"),
    "memcpy GB/s": number("memcpy_gb_per_s"),
    "store GB/s": number("store_gb_per_s"),
    "% memcpy": number("store_pct_of_memcpy", ".0f"),
    "sorted ids GB/s": number("sorted_ids_gb_per_s"),
    "index_select alloc GB/s": number("index_select_gb_per_s"),
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
                   help="timed calls per measurement, the fastest reported")
    p.add_argument("--seed", type=int, default=0, help="random seed of the table and the row ids")
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


def _measure(row_bytes: int, args: argparse.Namespace, gen: torch.Generator, cuda: bool) -> dict:
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
    t_memcpy = _best_seconds(lambda: dst.copy_(block), args.repeats)
    t_store = _best_seconds(lambda: store.gather_unchecked("x", ids), args.repeats)
    t_sorted = _best_seconds(lambda: store.gather_unchecked("x", sorted_ids), args.repeats)
    t_alloc = _best_seconds(lambda: table.index_select(0, ids), args.repeats)
    row = {
        "row_bytes": row_bytes,
        "memcpy_gb_per_s": gb / t_memcpy,
        "store_gb_per_s": gb / t_store,
        "store_pct_of_memcpy": 100 * t_memcpy / t_store,
        "sorted_ids_gb_per_s": gb / t_sorted,
        "index_select_gb_per_s": gb / t_alloc,
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
    rows = [_measure(row_bytes, args, gen, cuda) for row_bytes in args.row_bytes]
    device = torch.cuda.get_device_name() if cuda else "no CUDA device"
    print(f"gathered {args.gather_mib} MiB per call from a {args.table_mib} MiB table, "
          f"best of {args.repeats}; torch threads {torch.get_num_threads()}; {device}")
    print_table(formatted(rows, {**COLUMNS, **CUDA_COLUMNS} if cuda else COLUMNS))
    results.write_outputs(args, "bench gather", rows)
    return rows
