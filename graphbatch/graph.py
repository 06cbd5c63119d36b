"""The validated graph topology every sampler reads: CSC, built once from ``edge_index``."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

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
        self._directory: Optional[str] = None  # where the arrays are mapped from

    _FILES = ("indptr", "indices", "perm")

    def save(self, directory: Union[str, Path]) -> None:
        """Writes the arrays to ``directory`` (made if absent) as ``.npy`` files, for
        :meth:`load`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, array in zip(self._FILES, self.numpy()):
            np.save(directory / f"{name}.npy", array)

    @classmethod
    def load(cls, directory: Union[str, Path]) -> "CSCGraph":
        """The topology :meth:`save` wrote to ``directory``, memory-mapped copy-on-write:
        every process that loads it reads the same pages (one copy per machine, in the
        page cache), and a process that writes to them changes only its own copy.
        It pickles as its directory, so worker processes map the files too."""
        directory = Path(directory)
        arrays = []
        for name in cls._FILES:
            path = directory / f"{name}.npy"
            try:
                array = np.load(path, mmap_mode="c")
            except (OSError, ValueError) as exc:
                raise ValueError(f"directory={str(directory)!r}: cannot map {path.name}: {exc}") from exc
            if array.dtype != np.int64 or array.ndim != 1:
                raise ValueError(f"directory={str(directory)!r}: {path.name} holds "
                                 f"{array.dtype} of shape {array.shape}, expected 1-D int64")
            arrays.append(array)
        indptr, indices, perm = arrays
        if (indptr.shape[0] < 2 or indices.shape != perm.shape or indptr[0] != 0
                or indptr[-1] != indices.shape[0]):
            raise ValueError(f"directory={str(directory)!r} does not hold a CSC graph "
                             f"(indptr {indptr.shape}, indices {indices.shape}, perm {perm.shape})")
        graph = cls.__new__(cls)
        graph.num_nodes = indptr.shape[0] - 1
        graph.indptr, graph.indices, graph.perm = map(torch.from_numpy, arrays)
        graph._oriented = None
        graph._directory = str(directory)
        return graph

    def __reduce_ex__(self, protocol):
        if self._directory is not None:
            # Pickling the tensors would copy the mapped arrays into shared memory.
            return (type(self).load, (self._directory,))
        return super().__reduce_ex__(protocol)

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
        """Moves the arrays to shared memory, so worker processes use them without a copy
        (mapped arrays stay mapped: they are shared already)."""
        mapped = (self.indptr, self.indices, self.perm) if self._directory is not None else ()
        for t in (self.indptr, self.indices, self.perm, *(self._oriented or ())):
            if not any(t is m for m in mapped):
                t.share_memory_()
        return self

    def numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Zero-copy ``(indptr, indices, perm)`` numpy views for the kernels."""
        return self.indptr.numpy(), self.indices.numpy(), self.perm.numpy()

    def __repr__(self) -> str:
        return f"CSCGraph(num_nodes={self.num_nodes}, num_edges={self.num_edges})"


#: The former name of :class:`CSCGraph`, kept for existing code.
CSRGraph = CSCGraph
