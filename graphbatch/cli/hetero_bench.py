"""``graphbatch bench hetero``: heterogeneous neighbor sampling against PyG's loader.

The graph is ``bench sampler``'s skewed 1M-node graph split into 3 node types (node
``v`` becomes node ``v // 3`` of type ``n{v % 3}``, with its features) and 6 edge types
``(n{a}, to, n{b})``, ``a != b``: every edge between nodes of different types (about
two thirds of them; edges within a type are dropped, which would make 3 more edge
types). Both loaders sample the same seeds of type ``n0`` with the same fanouts for
every edge type, side by side in one run: graphbatch's ``NeighborLoader`` and, where
its backend (pyg-lib or torch-sparse) is importable, PyG's.

Each is timed in stages (sampling the ids; gathering the features into a
``HeteroData``) and end to end. Rows (``--out``, ``--csv``): those of ``bench
sampler`` (``loader``, ``ms_per_batch``, ``sample_ms_per_batch``,
``gather_ms_per_batch``, ``edges_per_s``, ``nodes_per_s``, ``cores_busy``), plus
``sampled_edges_per_s`` (edges per second of sampling alone), ``graph_mib`` (the
sampling layout's memory), ``graph_build_s`` and ``speedup_vs_pyg`` (graphbatch rows:
PyG's time over graphbatch's per sampled edge, of the sampling stage or end to end).
"""
from __future__ import annotations

import argparse
import time
from operator import itemgetter

import torch
from torch_geometric.data import HeteroData

from graphbatch.cli import results
from graphbatch.cli._args import add_check
from graphbatch.cli.report import formatted, number, print_table
from graphbatch.cli.sampler_bench import (
    COLUMNS as SAMPLER_COLUMNS, Timing, _end_to_end, _stages, pyg_backend,
)
from graphbatch.cli.sampler_bench import add_arguments as add_sampler_arguments
from graphbatch.datasets.synthetic import degree_summary, skewed_pairs
from graphbatch.loader.hetero_loader import HeteroNeighborLoader
from graphbatch.sampling.hetero import HeteroGraph

NUM_TYPES = 3
COLUMNS = {
    **SAMPLER_COLUMNS,
    "sampled edges/s": number("sampled_edges_per_s", ".2f", 1e6, " M"),
    "graph MiB": number("graph_mib", ".0f"),
    "vs PyG": number("speedup_vs_pyg", ".1f", suffix="x"),
}
COLUMNS["loader"] = itemgetter("loader")


def typed_graph(data) -> HeteroData:
    """``data`` split into :data:`NUM_TYPES` node types by id (``v`` -> node ``v // 3``
    of type ``n{v % 3}``) and one edge type per ordered pair of distinct types; edges
    within a type are dropped."""
    h = HeteroData()
    for t in range(NUM_TYPES):
        h[f"n{t}"].x = data.x[t::NUM_TYPES]
    src, dst = data.edge_index
    pair = (src % NUM_TYPES) * NUM_TYPES + dst % NUM_TYPES
    order = torch.argsort(pair, stable=True)
    counts = torch.bincount(pair, minlength=NUM_TYPES ** 2).tolist()
    start = 0
    for p, count in enumerate(counts):
        a, b = divmod(p, NUM_TYPES)
        if a != b:
            chosen = order[start:start + count]
            h[f"n{a}", "to", f"n{b}"].edge_index = torch.stack([src[chosen], dst[chosen]]) // NUM_TYPES
        start += count
    return h


