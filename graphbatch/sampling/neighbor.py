"""GraphSAGE-style neighbor sampling: a fanout per hop, on the CSC topology.

The sampler sees topology only and returns ids (:class:`SampledSubgraph`); the loader
turns them into a ``Data`` batch. Its hop loop (:class:`HopSampler`) is also the
heterogeneous sampler's (:mod:`graphbatch.sampling.hetero`), which differs only in
how a hop picks and in splitting the result by type.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Generic, Optional, Sequence, TypeVar, Union

import numpy as np
import torch
from torch import Tensor

from graphbatch._validate import as_index_tensor, check_node_range
from graphbatch.graph import CSCGraph
from graphbatch.sampling.plan import BatchPlan
from graphbatch.sampling import _neighbor_kernels as K
from graphbatch.sampling import _table_kernels as T
from graphbatch.sampling._rng import batch_key
from graphbatch.sampling.subgraph import (
    SampledSubgraph, ThreadTables, edge_arrays, induced_edges,
)

if TYPE_CHECKING:
    from graphbatch.sampling.hetero import HeteroGraph

SUBGRAPH_TYPES = ("directional", "bidirectional", "induced")
_EMPTY_I64 = np.empty(0, dtype=np.int64)
#: Larger fanouts mean nothing (no node has 2**31 neighbors) and would overflow counts.
MAX_FANOUT = 2**31 - 1


def check_num_neighbors(num_neighbors: object) -> list[int]:
    """Validates a per-hop fanout list: non-empty ints, each ``>= 0`` or ``-1`` (all)."""
    if isinstance(num_neighbors, dict):
        raise NotImplementedError(
            "num_neighbors as a dict (heterogeneous graphs) is not supported yet"
        )
    if not isinstance(num_neighbors, Sequence) or isinstance(num_neighbors, str):
        raise TypeError(f"num_neighbors must be a list of ints, got {num_neighbors!r}")
    fanouts = list(num_neighbors)
    if not fanouts:
        raise ValueError("num_neighbors must name at least one hop, got []")
    for hop, f in enumerate(fanouts):
        if isinstance(f, bool) or not isinstance(f, (int, np.integer)):
            raise TypeError(f"num_neighbors[{hop}] must be an int, got {f!r}")
        if f < -1 or f > MAX_FANOUT:
            raise ValueError(
                f"num_neighbors[{hop}] must be -1 (all) or in [0, {MAX_FANOUT}], got {f}"
            )
    return [int(f) for f in fanouts]


#: What a :class:`HopSampler` returns.
Sampled = TypeVar("Sampled")


def pick_offsets(counts: np.ndarray) -> np.ndarray:
    """``[n + 1]`` int64 exclusive prefix sums of ``counts`` ([n] int64 picks per
    frontier node): node ``i``'s picks go to ``offsets[i]:offsets[i + 1]``."""
    offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


