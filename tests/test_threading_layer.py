"""The threading-layer choice: TBB by default; the OpenMP fallback still runs workers."""
import subprocess
import sys
import textwrap

import graphbatch
import graphbatch.datasets


def test_tbb_is_the_default_layer():
    import numba

    assert graphbatch._numba.THREADING_LAYER == "tbb"
    assert graphbatch._numba.FORK_SAFE
    sampler = graphbatch.NeighborSampler(
        graphbatch.CSRGraph(graphbatch.datasets.planted_classes(500).edge_index), [3])
    sampler.sample([0, 1, 2])
    assert numba.threading_layer() == "tbb"


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
