"""What samplers return, and the node table they build it with."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from graphbatch.graph import CSCGraph
from graphbatch.sampling import _table_kernels as T


@dataclass
class SampledSubgraph:
    """Ids of one sampled subgraph; field names follow PyG's ``SamplerOutput``.

    Attributes:
        node: ``[n]`` int64 global node ids (neighbor sampling: the seeds first, in input
            order; subgraph samplers: sorted).
        row: ``[m]`` int64 local source ids (index into ``node``).
        col: ``[m]`` int64 local target ids; messages flow ``row -> col``.
        edge: ``[m]`` int64 original edge ids (columns of the input ``edge_index``).
        batch: ``[n]`` int64 seed index of every node in disjoint mode, else None.
        num_sampled_nodes: nodes added per hop, seeds first (``len == hops + 1``); None
            for samplers without hops.
        num_sampled_edges: edges added per hop, or None where edges are not per hop
            (``'induced'`` and ``'bidirectional'`` subgraphs, samplers without hops).
        edge_index: ``[2, m]`` int64, ``row`` over ``col`` in one tensor whose rows they
            are, where the sampler wrote them so (:meth:`from_arrays`), else None. A
            batch takes it as its ``edge_index`` without a copy.
    """

    node: Tensor
    row: Tensor
    col: Tensor
    edge: Tensor
    batch: Optional[Tensor] = None
    num_sampled_nodes: Optional[list[int]] = None
    num_sampled_edges: Optional[list[int]] = None
    edge_index: Optional[Tensor] = None

    @classmethod
    def from_arrays(cls, node: np.ndarray, edge_index: np.ndarray, edge: np.ndarray,
                    **fields) -> "SampledSubgraph":
        """The subgraph of a sampler's numpy outputs, shared, not copied: ``node`` [n],
        ``edge_index`` [2, m] and ``edge`` [m] int64 (see :func:`edge_arrays`). Made
        with ``torch.from_numpy`` only: torch operations release the GIL, and each
        release lets the other prefetch thread in."""
        return cls(node=torch.from_numpy(node), row=torch.from_numpy(edge_index[0]),
                   col=torch.from_numpy(edge_index[1]), edge=torch.from_numpy(edge),
                   edge_index=torch.from_numpy(edge_index), **fields)


def _next_pow2(n: int) -> int:
    return 1 << max(4, (n - 1).bit_length())


#: Graphs up to this many nodes dedup through a dense node-id -> local-id array
#: (8 bytes a node, per sampling thread); larger ones, and disjoint mode, hash.
DENSE_TABLE_MAX_NODES = 2**25


class Scratch:
    """A thread's int64 work buffer, grown as needed and reused across samples."""

    def __init__(self) -> None:
        self._buf = np.empty(0, dtype=np.int64)

    def take(self, n: int) -> np.ndarray:
        """A ``[n]`` view of the buffer (its contents undefined), valid until the next call."""
        if self._buf.shape[0] < n:
            self._buf = np.empty(max(n, self._buf.shape[0] * 3 // 2), dtype=np.int64)
        return self._buf[:n]


_NO_BITS = np.zeros(1, dtype=np.uint64)


class HashTable:
    """Open-addressing map from dedup key to local id, grown by rehashing."""

    dense = False
    bits = _NO_BITS

    def __init__(self, capacity_for: int, scratch: Scratch) -> None:
        self.keys = np.full(_next_pow2(2 * capacity_for), T.EMPTY, dtype=np.int64)
        self.vals = np.empty_like(self.keys)
        self.scratch = scratch

    def reserve(self, total: int, key_parts: list[np.ndarray]) -> None:
        """Makes room for ``total`` entries, re-inserting the keys so far (row ``j`` -> ``j``)."""
        if 2 * total <= self.keys.shape[0]:
            return
        self.keys = np.full(_next_pow2(2 * total), T.EMPTY, dtype=np.int64)
        self.vals = np.empty_like(self.keys)
        T.table_insert_rows(self.keys, self.vals, False, np.concatenate(key_parts))

    def release(self, key_parts: list[np.ndarray]) -> None:
        pass


class DenseTable:
    """A ``[num_nodes]`` int64 array of local ids (EMPTY where unsampled), reused across
    batches: ``release`` empties only the entries a batch set. ``bits`` is a
    ``[ceil(num_nodes / 64)]`` uint64 bitmap, clear between uses, for membership scans."""

    dense = True

    def __init__(self, array: np.ndarray, bits: np.ndarray, scratch: Scratch) -> None:
        self.keys = self.vals = array
        self.bits = bits
        self.scratch = scratch

    def reserve(self, total: int, key_parts: list[np.ndarray]) -> None:
        pass

    def release(self, key_parts: list[np.ndarray]) -> None:
        for keys in key_parts:
            T.clear_dense(self.keys, keys)


class ThreadTables:
    """Node tables for one sampler: each thread's dense array, made on first use and
    reused across samples, or a fresh hash table per sample where keys are not node ids
    (disjoint mode) or the graph has more than :data:`DENSE_TABLE_MAX_NODES` nodes.
    Pickles without its arrays (they are per process and thread)."""

    def __init__(self, num_nodes: int, keys_are_nodes: bool = True) -> None:
        self.num_nodes = num_nodes
        self.keys_are_nodes = keys_are_nodes
        self.dense = keys_are_nodes and num_nodes <= DENSE_TABLE_MAX_NODES
        self._local = threading.local()

    def _thread(self):
        local = self._local
        if not hasattr(local, "scratch"):
            local.scratch = Scratch()
            if self.dense:
                local.bits = np.zeros((self.num_nodes + 63) // 64, dtype=np.uint64)
                local.rank = np.empty_like(local.bits, dtype=np.int64)
        return local

    def get(self, capacity_for: int):
        local = self._thread()
        if not self.dense:
            return HashTable(capacity_for, local.scratch)
        if not hasattr(local, "array"):  # made on first use: the bitmap path needs none
            local.array = np.full(self.num_nodes, T.EMPTY, dtype=np.int64)
        return DenseTable(local.array, local.bits, local.scratch)

    def unique_sorted(self, nodes: np.ndarray) -> np.ndarray:
        """The distinct values of ``nodes`` ([k] int64 node ids), sorted, through the
        thread's bitmap (see :func:`~graphbatch.sampling._table_kernels.sorted_members`)."""
        if not self.dense:
            return np.unique(nodes)
        local = self._thread()
        out = np.empty_like(nodes)
        out = out[:T.sorted_members(local.bits, local.rank, nodes, out)]
        T.clear_members(local.bits, out)
        return out

    def __getstate__(self) -> dict:
        return {"num_nodes": self.num_nodes, "keys_are_nodes": self.keys_are_nodes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["num_nodes"], state["keys_are_nodes"])


def induced_edges(graph: CSCGraph, nodes: np.ndarray, tree: np.ndarray, stride: int,
                  table) -> tuple[np.ndarray, np.ndarray]:
    """Every edge of ``graph`` among ``nodes`` (all already in ``table``, row ``t`` having
    local id ``t``), as ``(edge_index, edge)`` (see :func:`edge_arrays`); in disjoint
    mode (``stride > 0``) only edges within a tree. Found through ``graph.oriented()``,
    each edge once, under its endpoint of lower degree; the order is fixed by ``nodes``
    and the graph."""
    optr, code, edge_ids = graph.oriented()
    n = nodes.shape[0]
    filed = np.empty(n + 1, dtype=np.int64)
    begin = np.empty(n, dtype=np.int64)
    T.filed_offsets(optr, nodes, filed, begin)
    hits = table.scratch.take(int(filed[-1]))
    counts = np.empty(n, dtype=np.int64)
    if table.dense:  # keys are the node ids
        T.set_bits(table.bits, nodes, True)
    try:
        T.scan_induced(code, tree, stride, table.keys, table.bits, table.dense,
                       begin, filed, hits, counts)
    finally:
        if table.dense:
            T.set_bits(table.bits, nodes, False)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    edge_index, edge = edge_arrays(int(offsets[-1]))
    T.emit_induced(code, edge_ids, tree, stride, table.keys, table.vals, table.dense, filed,
                   hits, offsets, edge_index[0], edge_index[1], edge)
    return edge_index, edge


def edge_arrays(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Uninitialised outputs for ``m`` edges: ``edge_index`` [2, m] (local sources, then
    targets) and ``edge`` [m], int64. Samplers fill the two rows of one array, which a
    batch then takes as its ``edge_index`` without a copy
    (:meth:`SampledSubgraph.from_arrays`)."""
    return np.empty((2, m), dtype=np.int64), np.empty(m, dtype=np.int64)


_NO_TREE = np.empty(0, dtype=np.int64)


def induced_subgraph(graph: CSCGraph, draws: np.ndarray, tables: ThreadTables) -> SampledSubgraph:
    """The subgraph of ``graph`` induced by the distinct values of ``draws`` ([k] int64
    node ids, repeats allowed), which are its nodes, sorted.

    The node set is a bitmap with per-word ranks (the thread's, see
    :func:`~graphbatch.sampling._table_kernels.sorted_members`); on graphs too large for
    per-thread bitmaps, a hash table maps ids to local ids."""
    if not tables.dense:
        nodes = np.unique(draws)
        table = tables.get(nodes.shape[0])
        T.table_insert_rows(table.keys, table.vals, table.dense, nodes)
        try:
            edge_index, edge = induced_edges(graph, nodes, _NO_TREE, 0, table)
        finally:
            table.release([nodes])
        return SampledSubgraph.from_arrays(nodes, edge_index, edge)
    local = tables._thread()
    optr, code, edge_ids = graph.oriented()
    nodes = np.empty_like(draws)
    try:
        n, edge_index, edge = T.member_subgraph(optr, code, edge_ids, local.bits, local.rank,
                                                draws, nodes)
    except BaseException:
        T.clear_members(local.bits, draws)
        raise
    return SampledSubgraph.from_arrays(nodes[:n], edge_index, edge)
