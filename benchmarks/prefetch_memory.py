"""Peak host memory of a NeighborLoader epoch, with and without prefetch, in batches.

Each setting runs in a fresh process: a seeded random graph (``--nodes``, 10 edges a
node, ``--features`` float32 features), then ``--batches`` batches of PyG's example
workload (batch 1024, 3 hops of 10) with a training step that reads the batch and
takes ``--step-ms``. Reported: the peak RSS above the RSS before the epoch, and that in
units of the mean batch (its tensors' bytes). Usage::

    python benchmarks/prefetch_memory.py [--nodes 300000 --features 128 --batches 20]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

#: name -> NeighborLoader keyword arguments.
SETTINGS = {
    "prefetch=0": {"prefetch": 0},
    "prefetch=2, prefetch_bytes=None": {"prefetch": 2, "prefetch_bytes": None},
    "prefetch=2 (default bytes)": {"prefetch": 2},
    "prefetch=2, 1 thread": {"prefetch": 2, "prefetch_threads": 1},
}


def _one(args: argparse.Namespace, kwargs: dict) -> dict:
    import psutil
    import torch
    from torch_geometric.data import Data
    from graphbatch import NeighborLoader

    gen = torch.Generator().manual_seed(0)
    n = args.nodes
    data = Data(x=torch.randn(n, args.features, generator=gen),
                edge_index=torch.randint(0, n, (2, 10 * n), generator=gen), num_nodes=n)
    loader = NeighborLoader(data, num_neighbors=[10, 10, 10], batch_size=1024, shuffle=True,
                            **kwargs)
    torch.manual_seed(0)
    base = psutil.Process().memory_info().rss
    sizes = []
    start = time.perf_counter()
    for i, batch in enumerate(loader):
        sizes.append(sum(v.nbytes for v in batch.to_dict().values()
                         if isinstance(v, torch.Tensor)))
        float(batch.x.sum())  # reads the whole batch, as a first layer does
        time.sleep(args.step_ms / 1000)
        if i + 1 == args.batches:
            break
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    batch_bytes = sum(sizes) / len(sizes)
    return {"peak_above_start_mb": (peak - base) / 1e6, "batch_mb": batch_bytes / 1e6,
            "in_batches": (peak - base) / batch_bytes, "seconds": elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=300_000)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--step-ms", type=float, default=50.0)
    parser.add_argument("--setting", choices=list(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.nodes, args.features, args.batches) < 1 or args.step_ms < 0:
        parser.error("--nodes, --features and --batches must be positive, --step-ms >= 0")
    if args.setting is not None:
        print(json.dumps(_one(args, SETTINGS[args.setting])))
        return 0
    print(f"{'setting':<34} {'batch MB':>9} {'peak - start MB':>16} {'in batches':>11} {'s':>6}")
    for name in SETTINGS:
        cmd = [sys.executable, __file__, "--setting", name, "--nodes", str(args.nodes),
               "--features", str(args.features), "--batches", str(args.batches),
               "--step-ms", str(args.step_ms)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                      text=True).stdout.strip().splitlines()[-1])
        print(f"{name:<34} {r['batch_mb']:>9.1f} {r['peak_above_start_mb']:>16.1f} "
              f"{r['in_batches']:>11.2f} {r['seconds']:>6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
