"""``graphbatch bench saint``: GraphSAINT sampler throughput and pre-sampling time on
the skewed 1M-node graph, against PyG's samplers when torch-sparse is importable.

Rows (``--out``, ``--csv``), one per sampler, medians over ``--rounds``: ``sampler``,
``budget`` (nodes, edges or walk roots per subgraph), ``walk_length`` (None but for
random walks), ``subgraphs_per_s``, ``nodes_per_s``, ``presample_s`` and
``presample_subgraphs`` (the pre-sampling to ``--sample-coverage``); against PyG (None
where it did not run): ``pyg_subgraphs_per_s``, ``speedup_vs_pyg`` and its range over
the rounds, ``speedup_vs_pyg_min`` and ``speedup_vs_pyg_max``, and ``pyg_error`` where
PyG's sampler failed.
"""
from __future__ import annotations

import argparse
import time
from operator import itemgetter
from statistics import median

import torch

from graphbatch.cli import results
from graphbatch.cli._args import positive_int
from graphbatch.cli.report import Cell, formatted, number, print_table
from graphbatch.cli.sampler_bench import add_graph_arguments, pyg_backend
from graphbatch.datasets.synthetic import degree_summary, skewed_pairs
from graphbatch.graph import CSCGraph
from graphbatch.loader import (
    GraphSAINTEdgeSampler, GraphSAINTNodeSampler, GraphSAINTRandomWalkSampler,
)
from graphbatch.sampling.saint_norm import estimate


def _budget(row: dict) -> str:
    """The sampler's arguments as PyG's signature orders them: ``roots x walk_length``."""
    if row["walk_length"] is None:
        return str(row["budget"])
    return f"{row['budget']} x {row['walk_length']}"


def _pyg(row: dict) -> str:
    """PyG's subgraphs/s, or why its sampler failed."""
    if row["pyg_error"] is not None:
        return f"fails: {row['pyg_error']}"
    return number("pyg_subgraphs_per_s")(row)


def _speedup(row: dict) -> str:
    if row["speedup_vs_pyg"] is None:
        return "-"
    return (f"{row['speedup_vs_pyg']:.1f}x (rounds {row['speedup_vs_pyg_min']:.1f}-"
            f"{row['speedup_vs_pyg_max']:.1f})")


def _columns(coverage: int, with_pyg: bool) -> dict[str, Cell]:
    """The printed table's columns, made from the rows' numbers."""
    columns = {
        "sampler": itemgetter("sampler"),
        "budget": _budget,
        "subgraphs/s": number("subgraphs_per_s"),
        "nodes/s": number("nodes_per_s", ".2f", 1e6, " M"),
        f"pre-sampling (coverage {coverage})":
            lambda r: f"{r['presample_s']:.1f} s, {r['presample_subgraphs']} subgraphs",
    }
    if with_pyg:
        columns.update({"PyG subgraphs/s": _pyg, "ratio": _speedup})
    return columns


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_graph_arguments(p)
    p.add_argument("--node-budget", type=positive_int, default=8000,
                   help="nodes per subgraph of the node sampler (its batch_size)")
    p.add_argument("--edge-budget", type=positive_int, default=4000,
                   help="edges per subgraph of the edge sampler (its batch_size)")
    p.add_argument("--roots", type=positive_int, default=3000,
                   help="walk roots per subgraph of the random-walk sampler (its batch_size)")
    p.add_argument("--walk-length", type=positive_int, default=2,
                   help="hops per walk of the random-walk sampler")
    p.add_argument("--batches", type=positive_int, default=200,
                   help="timed subgraphs per sampler and round, after one untimed")
    p.add_argument("--rounds", type=positive_int, default=3,
                   help="rounds per sampler, graphbatch then PyG in each; medians are reported, "
                        "so that the machine's drift over a run moves both sides alike")
    p.add_argument("--sample-coverage", type=positive_int, default=10,
                   help="pre-sampling's goal: times each node is sampled, on average")
    p.add_argument("--prefetch-threads", type=positive_int, default=2,
                   help="the loaders' prefetch_threads (threads making whole subgraphs)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the graph and the sampling")
    results.add_output_arguments(p)


def _throughput(loader, batches: int) -> tuple[float, float]:
    """(subgraphs/s, sampled nodes/s) of iterating ``loader`` end to end: one warm-up
    subgraph, then ``batches`` timed (the loader's ``num_steps`` is ``batches + 1``)."""
    it = iter(loader)
    next(it)
    nodes = 0
    start = time.perf_counter()
    for _ in range(batches):
        nodes += next(it).num_nodes
    elapsed = time.perf_counter() - start
    return batches / elapsed, nodes / elapsed


def _pyg_loader(cls, data, budget: tuple, batches: int):
    """PyG's sampler of the same name (torch-sparse importable)."""
    import torch_geometric.loader as pyg

    return getattr(pyg, cls.__name__)(data, *budget, num_steps=batches + 1, log=False)


def run(args: argparse.Namespace) -> list[dict]:
    """Pre-samples and times each sampler, prints the table, writes ``--out`` and
    ``--csv``; returns the rows."""
    data = skewed_pairs(args.num_nodes, args.num_pairs, args.num_features, seed=args.seed)
    print(f"graph: {degree_summary(data.edge_index, data.num_nodes)}")
    graph = CSCGraph.from_data(data)
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
        loader = cls(data, *budget, num_steps=args.batches + 1, graph=graph, log=False,
                     prefetch_threads=args.prefetch_threads)
        start = time.perf_counter()
        norm = estimate(loader.saint_sampler, args.sample_coverage, args.seed, log=False)
        presample_s = time.perf_counter() - start
        pyg_loader = _pyg_loader(cls, data, budget, args.batches) if with_pyg else None
        ours, theirs, failure = [], [], None
        for _ in range(args.rounds):
            ours.append(_throughput(loader, args.batches))
            if pyg_loader is not None and failure is None:
                try:
                    theirs.append(_throughput(pyg_loader, args.batches)[0])
                except RuntimeError as exc:  # PyG's edge sampler allocates batch_size x E floats
                    failure = str(exc).splitlines()[0][:60]
        per_s = median(r for r, _ in ours)
        row = {
            "sampler": name,
            "budget": budget[0],
            "walk_length": budget[1] if len(budget) > 1 else None,
            "subgraphs_per_s": per_s,
            "nodes_per_s": median(n for _, n in ours),
            "presample_s": presample_s,
            "presample_subgraphs": norm.num_samples,
            **dict.fromkeys(("pyg_subgraphs_per_s", "speedup_vs_pyg", "speedup_vs_pyg_min",
                             "speedup_vs_pyg_max")),
            "pyg_error": failure,
        }
        if failure is None and theirs:
            ratios = [a / b for (a, _), b in zip(ours, theirs)]
            row.update(pyg_subgraphs_per_s=median(theirs),
                       speedup_vs_pyg=per_s / median(theirs),
                       speedup_vs_pyg_min=min(ratios), speedup_vs_pyg_max=max(ratios))
        rows.append(row)
    print(f"medians of {args.rounds} rounds of {args.batches} subgraphs")
    print_table(formatted(rows, _columns(args.sample_coverage, with_pyg)))
    results.write_outputs(args, "bench saint", rows)
    return rows
