"""Prints the GPU targets of issue 15 beside what ``benchmarks/gpu_check.sh`` measured.

Usage: ``python benchmarks/gpu_targets.py GATHER.json PIPELINE.json`` (the ``--out``
files of ``graphbatch bench gather`` and ``bench pipeline``). Exits 1 if a target is
missed or a measurement is absent (no CUDA: the CUDA columns are None).
"""
from __future__ import annotations

import sys
from pathlib import Path

from graphbatch.cli import results

#: Row sizes (bytes) from which the zero-copy targets apply.
MIN_ROW_BYTES = 256


def gather_checks(rows: list[dict]) -> list[tuple[str, str, bool]]:
    """(what, measured, met) for every row of at least MIN_ROW_BYTES."""
    checks = []
    for row in rows:
        if row["row_bytes"] < MIN_ROW_BYTES:
            continue
        pct, speedup = row.get("zero_copy_pct_of_h2d"), row.get("zero_copy_speedup_vs_naive")
        b = row["row_bytes"]
        checks.append((f"{b} B rows: zero-copy >= 85% of pinned H2D",
                       "absent" if pct is None else f"{pct:.0f}%", pct is not None and pct >= 85))
        checks.append((f"{b} B rows: zero-copy >= 2x CPU gather + .to('cuda')",
                       "absent" if speedup is None else f"{speedup:.2f}x",
                       speedup is not None and speedup >= 2))
    return checks


def pipeline_checks(rows: list[dict]) -> list[tuple[str, str, bool]]:
    """(what, measured, met): the share of epoch time spent waiting, with prefetch."""
    checks = []
    for row in rows:
        if not row["prefetch"]:
            continue
        share = row["wait_ms_per_batch"] * row["batches"] / (1000 * row["epoch_s"])
        checks.append((f"{row['mode']}: waiting < 10% of epoch time", f"{100 * share:.1f}%",
                       share < 0.10))
    return checks


def main(gather_path: str, pipeline_path: str) -> int:
    checks = (gather_checks(results.read(Path(gather_path))["rows"])
              + pipeline_checks(results.read(Path(pipeline_path))["rows"]))
    width = max(len(what) for what, _, _ in checks)
    for what, measured, met in checks:
        print(f"{what:<{width}}  {measured:>8}  {'met' if met else 'MISSED'}")
    return 0 if checks and all(met for _, _, met in checks) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
