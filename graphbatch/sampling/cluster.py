"""Cluster-GCN (Chiang et al., KDD 2019): METIS partitions, batches of whole clusters.

METIS (through ``pymetis``) partitions the symmetrized graph without self-loops,
whatever the direction of the input; a batch joins some clusters and keeps every edge
among their nodes, the edges between clusters included.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

from graphbatch._validate import as_int
from graphbatch.graph import CSCGraph
from graphbatch.sampling.plan import BatchPlan
from graphbatch.graph_kernels import build_csc
from graphbatch.sampling import _cluster_kernels as K
from graphbatch.sampling.subgraph import SampledSubgraph, edge_arrays

#: Graphs with more nodes than this get a progress message while METIS runs.
LOG_MIN_NODES = 100_000


@dataclass
class Partition:
    """A partition of the nodes into ``num_parts`` clusters, with PyG's fields.

    Relabeling node ``node_perm[j]`` as ``j`` gives the permuted graph, in which cluster
    ``i`` is the node range ``partptr[i]:partptr[i + 1]``.

    Attributes:
        partptr: ``[num_parts + 1]`` int64: cluster ``i`` is
            ``node_perm[partptr[i]:partptr[i + 1]]``.
        node_perm: ``[N]`` int64 node ids ordered by cluster (within one, by id).
        part: ``[N]`` int64 cluster of every node (not in PyG).
        edge_index: ``[2, E]`` the partitioned graph's edges (not in PyG).
        sparse_format: ``'csr'``: ``indptr`` runs over sources (``edge_index[0]``);
            ``'csc'``: over targets (``edge_index[1]``).
        indptr: ``[N + 1]`` int64 offsets of the permuted graph's rows (see
            ``sparse_format``).
        index: ``[E]`` int64 the other endpoint of each edge, in permuted ids, sorted
            within a row (parallel edges in edge id order).
        edge_perm: ``[E]`` int64 original edge id at each position of ``index``.

    ``indptr``, ``index`` and ``edge_perm`` are built on first access (two counting
    sorts, O(N + E)) and kept (16 bytes an edge): the cluster batches never read them.
    """

    partptr: Tensor
    node_perm: Tensor
    part: Tensor
    edge_index: Tensor = field(repr=False)
    sparse_format: str = "csr"
    _csr: Optional[tuple[Tensor, Tensor, Tensor]] = field(
        default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_parts(cls, part: Tensor, num_parts: int, edge_index: Tensor,
                   sparse_format: str = "csr") -> "Partition":
        node_perm = torch.argsort(part, stable=True)
        partptr = torch.zeros(num_parts + 1, dtype=torch.int64)
        partptr[1:] = torch.cumsum(torch.bincount(part, minlength=num_parts), 0)
        return cls(partptr, node_perm, part, edge_index, sparse_format)

    def __getstate__(self) -> dict:
        # Rebuilt on first access: worker processes, which get the partition pickled,
        # should not each receive a copy of the permuted CSR.
        return {**self.__dict__, "_csr": None}

    @property
    def indptr(self) -> Tensor:
        return self._permuted_csr()[0]

    @property
    def index(self) -> Tensor:
        return self._permuted_csr()[1]

    @property
    def edge_perm(self) -> Tensor:
        return self._permuted_csr()[2]

    def _permuted_csr(self) -> tuple[Tensor, Tensor, Tensor]:
        if self._csr is None:
            n = self.node_perm.numel()
            rank = torch.empty_like(self.node_perm)
            rank[self.node_perm] = torch.arange(n)
            src, dst = rank[self.edge_index.to("cpu", torch.int64)].numpy()
            major, minor = (src, dst) if self.sparse_format == "csr" else (dst, src)
            # Two stable counting sorts (by minor, then by major) order the edges by
            # (major, minor, edge id), as PyG's stable index sort does.
            _, major_by_minor, by_minor = build_csc(major, minor, n)
            indptr, index, pos = build_csc(minor[by_minor], major_by_minor, n)
            self._csr = tuple(map(torch.from_numpy, (indptr, index, by_minor[pos])))
        return self._csr


def metis_adjacency(graph: CSCGraph, edge_weight: Optional[np.ndarray] = None):
    """The symmetrized adjacency without self-loops that METIS needs, as
    ``(xadj [N + 1], adjncy, eweights or None)``, int64, each node's neighbors sorted;
    parallel edges are merged, their weights (``[E]`` int64, by edge id) summed."""
    indptr, indices, perm = graph.numpy()
    n = graph.num_nodes
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(indices, minlength=n), out=out_ptr[1:])
    out_target = np.empty_like(indices)
    out_pos = np.empty_like(indices)
    K.by_source(indptr, indices, out_ptr, out_target, out_pos)
    weighted = edge_weight is not None
    weight = edge_weight[perm] if weighted else np.empty(0, dtype=np.int64)
    nbr = np.empty(2 * indices.shape[0], dtype=np.int64)
    merged = np.empty_like(nbr) if weighted else np.zeros_like(nbr)
    counts = np.empty(n, dtype=np.int64)
    K.symmetric_neighbors(indptr, indices, out_ptr, out_target, out_pos, weight, weighted,
                          nbr, merged, counts)
    del out_target, out_pos
    xadj = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=xadj[1:])
    starts = indptr[:-1] + out_ptr[:-1]
    adjncy = np.empty(int(xadj[-1]), dtype=np.int64)
    K.gather_ranges(nbr, starts, starts + counts, xadj, adjncy)
    if not weighted:
        return xadj, adjncy, None
    weights = np.empty_like(adjncy)
    K.gather_ranges(merged, starts, starts + counts, xadj, weights)
    return xadj, adjncy, weights


def check_num_parts(num_parts: object, num_nodes: int) -> int:
    num_parts = as_int(num_parts, "num_parts")
    if num_parts < 1 or num_parts > num_nodes:
        raise ValueError(
            f"num_parts must be between 1 and the number of nodes ({num_nodes}), got {num_parts}")
    return num_parts


def metis_partition(
    graph: CSCGraph,
    num_parts: int,
    recursive: bool = False,
    node_weight: Optional[Tensor] = None,
    edge_weight: Optional[Tensor] = None,
    log: bool = True,
) -> Tensor:
    """``[N]`` int64 cluster of every node, from METIS on the symmetrized graph.

    Args:
        num_parts: clusters, from 1 to the number of nodes.
        recursive: recursive bisection instead of k-way partitioning.
        node_weight: ``[N]`` positive integer weights METIS balances.
        edge_weight: ``[E]`` positive integer weights METIS keeps from cutting.
        log: report on stderr while METIS runs on a large graph.
    """
    num_parts = check_num_parts(num_parts, graph.num_nodes)
    n = graph.num_nodes
    if graph.num_edges == 0:
        raise ValueError(f"METIS needs a graph with edges, got {graph}")
    vweights = positive_int_weights(node_weight, n, "node_weight")
    eweights = positive_int_weights(edge_weight, graph.num_edges, "edge_weight")
    if num_parts == 1:
        return torch.zeros(n, dtype=torch.int64)
    xadj, adjncy, merged = metis_adjacency(graph, eweights)
    if adjncy.shape[0] == 0:
        raise ValueError("METIS needs edges between distinct nodes; the graph has only self-loops")
    import pymetis

    verbose = log and n >= LOG_MIN_NODES
    if verbose:
        print(f"Computing METIS partitioning of {n:,} nodes into {num_parts} parts...",
              file=sys.stderr, flush=True)
    start = time.perf_counter()
    _, membership = pymetis.part_graph(
        num_parts, adjacency=pymetis.CSRAdjacency(xadj, adjncy), vweights=vweights,
        eweights=merged, recursive=bool(recursive),
    )
    if verbose:
        print(f"METIS done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return torch.as_tensor(np.asarray(membership), dtype=torch.int64)


def positive_int_weights(weight: Optional[Tensor], size: int, name: str) -> Optional[np.ndarray]:
    if weight is None:
        return None
    if not isinstance(weight, Tensor) or weight.is_floating_point() or weight.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor (METIS weights are integers)")
    if weight.shape != (size,):
        raise ValueError(f"{name} must have shape [{size}], got {tuple(weight.shape)}")
    if weight.numel() and int(weight.min()) <= 0:
        raise ValueError(f"{name} must be positive, got {int(weight.min())}")
    return weight.to(torch.int64).numpy()


class ClusterSampler:
    """Batches of whole clusters: the nodes of the chosen clusters and every edge among
    them (the edges between chosen clusters included).

    Built once: every edge filed under its (target cluster, source cluster) pair, pairs
    grouped by target cluster, each edge held as its endpoints' ranks within their
    clusters and its id (16 bytes an edge). A batch of ``k`` clusters walks the pairs of
    its clusters and copies the runs whose source cluster is in the batch: it reads
    exactly the edges it returns, with no per-node lookups.
    """

    def __init__(self, graph: CSCGraph, partition: Partition) -> None:
        self.graph = graph
        self.partition = partition
        indptr, indices, perm = graph.numpy()
        node_perm = partition.node_perm.numpy()
        partptr = partition.partptr.numpy()
        part = partition.part.numpy()
        rank = np.empty(graph.num_nodes, dtype=np.int64)
        rank[node_perm] = np.arange(graph.num_nodes) - np.repeat(partptr[:-1], np.diff(partptr))
        pair_ptr = np.empty(self.num_parts + 1, dtype=np.int64)
        K.count_cluster_pairs(indptr, indices, node_perm, part, partptr, pair_ptr)
        pair_part = np.empty(int(pair_ptr[-1]), dtype=np.int64)
        pair_start = np.empty(pair_part.shape[0] + 1, dtype=np.int64)
        src_rank = np.empty(graph.num_edges, dtype=np.int32)
        dst_rank = np.empty(graph.num_edges, dtype=np.int32)
        edge = np.empty(graph.num_edges, dtype=np.int64)
        K.fill_cluster_pairs(indptr, indices, perm, node_perm, part, partptr, rank, pair_ptr,
                             pair_part, pair_start, src_rank, dst_rank, edge)
        self._arrays = tuple(map(torch.from_numpy, (
            pair_ptr, pair_part, pair_start, src_rank, dst_rank, edge)))

    @property
    def num_parts(self) -> int:
        return self.partition.partptr.numel() - 1

    def sample(self, clusters: Union[Tensor, BatchPlan]) -> SampledSubgraph:
        """The subgraph of ``clusters`` ([k] int64 cluster ids, distinct): nodes grouped by
        cluster in the given order; edges grouped by target cluster, then source cluster.
        A loader's :class:`~graphbatch.sampling.plan.BatchPlan` gives its clusters in
        ascending id (PyG's order)."""
        if isinstance(clusters, BatchPlan):
            clusters = torch.sort(clusters.items).values
        partptr = self.partition.partptr.numpy()
        ids = clusters.numpy()
        starts, ends = partptr[ids], partptr[ids + 1]
        first_local = np.zeros(ids.shape[0] + 1, dtype=np.int64)
        np.cumsum(ends - starts, out=first_local[1:])
        nodes = np.empty(int(first_local[-1]), dtype=np.int64)
        K.gather_ranges(self.partition.node_perm.numpy(), starts, ends, first_local, nodes)
        slot = np.full(self.num_parts, -1, dtype=np.int64)
        slot[ids] = np.arange(ids.shape[0])
        pair_ptr, pair_part, pair_start, src_rank, dst_rank, edge = (
            t.numpy() for t in self._arrays)
        counts = np.empty(ids.shape[0], dtype=np.int64)
        K.count_batch_edges(pair_ptr, pair_part, pair_start, ids, slot, counts)
        offsets = np.zeros(ids.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        m = int(offsets[-1])
        edge_index, eid = edge_arrays(m)
        K.fill_batch_edges(pair_ptr, pair_part, pair_start, src_rank, dst_rank, edge, ids,
                           slot, first_local, offsets, edge_index[0], edge_index[1], eid)
        return SampledSubgraph.from_arrays(nodes, edge_index, eid)

    def share_memory_(self) -> "ClusterSampler":
        for t in (self.partition.partptr, self.partition.node_perm, self.partition.part,
                  *self._arrays):
            t.share_memory_()
        return self
