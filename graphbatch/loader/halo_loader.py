"""``HaloLoader``: target nodes with their complete L-hop halo, the batches of exact
L-step propagation (LazyGNN's mini-batches)."""
from __future__ import annotations

import copy
import warnings
from typing import Any, Optional

import torch
from torch import Tensor
from torch_geometric.data import Data

from graphbatch._validate import check_positive_int
from graphbatch.graph import CSCGraph
from graphbatch.loader.base import BatchLoader, check_data, graph_of
from graphbatch.loader.batches import SeededBatches
from graphbatch.loader.cluster_loader import ClusterData
from graphbatch.loader.inputs import resolve_input_nodes
from graphbatch.nn import normalized_adjacency
from graphbatch.sampling.halo import HaloSampler
from graphbatch.sampling.plan import BatchPlan
from graphbatch.sampling.subgraph import SampledSubgraph


def without_edge_attrs(data: Data) -> Data:
    """A shallow copy of ``data`` without its edge attributes (``edge_index`` kept),
    warning with their names when there are any."""
    dropped = [key for key in data.keys() if key != "edge_index" and data.is_edge_attr(key)]
    out = copy.copy(data)
    for key in dropped:
        del out[key]
    if dropped:
        warnings.warn(
            f"HaloLoader(normalize=True) batches the graph with self-loops added, where "
            f"data's edge attributes {sorted(dropped)} have no value: they are left out of "
            f"the batches (edge_weight holds the normalized adjacency's entries); pass "
            f"normalize=False to keep them", UserWarning, stacklevel=3)
    return out


class HaloLoader(BatchLoader):
    """Batches of target nodes plus every node within ``num_hops`` incoming hops of them
    (the complete halo), targets first, with every edge among those nodes. ``num_hops``
    propagation steps on a batch give the targets exactly what they get on the whole
    graph (the halo's own rows are truncated and should not be trusted).

    Targets are either ``batch_size`` random clusters of a :class:`ClusterData` (the
    LazyGNN and Cluster-GCN way: ``cluster_data=...``) or ``batch_size`` of
    ``input_nodes``. Batches are ``Data`` with node attributes sliced by ``n_id``,
    ``edge_index`` [2, m] in local ids, ``n_id``, ``e_id``, ``batch_size`` (the number
    of targets) and, with ``input_nodes``, ``input_id``.

    With ``normalize`` (default) the loader propagates over ``Â = D^-1/2 (A + I) D^-1/2``
    of the *whole* graph: ``loader.data`` is ``data`` with self-loops added and an
    ``edge_weight`` edge attribute holding ``Â``'s entries, so each batch carries the
    global normalization (as LazyGNN needs), and ``e_id`` indexes ``loader.data``.
    ``data``'s own edge attributes have no value on the added self-loops: they are left
    out of ``loader.data`` and its batches, with a warning naming them.

    Args:
        data: the graph, a ``torch_geometric.data.Data`` with ``edge_index``.
        num_hops: halo depth (LazyGNN: its ``steps``).
        input_nodes: targets to batch (None: all nodes; an index tensor or a mask).
            Not with ``cluster_data``.
        cluster_data: batch whole clusters of this partition of ``data`` instead.
        normalize: add self-loops and ``Â``'s weights as ``edge_weight``.
        graph: the topology of ``data`` (built when None); only with ``normalize=False``.
        **kwargs: ``batch_size`` (targets, or clusters, per batch), ``shuffle``,
            ``drop_last``, ``generator`` and the other ``DataLoader`` arguments,
            ``distributed`` (this rank's share of the targets or clusters), and
            ``node_store``, ``device``, ``prefetch``, ``prefetch_threads``, ``transform``,
            ``filter_per_worker`` as for :class:`~graphbatch.loader.base.BatchLoader`.
    """

    def __init__(self, data: Data, num_hops: int = 2, input_nodes: Optional[Tensor] = None,
                 cluster_data: Optional[ClusterData] = None, normalize: bool = True,
                 graph: Optional[CSCGraph] = None, **kwargs: Any) -> None:
        check_data(data, "HaloLoader")
        num_hops = check_positive_int(num_hops, "num_hops")
        if cluster_data is not None and input_nodes is not None:
            raise ValueError("give input_nodes or cluster_data, not both")
        if cluster_data is not None and not isinstance(cluster_data, ClusterData):
            raise TypeError(f"cluster_data must be a graphbatch.ClusterData, got "
                            f"{type(cluster_data).__name__}")
        if cluster_data is not None and cluster_data.graph.num_nodes != data.num_nodes:
            raise ValueError(f"cluster_data partitions {cluster_data.graph.num_nodes} nodes, "
                             f"data has {data.num_nodes}")
        if normalize:
            if graph is not None:
                raise ValueError("graph is the topology of data.edge_index; with "
                                 "normalize=True the loader batches the normalized graph "
                                 "(self-loops added) and builds its topology itself: pass "
                                 "graph only with normalize=False")
            data = without_edge_attrs(data)
            data.edge_index, data.edge_weight = normalized_adjacency(
                data.edge_index, data.num_nodes)
        graph = graph_of(data, graph)
        self.num_hops = num_hops
        self.cluster_data = cluster_data
        if cluster_data is None:
            self.input_nodes = resolve_input_nodes(input_nodes, graph.num_nodes)
            batches = SeededBatches.from_loader_args(self.input_nodes.numel(), kwargs,
                                                     inputs=self.input_nodes)
        else:
            self.input_nodes = None
            batches = SeededBatches.from_loader_args(cluster_data.num_parts, kwargs)
        self.halo_sampler = HaloSampler(
            graph, num_hops, None if cluster_data is None else cluster_data.partition)
        super().__init__(data, graph, batches, self.halo_sampler, **kwargs)

    def decorate(self, batch: Data, out: SampledSubgraph, plan: BatchPlan,
                 device: Optional[torch.device]) -> None:
        batch.batch_size = self.halo_sampler.num_targets(plan)
        if self.cluster_data is None:
            batch.input_id = plan.positions if device is None else plan.positions.to(device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_hops={self.num_hops})"
