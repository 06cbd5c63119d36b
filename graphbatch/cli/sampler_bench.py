"""``graphbatch bench sampler``: neighbor-sampling throughput on the skewed 1M-node graph.

Times the two stages of a batch separately (sampling ids; gathering the node and edge
attributes into a ``Data``), then the loader end to end, and, where PyG's sampler
backend (pyg-lib or torch-sparse) is importable, PyG's NeighborLoader on the same graph.

Rows (``--out``, ``--csv``): ``loader``, ``ms_per_batch``, ``sample_ms_per_batch`` and
``gather_ms_per_batch`` (None where the stages are not timed apart), ``edges_per_s``,
``nodes_per_s``, ``cores_busy`` (CPU seconds per wall-clock second).
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from operator import itemgetter

import torch

from graphbatch.cli import results
from graphbatch.cli._args import add_check, nonnegative_int, positive_int
from graphbatch.cli.report import formatted, number, print_table
from graphbatch.datasets.synthetic import degree_summary, skewed_pairs
from graphbatch.graph import CSCGraph
from graphbatch.loader import NeighborLoader


#: The printed table's columns, made from the rows' numbers.
COLUMNS = {
    "loader": itemgetter("loader"),
    "ms/batch": number("ms_per_batch"),
    "sample ms": number("sample_ms_per_batch"),
    "gather ms": number("gather_ms_per_batch"),
    "edges/s": number("edges_per_s", ".2f", 1e6, " M"),
    "nodes/s": number("nodes_per_s", ".2f", 1e6, " M"),
    "cores busy": number("cores_busy", ".2f"),
}


@dataclass
class Timing:
    staged: bool = False  # sampling and gathering timed apart
    batches: int = 0
    edges: int = 0
    nodes: int = 0
    sample_s: float = 0.0
    gather_s: float = 0.0
    total_s: float = 0.0
    cpu_s: float = 0.0

    def row(self, name: str) -> dict:
        """The row of loader ``name``: per-batch times and throughputs."""
        return {
            "loader": name,
            "ms_per_batch": 1000 * self.total_s / self.batches,
            "sample_ms_per_batch": 1000 * self.sample_s / self.batches if self.staged else None,
            "gather_ms_per_batch": 1000 * self.gather_s / self.batches if self.staged else None,
            "edges_per_s": self.edges / self.total_s,
            "nodes_per_s": self.nodes / self.total_s,
            "cores_busy": self.cpu_s / self.total_s,
        }


def _stages(loader: NeighborLoader, num_batches: int, warmup: int) -> Timing:
    """Sampling and gathering timed apart, in the main process."""
    t = Timing(staged=True)
    loader.batches.new_epoch()
    for i, item in enumerate(loader.batches):
        if i == warmup + num_batches:
            break
        c0, w0 = time.process_time(), time.perf_counter()
        sampled = loader.collate_fn(item)  # ids only: (SampledSubgraph, input_id)
        w1 = time.perf_counter()
        batch = loader.filter_fn(*sampled)
        w2, c2 = time.perf_counter(), time.process_time()
        if i < warmup:
            continue
        t.batches += 1
        t.edges += batch.num_edges
        t.nodes += batch.num_nodes
        t.sample_s += w1 - w0
        t.gather_s += w2 - w1
        t.total_s += w2 - w0
        t.cpu_s += c2 - c0
    return t


def _end_to_end(loader, num_batches: int, warmup: int) -> Timing:
    t = Timing()
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(num_batches):
        batch = next(it)
        t.batches += 1
        t.edges += batch.num_edges
        t.nodes += batch.num_nodes
    t.total_s = time.perf_counter() - w0
    t.cpu_s = time.process_time() - c0
    return t


def pyg_backend() -> str | None:
    """The name of PyG's importable sampling backend, if any."""
    for name in ("pyg_lib", "torch_sparse"):
        try:
            __import__(name)
            return name
        except ImportError:
            continue
    return None


def add_graph_arguments(p: argparse.ArgumentParser) -> None:
    """The options of the skewed synthetic graph (:func:`skewed_pairs`), one definition
    for every benchmark that builds it (``sampler``, ``saint``, ``cluster``)."""
    p.add_argument("--num-nodes", type=positive_int, default=1_000_000,
                   help="nodes of the skewed synthetic graph")
    p.add_argument("--num-pairs", type=positive_int, default=10_000_000,
                   help="random node pairs its edges are made of, each an edge both ways")
    p.add_argument("--num-features", type=positive_int, default=100,
                   help="float32 features per node")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_graph_arguments(p)
    p.add_argument("--fanouts", type=int, nargs="+", default=[15, 10, 5],
                   help="neighbors sampled per node, one number per hop")
    p.add_argument("--batch-size", type=positive_int, default=1024,
                   help="input nodes per batch")
    p.add_argument("--num-input-nodes", type=positive_int, default=100_000,
                   help="input nodes of an epoch, drawn at random from the graph's")
    p.add_argument("--batches", type=positive_int, default=30,
                   help="timed batches per measurement")
    p.add_argument("--warmup", type=nonnegative_int, default=3,
                   help="untimed batches before each measurement")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the graph, the input nodes and the sampling")
    results.add_output_arguments(p)
    add_check(p, _check)


def _check(args: argparse.Namespace) -> str | None:
    # Each measurement takes its batches from one epoch over the input nodes.
    inputs = min(args.num_input_nodes, args.num_nodes)
    per_epoch = math.ceil(inputs / args.batch_size)
    if per_epoch < args.warmup + args.batches:
        return (f"--num-input-nodes {args.num_input_nodes} (of --num-nodes {args.num_nodes}) "
                f"in batches of --batch-size {args.batch_size} give {per_epoch} batches, "
                f"fewer than --warmup {args.warmup} + --batches {args.batches}")
    return None


def run(args: argparse.Namespace) -> list[dict]:
    """Builds the graph, times the loaders, prints the table, writes ``--out`` and
    ``--csv``; returns the rows."""
    t0 = time.perf_counter()
    data = skewed_pairs(args.num_nodes, args.num_pairs, args.num_features, seed=args.seed)
    print(f"graph: {degree_summary(data.edge_index, data.num_nodes)}, "
          f"x {tuple(data.x.shape)} float32 (built in {time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    graph = CSCGraph.from_data(data)
    print(f"CSCGraph built in {time.perf_counter() - t0:.2f} s")
    torch.manual_seed(args.seed)
    inputs = torch.randperm(args.num_nodes)[: args.num_input_nodes]
    common = dict(num_neighbors=args.fanouts, input_nodes=inputs, batch_size=args.batch_size,
                  shuffle=True)
    loader = NeighborLoader(data, graph=graph, **common)
    rows = [_stages(loader, args.batches, args.warmup).row("graphbatch (stages)"),
            _end_to_end(loader, args.batches, args.warmup).row("graphbatch")]
    backend = pyg_backend()
    if backend is None:
        print("PyG comparison skipped: neither pyg_lib nor torch_sparse is importable")
    else:
        from torch_geometric.loader import NeighborLoader as PyGNeighborLoader

        pyg = PyGNeighborLoader(data, **common)
        rows.append(_end_to_end(pyg, args.batches, args.warmup).row(f"PyG ({backend})"))
    print_table(formatted(rows, COLUMNS))
    if backend is not None:
        ratio = rows[1]["edges_per_s"] / rows[2]["edges_per_s"]
        print(f"graphbatch / PyG sampled edges/s: {ratio:.1f}x")
    results.write_outputs(args, "bench sampler", rows)
    return rows
