"""``graphbatch bench cluster``: METIS time and Cluster-GCN loader throughput on the
skewed 1M-node graph, against PyG's ClusterLoader on the same partition (PyG's METIS
call, which needs pyg-lib or a torch-sparse built with METIS, replaced by ours).

Rows (``--out``, ``--csv``), one per loader: ``loader``, ``prefetch`` (None for PyG's,
which has none), ``batches_per_s``, ``edges_per_s``, ``peak_rss_mib`` (the process's
so far), and in every row the partition they share was made in: ``metis_s`` (pymetis
on a ready adjacency) and ``cluster_data_s`` (ClusterData: symmetrize, METIS,
partition).
"""
from __future__ import annotations

import argparse
import time
from operator import itemgetter

import torch

from graphbatch.cli import results
from graphbatch.cli._args import add_check, positive_int
from graphbatch.cli.report import formatted, number, peak_rss_mib, print_table
from graphbatch.cli.sampler_bench import add_graph_arguments
from graphbatch.datasets.synthetic import degree_summary, skewed_pairs
from graphbatch.graph import CSCGraph
from graphbatch.loader import ClusterData, ClusterLoader
from graphbatch.sampling.cluster import metis_adjacency


#: The printed table's columns, made from the rows' numbers.
COLUMNS = {
    "loader": itemgetter("loader"),
    "batches/s": number("batches_per_s"),
    "edges/s": number("edges_per_s", ".2f", 1e6, " M"),
    "peak RSS": number("peak_rss_mib", ".0f", suffix=" MiB"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_graph_arguments(p)
    p.add_argument("--num-parts", type=positive_int, default=1000,
                   help="clusters METIS cuts the graph into")
    p.add_argument("--batch-size", type=positive_int, default=20, help="clusters per batch")
    p.add_argument("--batches", type=positive_int, default=100,
                   help="timed batches per loader, after one untimed")
    p.add_argument("--seed", type=int, default=0, help="random seed of the graph and the batches")
    results.add_output_arguments(p)
    add_check(p, _check)


def _check(args: argparse.Namespace) -> str | None:
    # pymetis is called directly, before ClusterData could refuse this.
    if args.num_parts > args.num_nodes:
        return f"--num-parts {args.num_parts} exceeds --num-nodes {args.num_nodes}"
    return None


def _epochs(loader):
    while True:
        yield from loader


def _throughput(loader, batches: int) -> tuple[float, float]:
    """(batches/s, edges/s) of iterating ``loader`` end to end, epoch after epoch."""
    it = _epochs(loader)
    next(it)
    edges = 0
    start = time.perf_counter()
    for _ in range(batches):
        edges += next(it).num_edges
    elapsed = time.perf_counter() - start
    return batches / elapsed, edges / elapsed


def run(args: argparse.Namespace) -> list[dict]:
    """Partitions the graph, times the loaders, prints the table, writes ``--out`` and
    ``--csv``; returns the rows."""
    import pymetis

    data = skewed_pairs(args.num_nodes, args.num_pairs, args.num_features, seed=args.seed)
    print(f"graph: {degree_summary(data.edge_index, data.num_nodes)}")
    graph = CSCGraph.from_data(data)
    xadj, adjncy, _ = metis_adjacency(graph)
    start = time.perf_counter()
    pymetis.part_graph(args.num_parts, adjacency=pymetis.CSRAdjacency(xadj, adjncy))
    direct_s = time.perf_counter() - start
    del xadj, adjncy
    start = time.perf_counter()
    cluster_data = ClusterData(data, args.num_parts, graph=graph, log=False)
    ours_s = time.perf_counter() - start
    print(f"METIS into {args.num_parts} parts: pymetis on a ready adjacency {direct_s:.1f} s, "
          f"ClusterData (symmetrize + METIS + partition) {ours_s:.1f} s: "
          f"{100 * (ours_s / direct_s - 1):.0f}% added")

    partition = {"metis_s": direct_s, "cluster_data_s": ours_s}
    rows = []
    # With prefetch, two threads make batches in parallel; without, the loop makes
    # them one at a time (PyG's loader has no prefetch), so both are reported.
    for prefetch in (2, 0):
        torch.manual_seed(args.seed)
        loader = ClusterLoader(cluster_data, batch_size=args.batch_size, shuffle=True,
                               prefetch=prefetch)
        per_s, edges_per_s = _throughput(loader, args.batches)
        rows.append({"loader": f"graphbatch (prefetch={prefetch})", "prefetch": prefetch,
                     "batches_per_s": per_s, "edges_per_s": edges_per_s,
                     "peak_rss_mib": peak_rss_mib(), **partition})
    try:
        import torch_geometric.loader as pyg
    except ImportError:  # pragma: no cover
        pyg = None
    if pyg is not None:
        part = cluster_data.partition.part

        class PyGClusterData(pyg.ClusterData):
            def _metis(self, edge_index, num_nodes):  # the same partition, no pyg-lib needed
                return part

        pyg_data = PyGClusterData(data, args.num_parts, log=False)
        pyg_loader = pyg.ClusterLoader(pyg_data, batch_size=args.batch_size, shuffle=True)
        pyg_per_s, pyg_edges_per_s = _throughput(pyg_loader, args.batches)
        rows.append({"loader": "PyG (same partition)", "prefetch": None,
                     "batches_per_s": pyg_per_s, "edges_per_s": pyg_edges_per_s,
                     "peak_rss_mib": peak_rss_mib(), **partition})
    print_table(formatted(rows, COLUMNS))
    if pyg is not None:
        for row in rows[:2]:
            ratio = row["batches_per_s"] / pyg_per_s
            print(f"{row['loader']} / PyG batches/s: {ratio:.1f}x")
    results.write_outputs(args, "bench cluster", rows)
    return rows
