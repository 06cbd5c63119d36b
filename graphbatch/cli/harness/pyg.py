"""PyG's own loaders as reference rows (``graphbatch bench --compare pyg``).

PyG's ``NeighborLoader`` needs pyg-lib or torch-sparse; its GraphSAINT samplers need
torch-sparse; its ``ClusterData`` needs METIS from pyg-lib or a torch-sparse built with
it. Neither is on PyPI for every torch, so where none is importable the reference row
says so instead of failing.
"""
from __future__ import annotations

import importlib.util
from typing import Any, Optional

#: The samplers PyG has a loader of the same kind for.
COMPARABLE = ("neighbor", "saint-node", "saint-edge", "saint-rw", "cluster")


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missing_backend(sampler: str) -> Optional[str]:
    """None where PyG can run ``sampler``'s loader here, else why not."""
    if sampler == "neighbor":
        ok, need = _importable("pyg_lib") or _importable("torch_sparse"), "pyg-lib or torch-sparse"
    elif sampler.startswith("saint-"):
        ok, need = _importable("torch_sparse"), "torch-sparse"
    else:
        ok, need = (_importable("pyg_lib") or _importable("torch_sparse"),
                    "pyg-lib or torch-sparse with METIS")
    return None if ok else f"PyG's loader needs {need}: not importable here"


def ratios(ours: dict[str, Any], pyg: dict[str, Any]) -> dict[str, Any]:
    """How graphbatch's summary row compares with PyG's on the same runs: epoch time and
    peak memory as PyG's over ours (above 1: we are faster, leaner), and the test
    metric's difference in points (ours minus PyG's)."""
    return {
        "speedup_vs_pyg": pyg["epoch_s"] / ours["epoch_s"],
        "memory_vs_pyg": pyg["peak_rss_mib"] / ours["peak_rss_mib"],
        "test_diff_vs_pyg": 100 * (ours["test_mean"] - pyg["test_mean"]),
    }
