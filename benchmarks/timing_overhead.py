"""What the harness's stage timing costs: epochs with timing on and off, interleaved.

``graphbatch bench`` times every batch's wait, copy and training step and wraps the
loader's sampling and gathering (``--no-timing`` times whole epochs only). This trains
the same runs both ways, alternating which goes first, and compares the median epoch
time. Small batches are the worst case: the timing cost is per batch.

    python benchmarks/timing_overhead.py [--dataset synthetic-small] [--rounds 6]
"""
from __future__ import annotations

import argparse
import statistics

import torch

from graphbatch.cli.harness.settings import resolve
from graphbatch.cli.harness.train import Dataset, train_run
from graphbatch.datasets import catalog


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="synthetic-small")
    p.add_argument("--sampler", nargs="+", default=["neighbor", "saint-rw", "cluster"])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args()
    data = catalog.load(args.dataset)
    ds = Dataset.of(args.dataset, data, catalog.metric_of(args.dataset))
    print(f"{args.dataset}: {data.num_nodes:,} nodes; {args.rounds} rounds of "
          f"{args.epochs} epochs each way, interleaved")
    for sampler in args.sampler:
        s = resolve(sampler, {"epochs": args.epochs, "patience": args.epochs}, data.num_nodes)
        times: dict[bool, list[float]] = {True: [], False: []}
        for r in range(args.rounds):
            for timing in ((True, False) if r % 2 == 0 else (False, True)):
                run = train_run(ds, sampler, "sage", 0, s, torch.device("cpu"),
                                timing=timing, quiet=True)
                # The first epoch builds buffers and compiles: not counted.
                times[timing] += [c["epoch_s"] for c in run["curve"][1:]]
        on, off = statistics.median(times[True]), statistics.median(times[False])
        print(f"{sampler:9s} median epoch: timing on {1000 * on:8.1f} ms, off "
              f"{1000 * off:8.1f} ms, cost {100 * (on - off) / off:+.2f}% "
              f"({len(times[True])} epochs each)")


if __name__ == "__main__":
    main()