class _PyGStages:
    """PyG's loader as :func:`~graphbatch.cli.sampler_bench._stages` times a graphbatch
    one: ``batches`` (an epoch's shuffled input positions), ``collate_fn`` (sampling)
    and ``filter_fn`` (the ``HeteroData``)."""

    def __init__(self, loader, num_inputs: int, batch_size: int) -> None:
        self.loader = loader
        self.num_inputs = num_inputs
        self.batch_size = batch_size
        self.batches = self
        self.order: list[torch.Tensor] = []

    def new_epoch(self) -> None:
        self.order = list(torch.randperm(self.num_inputs).split(self.batch_size))

    def __iter__(self):
        return iter(self.order)

    def collate_fn(self, index: torch.Tensor) -> tuple:
        # What PyG's collate_fn does before its filter_fn (which it also runs here by
        # default, filter_per_worker being true for in-memory data).
        return (self.loader.node_sampler.sample_from_nodes(self.loader.input_data[index]),)

    def filter_fn(self, out) -> HeteroData:
        return self.loader.filter_fn(out)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``bench sampler``'s options (its fanouts apply to every edge type), other
    default fanouts."""
    add_sampler_arguments(p)
    p.set_defaults(fanouts=[10, 5, 3])
    add_check(p, _check)


def _check(args: argparse.Namespace) -> str | None:
    # The seeds are nodes of type n0: a third of the graph's.
    seeds = min(args.num_input_nodes, -(-args.num_nodes // NUM_TYPES))
    per_epoch = -(-seeds // args.batch_size)
    if per_epoch < args.warmup + args.batches:
        return (f"--num-input-nodes {args.num_input_nodes} (of the {seeds} nodes of type n0) in "
                f"batches of --batch-size {args.batch_size} give {per_epoch} batches, fewer "
                f"than --warmup {args.warmup} + --batches {args.batches}")
    return None


def _row(name: str, timing: Timing, graph_bytes: int, build_s: float) -> dict:
    row = timing.row(name)
    row["sampled_edges_per_s"] = timing.edges / timing.sample_s if timing.staged else None
    row["graph_mib"] = graph_bytes / 2**20
    row["graph_build_s"] = build_s
    row["speedup_vs_pyg"] = None
    return row


def _pyg_csc_bytes(loader) -> int:
    sampler = loader.node_sampler
    tensors = [*sampler.colptr_dict.values(), *sampler.row_dict.values(),
               *(p for p in (sampler.perm or {}).values() if p is not None)]
    return sum(t.numel() * t.element_size() for t in tensors)


def run(args: argparse.Namespace) -> list[dict]:
    """Builds the typed graph, times both loaders, prints the table and the ratios,
    writes ``--out`` and ``--csv``; returns the rows."""
    t0 = time.perf_counter()
    data = skewed_pairs(args.num_nodes, args.num_pairs, args.num_features, seed=args.seed)
    print(f"graph: {degree_summary(data.edge_index, data.num_nodes)}")
    hetero = typed_graph(data)
    del data
    print(f"split into {len(hetero.node_types)} node types, {len(hetero.edge_types)} edge types, "
          f"{hetero.num_edges:,} edges (built in {time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    graph = HeteroGraph.from_data(hetero)
    build_s = time.perf_counter() - t0
    print(f"HeteroGraph: {graph.nbytes / 2**20:.0f} MiB, built in {build_s:.2f} s")
    num_inputs = min(args.num_input_nodes, hetero["n0"].num_nodes)
    torch.manual_seed(args.seed)
    inputs = torch.randperm(hetero["n0"].num_nodes)[:num_inputs]
    common = dict(num_neighbors=args.fanouts, input_nodes=("n0", inputs),
                  batch_size=args.batch_size, shuffle=True)
    loader = HeteroNeighborLoader(hetero, graph=graph, **common)
    timings = {"graphbatch (stages)": _stages(loader, args.batches, args.warmup),
               "graphbatch": _end_to_end(loader, args.batches, args.warmup)}
    rows = [_row(name, t, graph.nbytes, build_s) for name, t in timings.items()]
    backend = pyg_backend()
    if backend is None:
        print("PyG comparison skipped: neither pyg_lib nor torch_sparse is importable")
    else:
        from torch_geometric.loader import NeighborLoader as PyGNeighborLoader

        t0 = time.perf_counter()
        pyg = PyGNeighborLoader(hetero, **common)
        pyg_build_s = time.perf_counter() - t0
        pyg_bytes = _pyg_csc_bytes(pyg)
        stages = _stages(_PyGStages(pyg, num_inputs, args.batch_size), args.batches, args.warmup)
        end_to_end = _end_to_end(pyg, args.batches, args.warmup)
        rows += [_row(f"PyG ({backend}) (stages)", stages, pyg_bytes, pyg_build_s),
                 _row(f"PyG ({backend})", end_to_end, pyg_bytes, pyg_build_s)]
        rows[0]["speedup_vs_pyg"] = rows[0]["sampled_edges_per_s"] / rows[2]["sampled_edges_per_s"]
        rows[1]["speedup_vs_pyg"] = rows[1]["edges_per_s"] / rows[3]["edges_per_s"]
    print_table(formatted(rows, COLUMNS))
    if backend is not None:
        print(f"graphbatch / PyG per sampled edge: sampling {rows[0]['speedup_vs_pyg']:.1f}x, "
              f"end to end {rows[1]['speedup_vs_pyg']:.1f}x")
    results.write_outputs(args, "bench hetero", rows)
    return rows
