"""``graphbatch.NeighborLoader``: a drop-in for ``torch_geometric.loader.NeighborLoader``."""
from __future__ import annotations

import warnings
from typing import Any, Callable, Optional, Sequence, Union

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData
from torch_geometric.sampler.base import NumNeighbors, SubgraphType

from graphbatch._validate import as_index_tensor
from graphbatch.graph import CSCGraph
from graphbatch.features import FeatureStore
from graphbatch.loader.base import BatchLoader, check_data, graph_of
from graphbatch.loader.batches import SeededBatches
from graphbatch.loader.inputs import resolve_input_nodes
from graphbatch.loader.remote import is_remote, remote_inputs
from graphbatch.sampling.neighbor import NeighborSampler
from graphbatch.sampling.plan import BatchPlan
from graphbatch.sampling.subgraph import SampledSubgraph


class NeighborLoader(BatchLoader):
    """Mini-batches by GraphSAGE neighbor sampling, as ``torch_geometric.loader.NeighborLoader``.

    Takes PyG's arguments for homogeneous ``Data`` and yields the same batches: a
    ``Data`` with node attributes sliced by ``n_id`` and edge attributes by ``e_id``,
    ``edge_index`` ``[2, m]`` in local ids (messages flow row 0 -> row 1), the seeds first
    in input order, and ``n_id``, ``e_id``, ``input_id``, ``batch_size``,
    ``num_sampled_nodes``, ``num_sampled_edges`` (and ``batch`` when ``disjoint``).
    ``input_id`` is, as in PyG, the seeds' positions in ``input_nodes``, or their node
    ids when ``input_nodes`` is a boolean mask, or their entries of ``input_id`` if given.

    Randomness comes from ``generator`` (or torch's global generator): an epoch draws
    its order and one seed when it starts, and batch ``b`` is sampled from that seed
    and ``b`` alone, so the same ``torch.manual_seed`` gives the same batches for any
    ``num_workers`` and any number of threads.

    Args:
        data: the graph, a ``torch_geometric.data.Data`` with ``edge_index``, or PyG's
            remote backend, a ``(torch_geometric.data.FeatureStore, GraphStore)`` pair
            (see :mod:`graphbatch.loader.remote`).
        num_neighbors: fanout per hop (a list, or PyG's ``NumNeighbors`` of one); ``-1``
            takes every neighbor.
        input_nodes: the seeds: None (all nodes), an index tensor (or a list, range or
            numpy array of ids) or a boolean mask.
        replace: sample neighbors with replacement.
        subgraph_type: ``'directional'``, ``'bidirectional'`` or ``'induced'`` (or PyG's
            ``SubgraphType`` of one).
        disjoint: each seed gets its own subgraph; ``batch`` gives each node's seed.
        weight_attr: name of an edge attribute of non-negative weights; neighbors are
            picked with probability proportional to it.
        transform: applied to each ``Data`` batch.
        transform_sampler_output: applied to each :class:`SampledSubgraph` first.
        filter_per_worker, node_store, edge_store, device, prefetch: see
            :class:`~graphbatch.loader.base.BatchLoader` (as is ``prefetch_threads``,
            passed on with ``**kwargs``).
        graph: a prebuilt :class:`CSCGraph` of ``data`` to reuse across loaders.
        **kwargs: ``torch.utils.data.DataLoader`` arguments (``batch_size``, ``shuffle``,
            ``drop_last``, ``num_workers``, ``persistent_workers``, ``pin_memory``,
            ``generator``, ``sampler``, ...), PyG's ``input_id``: ``[B]`` integer ids
            of the ``B`` input nodes, reported as the batches' ``input_id``, and
            ``distributed``: take this rank's share of each epoch under
            ``torch.distributed`` (:class:`~graphbatch.loader.batches.SeededBatches`).

    A ``HeteroData`` makes a
    :class:`~graphbatch.loader.hetero_loader.HeteroNeighborLoader` (a subclass), which
    takes the same arguments in their heterogeneous forms.
    """

    def __new__(cls, data: Any = None, *args: Any, **kwargs: Any) -> "NeighborLoader":
        if cls is NeighborLoader and isinstance(data, HeteroData):
            from graphbatch.loader.hetero_loader import HeteroNeighborLoader

            return super().__new__(HeteroNeighborLoader)
        return super().__new__(cls)

    def __init__(
        self,
        data: Data,
        num_neighbors: Union[Sequence[int], NumNeighbors],
        input_nodes: Union[Tensor, None] = None,
        input_time: Optional[Tensor] = None,
        replace: bool = False,
        subgraph_type: Union[SubgraphType, str] = "directional",
        disjoint: bool = False,
        temporal_strategy: str = "uniform",
        time_attr: Optional[str] = None,
        weight_attr: Optional[str] = None,
        transform: Optional[Callable] = None,
        transform_sampler_output: Optional[Callable] = None,
        is_sorted: bool = False,
        filter_per_worker: Optional[bool] = None,
        neighbor_sampler: Optional[NeighborSampler] = None,
        directed: bool = True,
        graph: Optional[CSCGraph] = None,
        node_store: Optional[FeatureStore] = None,
        edge_store: Optional[FeatureStore] = None,
        device: Union[str, torch.device, None] = None,
        prefetch: int = 2,
        **kwargs: Any,
    ) -> None:
        if is_remote(data):
            if node_store is not None:
                raise ValueError("node_store: a (FeatureStore, GraphStore) pair brings its "
                                 "own node features; give node_store with a Data")
            data, node_store, input_nodes = remote_inputs(data, input_nodes)
        subgraph_type = pyg_subgraph_type(subgraph_type, directed, time_attr, input_time)
        del temporal_strategy, is_sorted  # no meaning without time; CSC is built by sorting
        input_id = kwargs.pop("input_id", None)
        self.neighbor_sampler = self._sampler_for(data, graph, neighbor_sampler, num_neighbors,
                                                  replace, subgraph_type, disjoint, weight_attr)
        items = self._resolve_inputs(input_nodes, input_id)
        batches = SeededBatches.from_loader_args(self.input_nodes.numel(), kwargs, inputs=items)
        self._start(data, batches, transform=transform,
                    transform_sampler_output=transform_sampler_output,
                    filter_per_worker=filter_per_worker, node_store=node_store,
                    edge_store=edge_store, device=device, prefetch=prefetch, **kwargs)

    # The steps of __init__ a heterogeneous loader makes its own.

    def _sampler_for(self, data: Data, graph: Optional[CSCGraph],
                     neighbor_sampler: Optional[NeighborSampler], num_neighbors: Any,
                     replace: bool, subgraph_type: str, disjoint: bool,
                     weight_attr: Optional[str]) -> NeighborSampler:
        """``neighbor_sampler``, or the sampler the other arguments ask for."""
        check_data(data, "NeighborLoader")
        if neighbor_sampler is not None:
            return neighbor_sampler
        if isinstance(num_neighbors, NumNeighbors):
            num_neighbors = num_neighbors.values
        graph = graph_of(data, graph)
        edge_weight = None
        if weight_attr is not None:
            if weight_attr not in data:
                raise ValueError(f"weight_attr={weight_attr!r} is not an attribute of data")
            edge_weight = data[weight_attr]
        try:
            return NeighborSampler(graph, num_neighbors, replace=replace,
                                   subgraph_type=subgraph_type, disjoint=disjoint,
                                   edge_weight=edge_weight)
        except (TypeError, ValueError) as exc:
            if weight_attr is None or "edge_weight" not in str(exc):
                raise
            raise type(exc)(f"weight_attr={weight_attr!r}: {exc}") from exc

    def _resolve_inputs(self, input_nodes: Any, input_id: Any) -> Tensor:
        """Sets ``input_nodes`` and ``input_id``; returns the plans' items (the seeds'
        ids in the sampler's id space)."""
        self.input_nodes = resolve_input_nodes(input_nodes, self.neighbor_sampler.graph.num_nodes)
        self.input_id = self._input_id(input_id, isinstance(input_nodes, Tensor)
                                       and input_nodes.dtype == torch.bool)
        return self.input_nodes

    def _start(self, data: Data, batches: SeededBatches, **loader_args: Any) -> None:
        """Starts the loader machinery (:class:`BatchLoader`)."""
        BatchLoader.__init__(self, data, self.neighbor_sampler.graph, batches,
                             self.neighbor_sampler, **loader_args)

    def _input_id(self, input_id: Any, mask: bool) -> Optional[Tensor]:
        """What batches report as ``input_id`` for each input node, as PyG's
        ``get_input_nodes`` decides: ``input_id`` if given, the node ids for a boolean
        mask, None for the positions."""
        if input_id is None:
            return self.input_nodes if mask else None
        input_id = as_index_tensor(input_id, "input_id")
        if input_id.numel() != self.input_nodes.numel():
            raise ValueError(f"input_id must hold one id per input node "
                             f"({self.input_nodes.numel()}), got {input_id.numel()}")
        return input_id

    def decorate(self, batch: Data, out: SampledSubgraph, plan: BatchPlan,
                 device: Optional[torch.device]) -> None:
        self.put_input_id(batch, plan, device)

    def put_input_id(self, store: Any, plan: BatchPlan, device: Optional[torch.device]) -> None:
        """Sets ``input_id`` and ``batch_size`` of batch ``plan`` on ``store`` (the batch,
        or its seeds' node store)."""
        input_id = plan.positions if self.input_id is None else self.input_id[plan.positions]
        store.input_id = input_id if device is None else input_id.to(device)
        store.batch_size = input_id.numel()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_neighbors={self.neighbor_sampler.num_neighbors})"


def pyg_subgraph_type(subgraph_type: Union[SubgraphType, str], directed: bool,
                      time_attr: Optional[str], input_time: Optional[Tensor]) -> str:
    """PyG's ``subgraph_type`` as a string, after its deprecated ``directed=False``;
    temporal sampling refused."""
    if time_attr is not None or input_time is not None:
        raise NotImplementedError("temporal sampling (time_attr, input_time) is not supported yet")
    if not directed:
        warnings.warn("'directed' is deprecated; use subgraph_type='induced'", DeprecationWarning)
        subgraph_type = "induced"
    return subgraph_type.value if isinstance(subgraph_type, SubgraphType) else subgraph_type
