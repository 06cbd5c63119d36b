"""A graph partitioned for many machines: a partition book and one shard per part.

As in DistDGL, the graph is partitioned once, offline (:func:`partition_graph`, then
:func:`save_shards`), and each machine loads its own shard (:func:`load_shard`);
:func:`make_shard` builds one in memory (tests, one-machine runs).

Node ids are never relabeled: every shard speaks the original (global) node and edge
ids, so a batch compares directly with the single-machine sampler's, and the
partition book, ``[N]`` int64 owner of every node, is replicated on every rank (8
bytes a node; a range-based book after relabeling would be smaller, at the cost of
translating ids at every boundary).

A shard holds its owned nodes' in-edges as a CSC over the owned nodes, each node's
sources in the global CSC's order (the original edge order), so that picking by
position in a node's segment picks the same neighbors as on the whole graph, and its
owned nodes' rows of every node table.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from graphbatch._validate import as_int
from graphbatch.features.store import data_tables
from graphbatch.graph import CSCGraph
from graphbatch.sampling._cluster_kernels import gather_ranges
from graphbatch.sampling.cluster import check_num_parts, metis_partition

METHODS = ("metis", "random")
_BOOK_FILE = "partition_book.pt"
_META_FILE = "partition.json"
_FORMAT = 1


@dataclass
class PartitionBook:
    """Which part owns every node.

    Attributes:
        part: ``[N]`` int64 owner (part id, which is the owning rank) of every node.
        num_parts: number of parts.
        method: how it was made (``'metis'`` or ``'random'``).
    """

    part: Tensor
    num_parts: int
    method: str

    @property
    def num_nodes(self) -> int:
        return self.part.numel()

    def owned(self, rank: int) -> Tensor:
        """``[n_r]`` int64 the nodes part ``rank`` owns, sorted."""
        return (self.part == rank).nonzero().view(-1)


def partition_graph(data: Data, num_parts: int, method: str = "metis", seed: int = 0,
                    graph: Optional[CSCGraph] = None) -> PartitionBook:
    """Partitions the nodes of ``data`` into ``num_parts`` parts, one per machine.

    Args:
        data: the graph (``edge_index``, ``num_nodes``).
        num_parts: parts, from 1 to the number of nodes.
        method: ``'metis'`` (Cluster-GCN's METIS on the symmetrized graph, which keeps
            edges inside parts; deterministic, ``seed`` unused) or ``'random'`` (a
            seeded balanced random assignment: the baseline locality is measured
            against).
        seed: the random assignment's seed.
        graph: ``data``'s topology, if already built.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    num_nodes = int(data.num_nodes)
    num_parts = check_num_parts(num_parts, num_nodes)
    seed = as_int(seed, "seed")
    if method == "metis":
        graph = CSCGraph.from_data(data) if graph is None else graph
        part = metis_partition(graph, num_parts)
    else:
        # Balanced: a random permutation dealt out in turn.
        order = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(seed))
        part = torch.empty(num_nodes, dtype=torch.int64)
        part[order] = torch.arange(num_nodes) % num_parts
    return PartitionBook(part, num_parts, method)


@dataclass
class GraphShard:
    """What one machine holds of a partitioned graph: the partition book, its owned
    nodes' in-edges, and their rows of the node tables. All ids are global.

    Attributes:
        rank: the part this shard is (the rank that must load it).
        book: the partition book (replicated).
        num_edges: edges of the whole graph.
        nodes: ``[n_r]`` int64 owned node ids, sorted.
        indptr: ``[n_r + 1]`` int64 offsets over the owned nodes: the in-edges of
            ``nodes[j]`` are ``indptr[j]:indptr[j + 1]``.
        indices: ``[e_r]`` int64 global source node ids, each node's in the global CSC's
            order.
        perm: ``[e_r]`` int64 global edge ids aligned with ``indices``.
        tables: node tables (``x``, ``y``, masks, ...), name -> ``[n_r, ...]`` rows of
            the owned nodes, in ``nodes`` order.
    """

    rank: int
    book: PartitionBook
    num_edges: int
    nodes: Tensor
    indptr: Tensor
    indices: Tensor
    perm: Tensor
    tables: dict[str, Tensor] = field(default_factory=dict)

    @property
    def num_parts(self) -> int:
        return self.book.num_parts

    @property
    def num_nodes(self) -> int:
        """Nodes of the whole graph (the id space every sampler works in)."""
        return self.book.num_nodes

    def in_degree(self) -> Tensor:
        """``[n_r]`` int64 in-degree of every owned node (equal to its global in-degree)."""
        return self.indptr[1:] - self.indptr[:-1]

    def local_index(self, nodes: np.ndarray) -> np.ndarray:
        """Positions in :attr:`nodes` ([k] int64) of owned ``nodes`` ([k] int64 global ids)."""
        return np.searchsorted(self.nodes.numpy(), nodes)

    def __repr__(self) -> str:
        tables = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.tables.items())
        return (f"GraphShard(rank={self.rank}/{self.num_parts}, method={self.book.method!r}, "
                f"nodes={self.nodes.numel()}/{self.num_nodes}, in_edges={self.indices.numel()}"
                f"/{self.num_edges}, {tables})")


