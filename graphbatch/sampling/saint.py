"""GraphSAINT subgraph samplers (Zeng et al., ICLR 2020): node, edge and random walk.

Each draws a node set per subgraph with the paper's distribution and returns the
subgraph it induces. Degrees are in-degrees (the aggregation's), at least 1; on the
undirected graphs GraphSAINT targets they are the degrees. The normalized adjacency is
``D^-1 A`` (row ``v`` averages ``v``'s incoming neighbors), as in the paper's variance
analysis: a node ``u``'s column norm is ``sum over edges u -> v of 1 / deg(v)^2``.
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np
from torch import Tensor

from graphbatch._validate import as_index_tensor, check_node_range, check_positive_int
from graphbatch.cache import digest
from graphbatch.graph import CSCGraph
from graphbatch.sampling.plan import BatchPlan
from graphbatch.sampling import _saint_kernels as K
from graphbatch.sampling._neighbor_kernels import segment_cumsum
from graphbatch.sampling._rng import alias_table, batch_key
from graphbatch.sampling.subgraph import (
    SampledSubgraph, ThreadTables, induced_subgraph,
)

#: The empty roots array of a random-walk sampler: walks start anywhere.
_ALL_NODES = np.empty(0, dtype=np.int64)


class SAINTSampler:
    """Base of the GraphSAINT samplers: :meth:`draws` draws node ids, :meth:`sample`
    returns the subgraph the distinct ones induce (nodes sorted)."""

    kind = "base"

    def __init__(self, graph: CSCGraph, batch_size: int) -> None:
        if not isinstance(graph, CSCGraph):
            raise TypeError(f"graph must be a CSCGraph, got {type(graph).__name__}")
        if graph.num_edges == 0:
            raise ValueError(f"GraphSAINT needs a graph with edges, got {graph}")
        self.graph = graph
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self._tables = ThreadTables(graph.num_nodes)
        graph.oriented()  # built here, so that worker processes share it

    def params(self) -> dict:
        """What defines the sampling distribution (a cache key for normalizations)."""
        return {"sampler": self.kind, "batch_size": self.batch_size}

    def draws(self, key: int) -> np.ndarray:
        """The node ids drawn for one subgraph under ``key`` ([k] int64, repeats allowed)."""
        raise NotImplementedError

    def nodes(self, key: int) -> np.ndarray:
        """The sorted, unique node ids of one subgraph, drawn under ``key``."""
        return self._tables.unique_sorted(self.draws(key))

    def sample(self, seed: Union[int, BatchPlan], batch: int = 0) -> SampledSubgraph:
        """The subgraph of ``batch`` under ``seed`` (equal arguments, equal subgraphs),
        or of a loader's :class:`~graphbatch.sampling.plan.BatchPlan` (its
        ``epoch_seed`` and ``index``)."""
        if isinstance(seed, BatchPlan):
            seed, batch = seed.epoch_seed, seed.index
        return induced_subgraph(self.graph, self.draws(batch_key(seed, batch)), self._tables)

    def _alias(self, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prob = np.empty(weight.shape[0], dtype=np.float64)
        alias = np.empty(weight.shape[0], dtype=np.int64)
        alias_table(weight, prob, alias)
        return prob, alias

    def share_memory_(self) -> "SAINTSampler":
        self.graph.share_memory_()
        return self

    def _check_budget(self, limit: int, what: str) -> None:
        if self.batch_size > limit:
            raise ValueError(
                f"batch_size ({self.batch_size}) exceeds the number of {what} ({limit})")

    def _degree(self) -> np.ndarray:
        return np.maximum(self.graph.in_degree().numpy(), 1).astype(np.float64)


class SAINTNodeSampler(SAINTSampler):
    """Draws ``batch_size`` nodes with replacement, ``P(u)`` proportional to the squared
    column norm of the normalized adjacency; the subgraph is induced by the distinct ones."""

    kind = "node"

    def __init__(self, graph: CSCGraph, batch_size: int) -> None:
        super().__init__(graph, batch_size)
        self._check_budget(graph.num_nodes, "nodes")
        deg = self._degree()
        indptr, indices, _ = graph.numpy()
        weight = np.repeat(1.0 / deg**2, np.diff(indptr))
        self.prob, self.alias = self._alias(
            np.bincount(indices, weights=weight, minlength=graph.num_nodes))

    def draws(self, key: int) -> np.ndarray:
        draws = np.empty(self.batch_size, dtype=np.int64)
        K.draw_from_alias(self.prob, self.alias, key, draws)
        return draws


class SAINTEdgeSampler(SAINTSampler):
    """Draws ``batch_size`` edges with replacement, ``P(u -> v)`` proportional to
    ``1 / deg(u) + 1 / deg(v)``; the subgraph is induced by their endpoints. Memory is
    O(E) once (the distribution), O(batch_size) per subgraph. An edge is drawn in two
    steps: its target by the total weight of the target's in-edges (an alias table),
    then one of those in-edges by its weight."""

    kind = "edge"

    def __init__(self, graph: CSCGraph, batch_size: int) -> None:
        super().__init__(graph, batch_size)
        self._check_budget(graph.num_edges, "edges")
        deg = self._degree()
        indptr, indices, _ = graph.numpy()
        # CSC position p holds edge indices[p] -> v, v the node whose segment holds p.
        weight = 1.0 / deg[indices] + np.repeat(1.0 / deg, np.diff(indptr))
        self.cum = np.empty_like(weight)
        segment_cumsum(indptr, weight, self.cum, np.empty(graph.num_nodes, dtype=np.int64))
        target_weight = np.zeros(graph.num_nodes)
        has_edges = indptr[1:] > indptr[:-1]
        target_weight[has_edges] = self.cum[indptr[1:][has_edges] - 1]
        self.prob, self.alias = self._alias(target_weight)

    def draws(self, key: int) -> np.ndarray:
        indptr, indices, _ = self.graph.numpy()
        ends = np.empty(2 * self.batch_size, dtype=np.int64)
        K.draw_edges(self.prob, self.alias, indptr, indices, self.cum, key, ends)
        return ends


class SAINTRandomWalkSampler(SAINTSampler):
    """``batch_size`` roots drawn uniformly (with replacement) from ``roots`` (all nodes
    by default; the paper's training nodes), a walk of ``walk_length`` steps from each;
    the subgraph is induced by the nodes visited."""

    kind = "random_walk"

    def __init__(self, graph: CSCGraph, batch_size: int, walk_length: int,
                 roots: Optional[Tensor] = None) -> None:
        super().__init__(graph, batch_size)
        self.walk_length = check_positive_int(walk_length, "walk_length")
        self._check_budget(graph.num_nodes, "nodes")
        #: ``[k]`` int64 root ids, or None for all nodes.
        self.roots: Optional[np.ndarray] = None
        if roots is not None:
            roots = as_index_tensor(roots, "roots")
            check_node_range(roots, graph.num_nodes, "roots")
            if roots.numel() == 0:
                raise ValueError("roots must hold at least one node")
            self.roots = roots.numpy()

    def params(self) -> dict:
        return {**super().params(), "walk_length": self.walk_length,
                "roots": "all" if self.roots is None else digest(self.roots)}

    def draws(self, key: int) -> np.ndarray:
        indptr, indices, _ = self.graph.numpy()
        walks = np.empty((self.batch_size, self.walk_length + 1), dtype=np.int64)
        K.random_walks(indptr, indices, _ALL_NODES if self.roots is None else self.roots,
                       key, walks)
        return walks.reshape(-1)
