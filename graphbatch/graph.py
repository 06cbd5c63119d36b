"""The validated graph topology every sampler reads: CSC, built once from ``edge_index``."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor

from graphbatch._validate import as_edge_index, as_int, check_node_range
from graphbatch.graph_kernels import build_csc, build_oriented


class CSCGraph:
    """Incoming edges per target node (CSC), which is what PyG's message passing samples.
    (``CSRGraph`` is the same class under its former name.)

    Message passing flows ``edge_index[0]`` (source) -> ``edge_index[1]`` (target), so a
    sampler picks a target's incoming edges: the sources of target ``v`` are
    ``indices[indptr[v]:indptr[v + 1]]``, in the original edge order, and
    ``perm[p]`` is the original edge id (column of ``edge_index``) at CSC position ``p``.

    Attributes:
        num_nodes: number of nodes ``N``.
        indptr: ``[N + 1]`` int64 offsets (int64, so more than 2^31 edges fit).
        indices: ``[E]`` int64 source node ids, grouped by target.
        perm: ``[E]`` int64 original edge ids, aligned with ``indices``.
    """

    def __init__(self, edge_index: Tensor, num_nodes: Optional[int] = None) -> None:
        edge_index = as_edge_index(edge_index)
        num_edges = edge_index.size(1)
        largest = int(edge_index.max()) if num_edges else -1
        if num_nodes is None:
            num_nodes = largest + 1
        num_nodes = as_int(num_nodes, "num_nodes")
        if num_nodes <= 0:
            raise ValueError(f"num_nodes must be positive (the graph is empty), got {num_nodes}")
        if largest >= num_nodes:
            raise ValueError(
                f"num_nodes={num_nodes} is smaller than the largest node id in edge_index ({largest})"
            )
        check_node_range(edge_index.reshape(-1), num_nodes, "edge_index")

        src = edge_index[0].contiguous().numpy()
        dst = edge_index[1].contiguous().numpy()
        indptr, indices, perm = build_csc(src, dst, num_nodes)
        self.num_nodes: int = num_nodes
        self.indptr: Tensor = torch.from_numpy(indptr)
        self.indices: Tensor = torch.from_numpy(indices)
        self.perm: Tensor = torch.from_numpy(perm)
        self._oriented: Optional[tuple[Tensor, Tensor, Tensor]] = None

    @classmethod
    def from_data(cls, data) -> "CSCGraph":
        """Builds the topology of a PyG ``Data`` from ``data.edge_index`` and ``data.num_nodes``."""
        edge_index = getattr(data, "edge_index", None)
        if edge_index is None:
            raise ValueError("data has no 'edge_index'; graphbatch needs the edge list")
        return cls(edge_index, int(data.num_nodes))

    @property
    def num_edges(self) -> int:
        return self.indices.numel()

    def in_degree(self) -> Tensor:
        """``[N]`` int64 number of incoming edges per node."""
        return self.indptr[1:] - self.indptr[:-1]

    def oriented(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every edge filed once, under its endpoint of lower total degree, as numpy views
        ``(optr [N + 1], code [E], edge [E])`` (see
        :func:`graphbatch.graph_kernels.build_oriented`; ``code`` and ``edge`` int32
        where they fit). Built on first call (O(E) time, 8 bytes an edge, 16 on graphs
        past int32) and kept.

        An induced subgraph scans only the edges filed under its nodes: on skewed graphs
        a hub files few edges (those to higher-degree nodes), so the scan is a fraction
        of the nodes' degree sum, which a hub dominates."""
        if self._oriented is None:
            self._oriented = tuple(map(torch.from_numpy, build_oriented(*self.numpy())))
        return tuple(t.numpy() for t in self._oriented)

    def share_memory_(self) -> "CSCGraph":
        """Moves the arrays to shared memory, so worker processes use them without a copy."""
        for t in (self.indptr, self.indices, self.perm, *(self._oriented or ())):
            t.share_memory_()
        return self

    def numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Zero-copy ``(indptr, indices, perm)`` numpy views for the kernels."""
        return self.indptr.numpy(), self.indices.numpy(), self.perm.numpy()

    def __repr__(self) -> str:
        return f"CSCGraph(num_nodes={self.num_nodes}, num_edges={self.num_edges})"


#: The former name of :class:`CSCGraph`, kept for existing code.
CSRGraph = CSCGraph