def make_shard(data: Data, book: PartitionBook, rank: int,
               graph: Optional[CSCGraph] = None) -> GraphShard:
    """The shard of part ``rank``: its owned nodes' in-edges, sliced from the global CSC
    of ``data`` (``graph`` if given) node by node, and their rows of data's node tables
    (:func:`~graphbatch.features.store.data_tables`)."""
    rank = _check_rank(rank, book.num_parts)
    if book.num_nodes != data.num_nodes:
        raise ValueError(f"the partition book covers {book.num_nodes} nodes, data has "
                         f"{data.num_nodes}")
    graph = CSCGraph.from_data(data) if graph is None else graph
    indptr, indices, perm = graph.numpy()
    nodes = book.owned(rank)
    starts, ends = indptr[nodes.numpy()], indptr[nodes.numpy() + 1]
    local_ptr = np.zeros(nodes.numel() + 1, dtype=np.int64)
    np.cumsum(ends - starts, out=local_ptr[1:])
    local = []
    for values in (indices, perm):
        out = np.empty(int(local_ptr[-1]), dtype=np.int64)
        gather_ranges(values, starts, ends, local_ptr, out)
        local.append(torch.from_numpy(out))
    tables = {name: torch.as_tensor(rows)[nodes].contiguous()
              for name, rows in data_tables(data, "node", data.num_nodes, data.num_edges).items()}
    return GraphShard(rank, book, graph.num_edges, nodes, torch.from_numpy(local_ptr),
                      *local, tables)


def save_shards(data: Data, book: PartitionBook, root: Union[str, Path],
                graph: Optional[CSCGraph] = None) -> Path:
    """Writes the partition book and every part's shard under ``root`` (made if absent):
    ``partition.json``, ``partition_book.pt`` and ``part<r>.pt``; returns ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    graph = CSCGraph.from_data(data) if graph is None else graph
    torch.save(book.part, root / _BOOK_FILE)
    for rank in range(book.num_parts):
        shard = make_shard(data, book, rank, graph)
        torch.save({"nodes": shard.nodes, "indptr": shard.indptr, "indices": shard.indices,
                    "perm": shard.perm, "tables": shard.tables}, root / f"part{rank}.pt")
    meta = {"format": _FORMAT, "num_parts": book.num_parts, "method": book.method,
            "num_nodes": book.num_nodes, "num_edges": graph.num_edges}
    (root / _META_FILE).write_text(json.dumps(meta, indent=1))
    return root


def load_shard(root: Union[str, Path], rank: int) -> GraphShard:
    """The shard of part ``rank`` that :func:`save_shards` wrote under ``root``, its
    tensors memory-mapped (feature rows are read from the file as batches need them)."""
    root = Path(root)
    meta_path = root / _META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"no partitioned graph in {str(root)!r}: {_META_FILE} is "
                                "missing (write one with save_shards)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{str(meta_path)!r} has format {meta.get('format')!r}, expected "
                         f"{_FORMAT}; partition the graph again")
    rank = _check_rank(rank, meta["num_parts"])
    part = torch.load(root / _BOOK_FILE, mmap=True, weights_only=True)
    saved = torch.load(root / f"part{rank}.pt", mmap=True, weights_only=True)
    book = PartitionBook(part, meta["num_parts"], meta["method"])
    return GraphShard(rank, book, meta["num_edges"], saved["nodes"], saved["indptr"],
                      saved["indices"], saved["perm"], saved["tables"])


def _check_rank(rank: object, num_parts: int) -> int:
    rank = as_int(rank, "rank")
    if not 0 <= rank < num_parts:
        raise ValueError(f"rank must be in [0, {num_parts}) (the number of parts), got {rank}")
    return rank
