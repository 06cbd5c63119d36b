"""The threading-layer choice: TBB by default; the OpenMP fallback still runs workers."""
import importlib.metadata
import os
import subprocess
import sys
import textwrap

import pytest

import graphbatch
import graphbatch.datasets


def _tbb_wheel_installed() -> bool:
    try:
        importlib.metadata.distribution("tbb")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_default_layer_is_tbb_where_its_wheel_is_installed():
    """TBB where the ``tbb`` wheel is (x86_64); elsewhere the OpenMP fallback, whose
    loaders start workers with forkserver."""
    import numba

    if os.environ.get("GRAPHBATCH_THREADING_LAYER"):
        pytest.skip("GRAPHBATCH_THREADING_LAYER chooses the layer in this environment")

    sampler = graphbatch.NeighborSampler(
        graphbatch.CSRGraph(graphbatch.datasets.planted_classes(500).edge_index), [3])
    sampler.sample([0, 1, 2])
    expected = "tbb" if _tbb_wheel_installed() else "omp"
    assert graphbatch._numba.THREADING_LAYER == expected
    assert graphbatch._numba.FORK_SAFE == (expected == "tbb")
    assert numba.threading_layer() == expected


def test_without_tbb_the_layer_falls_back_to_openmp(monkeypatch):
    monkeypatch.setattr(graphbatch._numba, "_preload_tbb", lambda: False)
    monkeypatch.delenv("GRAPHBATCH_THREADING_LAYER", raising=False)
    assert graphbatch._numba._choose_layer() == "omp"
    monkeypatch.setenv("GRAPHBATCH_THREADING_LAYER", "tbb")
    with pytest.raises(ImportError, match="GRAPHBATCH_THREADING_LAYER=tbb"):
        graphbatch._numba._choose_layer()


def _run(script: str, layer: str) -> subprocess.CompletedProcess:
    env = {"GRAPHBATCH_THREADING_LAYER": layer, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env,
                          capture_output=True, text=True, timeout=300)


WORKERS_AFTER_MAIN = """
    import torch
    import numba
    import graphbatch
    from graphbatch.datasets import planted_classes
    data = planted_classes(2000)
    def epoch(num_workers):
        torch.manual_seed(0)
        loader = graphbatch.NeighborLoader(data, [5, 5], batch_size=256, num_workers=num_workers)
        return [b.n_id for b in loader]
    main = epoch(0)          # parallel kernels run in this process first
    workers = epoch(2)       # then in worker processes
    assert len(main) == len(workers) and all(torch.equal(a, b) for a, b in zip(main, workers))
    print(numba.threading_layer(), graphbatch._numba.FORK_SAFE)
"""


def test_openmp_fallback_starts_workers_with_forkserver():
    proc = _run(WORKERS_AFTER_MAIN, "omp")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["omp", "False"]


def test_bad_layer_name_is_refused():
    proc = _run("import graphbatch", "cilk")
    assert proc.returncode != 0
    assert "GRAPHBATCH_THREADING_LAYER" in proc.stderr and "'cilk'" in proc.stderr
