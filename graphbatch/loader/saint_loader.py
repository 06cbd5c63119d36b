"""GraphSAINT loaders: drop-ins for ``torch_geometric.loader.GraphSAINT*Sampler``."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor
from torch_geometric.data import Data

from graphbatch import ranks
from graphbatch._validate import as_int, check_positive_int
from graphbatch.graph import CSCGraph
from graphbatch.loader.base import BatchLoader, check_data, graph_of
from graphbatch.loader.batches import SeededBatches
from graphbatch.loader.inputs import resolve_input_nodes
from graphbatch.sampling.plan import BatchPlan
from graphbatch.sampling.saint import (
    SAINTEdgeSampler, SAINTNodeSampler, SAINTRandomWalkSampler, SAINTSampler,
)
from graphbatch.sampling.saint_norm import SAINTNorm, normalization
from graphbatch.sampling.subgraph import SampledSubgraph


class GraphSAINTSampler(BatchLoader):
    """Base of the GraphSAINT loaders: ``num_steps`` subgraphs per epoch.

    Each batch is the ``Data`` subgraph induced by one sampled node set: node attributes
    sliced by ``n_id``, edge attributes by ``e_id``, and, with ``sample_coverage > 0``,
    ``node_norm`` ([n] float32, for the loss: ``(node_norm * loss).sum()``) and
    ``edge_norm`` ([m] float32, an edge weight for the aggregation) from pre-sampling
    (see :mod:`graphbatch.sampling.saint_norm`).

    Args:
        data: the graph, a ``torch_geometric.data.Data`` with ``edge_index``.
        batch_size: the sampler's budget (nodes, edges or walk roots).
        num_steps: subgraphs per epoch.
        sample_coverage: mean times each node is sampled while estimating the
            normalizations; 0 skips them.
        save_dir: where the normalizations are cached (keyed by graph and parameters;
            a corrupted or mismatched file is recomputed).
        log: show a progress bar while pre-sampling.
        graph, node_store, edge_store, device, prefetch, prefetch_threads,
        filter_per_worker, transform: as for :class:`~graphbatch.loader.base.BatchLoader`.
        distributed: under ``torch.distributed``, each rank takes its share of the
            ``num_steps`` subgraphs (see :class:`~graphbatch.loader.batches.SeededBatches`),
            and the normalization is computed once, by rank 0, for every rank.
        **kwargs: further ``torch.utils.data.DataLoader`` arguments (``num_workers``,
            ``generator``, ...). ``shuffle`` is accepted and means nothing: every
            subgraph is random.
    """

    def __init__(
        self,
        data: Data,
        batch_size: int,
        num_steps: int = 1,
        sample_coverage: int = 0,
        save_dir: Optional[str] = None,
        log: bool = True,
        graph: Optional[CSCGraph] = None,
        distributed: bool = False,
        **kwargs: Any,
    ) -> None:
        check_data(data, type(self).__name__)
        num_steps = check_positive_int(num_steps, "num_steps")
        sample_coverage = as_int(sample_coverage, "sample_coverage")
        if sample_coverage < 0:
            raise ValueError(f"sample_coverage must be >= 0, got {sample_coverage}")
        for key in ("shuffle", "drop_last", "sampler"):
            kwargs.pop(key, None)
        graph = graph_of(data, graph)
        self.saint_sampler = self._make_sampler(graph, batch_size)
        generator = kwargs.get("generator")
        self.norm: Optional[SAINTNorm] = None
        if sample_coverage > 0:
            seed = int(torch.randint(0, 2**62, (), generator=generator))

            def compute() -> SAINTNorm:
                return normalization(self.saint_sampler, sample_coverage, seed, save_dir, log)

            self.norm = ranks.on_rank_zero(compute) if distributed else compute()
        batches = SeededBatches(num_steps, 1, generator=generator, distributed=distributed)
        super().__init__(data, graph, batches, self.saint_sampler, **kwargs)

    def _make_sampler(self, graph: CSCGraph, batch_size: int) -> SAINTSampler:
        raise NotImplementedError

    def decorate(self, batch: Data, out: SampledSubgraph, plan: BatchPlan,
                 device: Optional[torch.device]) -> None:
        if self.norm is not None:
            batch.node_norm = self.norm.node_norm[out.node].to(batch.edge_index.device)
            batch.edge_norm = self.norm.edge_norm[out.edge].to(batch.edge_index.device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sample_coverage given: {self.norm is not None})"


class GraphSAINTNodeSampler(GraphSAINTSampler):
    """Subgraphs induced by ``batch_size`` node draws, ``P(u)`` proportional to the
    squared column norm of the normalized adjacency."""

    def _make_sampler(self, graph: CSCGraph, batch_size: int) -> SAINTSampler:
        return SAINTNodeSampler(graph, batch_size)


class GraphSAINTEdgeSampler(GraphSAINTSampler):
    """Subgraphs induced by ``batch_size`` edge draws, ``P(u -> v)`` proportional to
    ``1 / deg(u) + 1 / deg(v)``."""

    def _make_sampler(self, graph: CSCGraph, batch_size: int) -> SAINTSampler:
        return SAINTEdgeSampler(graph, batch_size)


class GraphSAINTRandomWalkSampler(GraphSAINTSampler):
    """Subgraphs induced by ``batch_size`` random walks of ``walk_length`` steps.

    Args:
        roots: the nodes walks start from, uniformly (an index tensor or boolean mask;
            the paper uses the training nodes). None: every node, as in PyG.
    """

    def __init__(self, data: Data, batch_size: int, walk_length: int, num_steps: int = 1,
                 sample_coverage: int = 0, save_dir: Optional[str] = None, log: bool = True,
                 roots: Optional[Tensor] = None, **kwargs: Any) -> None:
        self.walk_length = walk_length
        self.roots = roots
        super().__init__(data, batch_size, num_steps, sample_coverage, save_dir, log, **kwargs)

    def _make_sampler(self, graph: CSCGraph, batch_size: int) -> SAINTSampler:
        roots = (resolve_input_nodes(self.roots, graph.num_nodes, "roots")
                 if self.roots is not None else None)
        return SAINTRandomWalkSampler(graph, batch_size, self.walk_length, roots)
