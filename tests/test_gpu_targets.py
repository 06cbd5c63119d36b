"""benchmarks/gpu_targets.py: the issue's GPU targets judged from bench rows."""
from __future__ import annotations

import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_targets.py"
_spec = importlib.util.spec_from_file_location("gpu_targets", _path)
targets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(targets)


def gather_row(row_bytes, pct, speedup):
    return {"row_bytes": row_bytes, "zero_copy_pct_of_h2d": pct,
            "zero_copy_speedup_vs_naive": speedup}


def test_gather_targets_apply_from_256_byte_rows():
    checks = targets.gather_checks([gather_row(128, 10.0, 0.5), gather_row(256, 85.0, 2.0),
                                    gather_row(4096, 84.9, 3.0)])
    assert [met for _, _, met in checks] == [True, True, False, True]
    assert all("128 B" not in what for what, _, _ in checks)


def test_absent_cuda_columns_miss():
    checks = targets.gather_checks([gather_row(512, None, None)])
    assert [(m, met) for _, m, met in checks] == [("absent", False), ("absent", False)]


def test_wait_share_with_prefetch_only():
    rows = [{"mode": "no prefetch", "prefetch": 0, "batches": 10, "wait_ms_per_batch": 50.0,
             "epoch_s": 1.0},
            {"mode": "prefetch", "prefetch": 2, "batches": 10, "wait_ms_per_batch": 9.0,
             "epoch_s": 1.0},
            {"mode": "prefetch 1", "prefetch": 1, "batches": 10, "wait_ms_per_batch": 10.0,
             "epoch_s": 1.0}]
    checks = targets.pipeline_checks(rows)
    assert [(m, met) for _, m, met in checks] == [("9.0%", True), ("10.0%", False)]