class HopSampler(Generic[Sampled]):
    """The hop loop of :class:`NeighborSampler` and
    :class:`~graphbatch.sampling.hetero.HeteroNeighborSampler`: from the seeds, hop
    after hop, pick neighbors of the last hop's new nodes and add them, deduplicated
    by a node table (whose keys are global node ids, or ``tree * num_nodes + node`` in
    disjoint mode), then build the edges (the picked ones, or those induced).

    A subclass says how a hop picks (:meth:`_pick_hop`), how many hops there are
    (``num_hops``) and what the sampled ids become (:meth:`_finish`).
    """

    num_hops: int

    def __init__(self, graph: Union[CSCGraph, "HeteroGraph"], replace: bool,
                 subgraph_type: str, disjoint: bool) -> None:
        self.graph = graph
        self.replace = bool(replace)
        self.subgraph_type = subgraph_type
        self.disjoint = bool(disjoint)
        self._tables = ThreadTables(graph.num_nodes, keys_are_nodes=not self.disjoint)
        if subgraph_type == "induced":
            graph.oriented()  # built here, so that worker processes share it

    def sample(self, seeds: Union[Tensor, BatchPlan], seed: int = 0, batch: int = 0
               ) -> Sampled:
        """Samples the subgraph around ``seeds`` ([B] int64 node ids), or around the
        items of a loader's :class:`~graphbatch.sampling.plan.BatchPlan` (validated
        when the loader was made).

        ``seed`` and ``batch`` (a plan's ``epoch_seed`` and ``index``) fix the
        randomness: equal arguments give equal results whatever the number of threads.
        """
        if isinstance(seeds, BatchPlan):
            return self.sample_unchecked(seeds.items, seeds.epoch_seed, seeds.index)
        seeds = as_index_tensor(seeds, "seeds")
        if seeds.numel() == 0:
            raise ValueError("seeds must hold at least one node, got an empty tensor")
        check_node_range(seeds, self.graph.num_nodes, "seeds")
        return self.sample_unchecked(seeds, int(seed), int(batch))

    def sample_unchecked(self, seeds: Tensor, seed: int, batch: int) -> Sampled:
        """:meth:`sample` for seeds already validated: non-empty int64 (global) node
        ids, in range."""
        key = batch_key(seed, batch)
        stride = self.graph.num_nodes if self.disjoint else 0
        seeds_np = seeds.numpy()
        num_seeds = seeds_np.shape[0]
        if self.disjoint and num_seeds * stride >= 2**63:
            raise ValueError(
                f"disjoint sampling needs batch size * num_nodes < 2**63, got {num_seeds} * {stride}"
            )

        table = self._tables.get(num_seeds)
        key_parts: list[np.ndarray] = []
        try:
            return self._grow(table, key, seeds_np, key_parts, stride)
        finally:
            table.release(key_parts)

    def _grow(self, table, key: int, seeds_np: np.ndarray, key_parts: list[np.ndarray],
              stride: int) -> Sampled:
        """Samples hop after hop from the seeds, adding every node to ``table``; the dedup
        keys of the nodes added go to ``key_parts``, for the caller to release."""
        num_seeds = seeds_np.shape[0]
        # In disjoint mode each seed is its own tree; otherwise keys are node ids and no
        # tree is kept.
        tree = np.arange(num_seeds, dtype=np.int64) if self.disjoint else _EMPTY_I64
        seed_keys = tree * stride + seeds_np if self.disjoint else seeds_np
        T.table_insert_rows(table.keys, table.vals, table.dense, seed_keys)
        key_parts.append(seed_keys)
        node_parts = [seeds_np]

        rows, cols, edges = [], [], []
        num_sampled_nodes, num_sampled_edges = [num_seeds], []
        frontier, first_local, num_local = seeds_np, 0, num_seeds
        for hop in range(self.num_hops):
            nbr, nbr_key, edge, dst = self._pick_hop(hop, frontier, key, first_local, tree,
                                                     stride)
            m = nbr.shape[0]
            table.reserve(num_local + m, key_parts)
            src = np.empty(m, dtype=np.int64)
            new = np.empty(m, dtype=np.int64)
            num_new = T.table_insert(table.keys, table.vals, table.dense, nbr_key, num_local, src, new)
            new = new[:num_new]
            frontier = nbr[new]
            key_parts.append(nbr_key[new] if self.disjoint else frontier)
            node_parts.append(frontier)
            if self.disjoint:
                tree = np.concatenate([tree, tree[dst[new]]])
            rows.append(src)
            cols.append(dst)
            edges.append(edge)
            first_local, num_local = num_local, num_local + num_new
            num_sampled_nodes.append(num_new)
            num_sampled_edges.append(m)

        nodes = np.concatenate(node_parts)
        if self.subgraph_type == "induced":
            edge_index, edge = induced_edges(self.graph, nodes, tree, stride, table)
            return self._finish(nodes, tree, num_sampled_nodes, edge_index, edge, None)
        edge_index, edge = edge_arrays(sum(r.shape[0] for r in rows))
        np.concatenate(rows, out=edge_index[0])
        np.concatenate(cols, out=edge_index[1])
        np.concatenate(edges, out=edge)
        return self._finish(nodes, tree, num_sampled_nodes, edge_index, edge, num_sampled_edges)

    def _pick_hop(self, hop: int, frontier: np.ndarray, key: int, first_local: int,
                  tree: np.ndarray, stride: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The picks of hop ``hop`` from ``frontier`` ([f] int64 node ids, local ids
        ``first_local ..``), drawing from the streams of batch key ``key``: ``(nbr,
        nbr_key, edge, dst)``, each [m] int64: picked node ids, their dedup keys (as
        ``expand_picks``'s, with ``tree`` and ``stride``), edge ids, local targets."""
        raise NotImplementedError

    def _finish(self, nodes: np.ndarray, tree: np.ndarray, num_sampled_nodes: list[int],
                edge_index: np.ndarray, edge: np.ndarray,
                num_sampled_edges: Optional[list[int]]) -> Sampled:
        """The result of sampled ``nodes`` ([n] int64 node ids, local id order), their
        ``tree`` ([n] int64 seed index in disjoint mode, else empty) and edges
        (``edge_index`` [2, m] int64 local sources over targets, ``edge`` [m] int64 ids;
        ``num_sampled_edges`` None where they are induced, not per hop)."""
        raise NotImplementedError


class NeighborSampler(HopSampler[SampledSubgraph]):
    """Samples up to ``num_neighbors[h]`` incoming neighbors per node at hop ``h``.

    Args:
        graph: the topology.
        num_neighbors: fanout per hop; ``-1`` takes every neighbor.
        replace: sample with replacement.
        subgraph_type: ``'directional'`` (the sampled edges), ``'bidirectional'`` (those
            and their reverses) or ``'induced'`` (every edge among the sampled nodes).
        disjoint: each seed grows its own tree; nodes repeat across trees.
        edge_weight: ``[E]`` non-negative finite weights in original edge order; a
            neighbor is picked with probability proportional to its edge's weight.
    """

    def __init__(
        self,
        graph: CSCGraph,
        num_neighbors: Sequence[int],
        replace: bool = False,
        subgraph_type: str = "directional",
        disjoint: bool = False,
        edge_weight: Optional[Tensor] = None,
    ) -> None:
        if not isinstance(graph, CSCGraph):
            raise TypeError(f"graph must be a CSCGraph, got {type(graph).__name__}")
        if subgraph_type not in SUBGRAPH_TYPES:
            raise ValueError(f"subgraph_type must be one of {SUBGRAPH_TYPES}, got {subgraph_type!r}")
        self.num_neighbors = check_num_neighbors(num_neighbors)
        super().__init__(graph, replace, subgraph_type, disjoint)
        self.weight: Optional[Tensor] = None
        self.cum_weight: Optional[Tensor] = None
        if edge_weight is None:
            self.num_candidates = graph.in_degree()
        else:
            self._set_weights(edge_weight)

    @property
    def num_hops(self) -> int:
        # Read from num_neighbors each time: a sampler's fanouts may be set anew.
        return len(self.num_neighbors)

    def _set_weights(self, edge_weight: Tensor) -> None:
        if not isinstance(edge_weight, Tensor):
            raise TypeError(f"edge_weight must be a tensor, got {type(edge_weight).__name__}")
        if not edge_weight.is_floating_point():
            raise TypeError(f"edge_weight must be floating point, got {edge_weight.dtype}")
        if edge_weight.dim() != 1 or edge_weight.numel() != self.graph.num_edges:
            raise ValueError(
                f"edge_weight must have shape [{self.graph.num_edges}], got {tuple(edge_weight.shape)}"
            )
        w = edge_weight.detach().to("cpu", torch.float64)
        bad = ~torch.isfinite(w) | (w < 0)
        if bool(bad.any()):
            e = int(bad.nonzero()[0])
            raise ValueError(f"edge_weight must be finite and >= 0, got {float(w[e])} at edge {e}")
        w = w[self.graph.perm].contiguous()
        cum = np.empty(w.numel(), dtype=np.float64)
        positive = np.empty(self.graph.num_nodes, dtype=np.int64)
        K.segment_cumsum(self.graph.indptr.numpy(), w.numpy(), cum, positive)
        self.weight, self.cum_weight = w, torch.from_numpy(cum)
        self.num_candidates = torch.from_numpy(positive)

    def share_memory_(self) -> "NeighborSampler":
        self.graph.share_memory_()
        for t in (self.num_candidates, self.weight, self.cum_weight):
            if t is not None:
                t.share_memory_()
        return self

    def _pick_hop(self, hop: int, frontier: np.ndarray, key: int, first_local: int,
                  tree: np.ndarray, stride: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``num_neighbors[hop]`` neighbors of each frontier node, uniformly or by
        weight: see :meth:`HopSampler._pick_hop`."""
        indptr, indices, perm = self.graph.numpy()
        num_candidates = self.num_candidates.numpy()
        fanout = self.num_neighbors[hop]
        counts = np.empty(frontier.shape[0], dtype=np.int64)
        K.count_picks(num_candidates, frontier, fanout, self.replace, counts)
        offsets = pick_offsets(counts)
        m = int(offsets[-1])
        pos = np.empty(m, dtype=np.int64)
        if self.weight is None:
            K.pick_uniform(indptr, frontier, offsets, fanout, self.replace, key, hop, pos)
        else:
            K.pick_weighted(indptr, num_candidates, self.weight.numpy(),
                            self.cum_weight.numpy(), frontier, offsets, fanout,
                            self.replace, key, hop, pos)
        nbr, nbr_key, edge, dst = (np.empty(m, dtype=np.int64) for _ in range(4))
        K.expand_picks(pos, offsets, indices, perm, first_local, tree, stride,
                       nbr, nbr_key, edge, dst)
        return nbr, nbr_key, edge, dst

    def _finish(self, nodes: np.ndarray, tree: np.ndarray, num_sampled_nodes: list[int],
                edge_index: np.ndarray, edge: np.ndarray,
                num_sampled_edges: Optional[list[int]]) -> SampledSubgraph:
        """A :class:`SampledSubgraph` (see :meth:`HopSampler._finish`); bidirectional
        subgraphs add the reverses here."""
        fields = {"batch": torch.from_numpy(tree) if self.disjoint else None,
                  "num_sampled_nodes": num_sampled_nodes}
        if self.subgraph_type == "bidirectional":
            row, col, edge = _to_bidirectional(*map(torch.from_numpy, (*edge_index, edge)),
                                               nodes.shape[0])
            return SampledSubgraph(node=torch.from_numpy(nodes), row=row, col=col, edge=edge,
                                   **fields)
        return SampledSubgraph.from_arrays(nodes, edge_index, edge, **fields,
                                           num_sampled_edges=num_sampled_edges)


def _to_bidirectional(row: Tensor, col: Tensor, edge: Tensor, num_nodes: int):
    """The sampled edges and their reverses, each local pair once; a reverse keeps its edge id."""
    row2, col2 = torch.cat([row, col]), torch.cat([col, row])
    edge2 = torch.cat([edge, edge])
    key = col2 * num_nodes + row2
    key, order = torch.sort(key, stable=True)
    first = torch.ones_like(key, dtype=torch.bool)
    first[1:] = key[1:] != key[:-1]
    order = order[first]
    return row2[order], col2[order], edge2[order]
