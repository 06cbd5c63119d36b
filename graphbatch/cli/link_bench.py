"""``graphbatch bench link``: link-loading throughput on the skewed 1M-node graph.

Seed edges are drawn at random from the graph's edges; each batch takes
``--batch-size`` of them, draws their negatives (``--neg-sampling``) and samples the
neighborhood of the pairs' ends (``--fanouts``). graphbatch's ``LinkNeighborLoader`` is
timed by stage (sampling ids; gathering attributes) and end to end, and, where PyG's
sampler backend (pyg-lib or torch-sparse) is importable, PyG's ``LinkNeighborLoader``
end to end on the same graph, seed edges and arguments, in the same run.

Rows (``--out``, ``--csv``): ``loader``, ``ms_per_batch``, ``sample_ms_per_batch`` and
``gather_ms_per_batch`` (None where the stages are not timed apart),
``seed_edges_per_s`` (positive pairs loaded per second), ``edges_per_s`` (sampled
message-passing edges per second), ``nodes_per_s``, ``cores_busy`` (CPU seconds per
wall-clock second), and ``seed_edges_vs_pyg``, ``edges_vs_pyg`` (graphbatch over
PyG; None where PyG did not run).
"""
from __future__ import annotations

import argparse
import math
from operator import itemgetter

import torch

from graphbatch.cli import results
from graphbatch.cli._args import add_check, nonnegative_int, positive_int
from graphbatch.cli.report import formatted, number, print_table
from graphbatch.cli.sampler_bench import _end_to_end, _stages, add_graph_arguments, pyg_backend
from graphbatch.datasets.synthetic import degree_summary, skewed_pairs
from graphbatch.graph import CSCGraph
from graphbatch.loader.link_loader import LinkNeighborLoader

COLUMNS = {
    "loader": itemgetter("loader"),
    "ms/batch": number("ms_per_batch"),
    "sample ms": number("sample_ms_per_batch"),
    "gather ms": number("gather_ms_per_batch"),
    "seed edges/s": number("seed_edges_per_s", ".1f", 1e3, " k"),
    "edges/s": number("edges_per_s", ".2f", 1e6, " M"),
    "nodes/s": number("nodes_per_s", ".2f", 1e6, " M"),
    "cores busy": number("cores_busy", ".2f"),
    "seed edges x PyG": number("seed_edges_vs_pyg", ".1f", suffix="x"),
    "edges x PyG": number("edges_vs_pyg", ".1f", suffix="x"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_graph_arguments(p)
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the graph, the seed edges and the sampling")
    p.add_argument("--num-seed-edges", type=positive_int, default=100_000,
                   help="seed edges of an epoch, drawn at random from the graph's edges")
    p.add_argument("--batch-size", type=positive_int, default=1024,
                   help="seed edges (positive pairs) per batch")
    p.add_argument("--batches", type=positive_int, default=20,
                   help="timed batches per measurement")
    p.add_argument("--warmup", type=nonnegative_int, default=3,
                   help="untimed batches before each measurement")
    p.add_argument("--fanouts", type=int, nargs="+", default=[10, 10],
                   help="neighbors sampled per node, one number per hop")
    p.add_argument("--neg-sampling", choices=("binary", "triplet", "none"), default="binary",
                   help="negatives drawn per batch (PyG's modes)")
    p.add_argument("--amount", type=float, default=1.0,
                   help="negatives per seed edge (an integer for triplet)")
    add_check(p, _check)
    results.add_output_arguments(p)


def _check(args: argparse.Namespace) -> str | None:
    # Each measurement takes full batches (drop_last) from one epoch over the seed edges.
    per_epoch = args.num_seed_edges // args.batch_size
    if per_epoch < args.warmup + args.batches:
        return (f"--num-seed-edges {args.num_seed_edges} in batches of --batch-size "
                f"{args.batch_size} give {per_epoch} full batches, fewer than --warmup "
                f"{args.warmup} + --batches {args.batches}")
    if args.neg_sampling == "triplet" and args.amount != math.ceil(args.amount):
        return f"--amount must be an integer for --neg-sampling triplet, got {args.amount}"
    if args.amount <= 0:
        return f"--amount must be positive, got {args.amount}"
    return None


def _row(timing, name: str, batch_size: int) -> dict:
    """The sampler benchmark's row of ``timing`` with the seed edges per second after the
    stage times, and room for the ratios."""
    row = list(timing.row(name).items())
    return {**dict(row[:4]), "seed_edges_per_s": timing.batches * batch_size / timing.total_s,
            **dict(row[4:]), "seed_edges_vs_pyg": None, "edges_vs_pyg": None}


def run(args: argparse.Namespace) -> list[dict]:
    """Builds the graph, times the loaders, prints the table, writes ``--out`` and
    ``--csv``; returns the rows."""
    data = skewed_pairs(args.num_nodes, args.num_pairs, args.num_features, seed=args.seed)
    print(f"graph: {degree_summary(data.edge_index, data.num_nodes)}")
    graph = CSCGraph.from_data(data)
    torch.manual_seed(args.seed)
    chosen = torch.randperm(data.num_edges)[: args.num_seed_edges]
    neg = None if args.neg_sampling == "none" else (args.neg_sampling, args.amount)
    common = dict(num_neighbors=args.fanouts, edge_label_index=data.edge_index[:, chosen],
                  neg_sampling=neg, batch_size=args.batch_size, shuffle=True, drop_last=True)
    loader = LinkNeighborLoader(data, graph=graph, **common)
    rows = [_row(_stages(loader, args.batches, args.warmup), "graphbatch (stages)",
                 args.batch_size),
            _row(_end_to_end(loader, args.batches, args.warmup), "graphbatch", args.batch_size)]
    backend = pyg_backend()
    if backend is None:
        print("PyG comparison skipped: neither pyg_lib nor torch_sparse is importable")
    else:
        from torch_geometric.loader import LinkNeighborLoader as PyGLinkNeighborLoader
        from torch_geometric.sampler import NegativeSampling

        if neg is not None:
            common["neg_sampling"] = NegativeSampling(*neg)
        pyg = _row(_end_to_end(PyGLinkNeighborLoader(data, **common), args.batches, args.warmup),
                   f"PyG ({backend})", args.batch_size)
        for row in rows:
            row["seed_edges_vs_pyg"] = row["seed_edges_per_s"] / pyg["seed_edges_per_s"]
            row["edges_vs_pyg"] = row["edges_per_s"] / pyg["edges_per_s"]
        rows.append(pyg)
    print_table(formatted(rows, COLUMNS))
    if backend is not None:
        print(f"graphbatch / PyG: {rows[1]['seed_edges_vs_pyg']:.1f}x seed edges/s, "
              f"{rows[1]['edges_vs_pyg']:.1f}x sampled edges/s")
    results.write_outputs(args, "bench link", rows)
    return rows
