"""``graphbatch bench saint``: GraphSAINT sampler throughput and pre-sampling time on
the skewed 1M-node graph, against PyG's samplers when torch-sparse is importable."""
from __future__ import annotations

import argparse
import time
from statistics import median

import torch

from graphbatch.cli._args import int_at_least, positive_int
from graphbatch.cli.report import print_table
from graphbatch.cli.sampler_bench import pyg_backend
from graphbatch.datasets.synthetic import degree_summary, skewed_pairs
from graphbatch.graph import CSRGraph
from graphbatch.loader import (
    GraphSAINTEdgeSampler, GraphSAINTNodeSampler, GraphSAINTRandomWalkSampler,
)
from graphbatch.sampling.saint_norm import estimate


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-nodes", type=positive_int, default=1_000_000)
    p.add_argument("--num-pairs", type=positive_int, default=10_000_000)
    p.add_argument("--num-features", type=positive_int, default=100)
    p.add_argument("--node-budget", type=positive_int, default=8000,
                   help="node sampler batch_size")
    p.add_argument("--edge-budget", type=positive_int, default=4000,
                   help="edge sampler batch_size")
    p.add_argument("--roots", type=positive_int, default=3000,
                   help="random-walk sampler batch_size")
    p.add_argument("--walk-length", type=positive_int, default=2)
    # One warm-up subgraph, then the timed ones.
    p.add_argument("--steps", type=int_at_least(2), default=200,
                   help="timed subgraphs per sampler and round")
    p.add_argument("--rounds", type=positive_int, default=3,
                   help="rounds per sampler, graphbatch then PyG in each; medians are reported, "
                        "so that the machine's drift over a run moves both sides alike")
    p.add_argument("--coverage", type=positive_int, default=10,
                   help="sample_coverage for pre-sampling")
    p.add_argument("--prefetch-threads", type=positive_int, default=2,
                   help="the loaders' prefetch_threads (threads making whole subgraphs)")
    p.add_argument("--seed", type=int, default=0)


def _throughput(loader, steps: int) -> tuple[float, float]:
    """(subgraphs/s, sampled nodes/s) of iterating ``loader`` end to end."""
    it = iter(loader)
    next(it)  # warm-up
    nodes = 0
    start = time.perf_counter()
    for _ in range(steps - 1):
        nodes += next(it).num_nodes
    elapsed = time.perf_counter() - start
    return (steps - 1) / elapsed, nodes / elapsed


def _pyg_loader(cls, data, budget: tuple, steps: int):
    """PyG's sampler of the same name (torch-sparse importable)."""
    import torch_geometric.loader as pyg

    return getattr(pyg, cls.__name__)(data, *budget, num_steps=steps + 1, log=False)


def run(args: argparse.Namespace) -> list[dict]:
    data = skewed_pairs(args.num_nodes, args.num_pairs, args.num_features, seed=args.seed)
    print(f"graph: {degree_summary(data.edge_index, data.num_nodes)}")
    graph = CSRGraph.from_data(data)
    with_pyg = pyg_backend() == "torch_sparse"
    if not with_pyg:
        print("PyG comparison skipped: torch_sparse is not importable")
    configs = [
        ("node", GraphSAINTNodeSampler, (args.node_budget,)),
        ("edge", GraphSAINTEdgeSampler, (args.edge_budget,)),
        ("random walk", GraphSAINTRandomWalkSampler, (args.roots, args.walk_length)),
    ]
    rows = []
    for name, cls, budget in configs:
        torch.manual_seed(args.seed)
        loader = cls(data, *budget, num_steps=args.steps + 1, graph=graph, log=False,
                     prefetch_threads=args.prefetch_threads)
        start = time.perf_counter()
        norm = estimate(loader.saint_sampler, args.coverage, args.seed, log=False)
        presample_s = time.perf_counter() - start
        pyg_loader = _pyg_loader(cls, data, budget, args.steps) if with_pyg else None
        ours, theirs, failure = [], [], None
        for _ in range(args.rounds):
            ours.append(_throughput(loader, args.steps))
            if pyg_loader is not None and failure is None:
                try:
                    theirs.append(_throughput(pyg_loader, args.steps)[0])
                except RuntimeError as exc:  # PyG's edge sampler allocates batch_size x E floats
                    failure = str(exc).splitlines()[0][:60]
        per_s = median(r for r, _ in ours)
        row = {
            "sampler": name,
            "budget": " x ".join(map(str, budget)),
            "subgraphs/s": f"{per_s:.1f}",
            "nodes/s": f"{median(n for _, n in ours) / 1e6:.2f} M",
            f"pre-sampling (coverage {args.coverage})": f"{presample_s:.1f} s, {norm.num_samples} subgraphs",
        }
        if failure is not None:
            row["PyG subgraphs/s"] = f"fails: {failure}"
            row["ratio"] = "-"
        elif theirs:
            ratios = [a / b for (a, _), b in zip(ours, theirs)]
            row["PyG subgraphs/s"] = f"{median(theirs):.1f}"
            row["ratio"] = f"{per_s / median(theirs):.1f}x (rounds {min(ratios):.1f}-{max(ratios):.1f})"
        rows.append(row)
    print(f"medians of {args.rounds} rounds of {args.steps} subgraphs")
    print_table(rows)
    return rows
