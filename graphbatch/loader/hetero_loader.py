"""``graphbatch.NeighborLoader`` on a ``HeteroData``: PyG's heterogeneous batches.

``NeighborLoader(hetero_data, ...)`` makes a :class:`HeteroNeighborLoader`. Its batches
are ``HeteroData`` as PyG's loader returns them, so ``to_hetero`` models and
``HeteroConv`` take them unchanged: per node type ``n_id`` and ``num_sampled_nodes``
(nodes added per hop, seeds first), the node attributes sliced by ``n_id``; per edge
type ``edge_index`` in local ids, ``e_id``, ``num_sampled_edges`` and the edge
attributes sliced by ``e_id``; on the seeds' node type ``input_id`` and
``batch_size``, the seeds first in its ``n_id``.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Mapping, NamedTuple, Optional

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphbatch.features import FeatureStore
from graphbatch.loader.assemble import _index
from graphbatch.loader.base import BatchLoader
from graphbatch.loader.batches import SeededBatches
from graphbatch.loader.data_stores import DataStores
from graphbatch.loader.inputs import resolve_input_nodes
from graphbatch.loader.neighbor_loader import NeighborLoader
from graphbatch.loader.prefetch import batch_nbytes
from graphbatch.sampling.hetero import (
    EdgeType, HeteroGraph, HeteroNeighborSampler, HeteroSampledSubgraph, NodeType, known_type,
)
from graphbatch.sampling.plan import BatchPlan


class _StorageView:
    """One node or edge storage of a ``HeteroData``, seen as :class:`DataStores` sees a
    ``Data``: its attributes in ``_store``, batched as the ``HeteroData`` batches them."""

    def __init__(self, parent: HeteroData, storage: Any) -> None:
        self.parent = parent
        self._store = storage

    def __copy__(self) -> "_StorageView":
        return _StorageView(self.parent, copy.copy(self._store))

    def __cat_dim__(self, key: str, value: Any, store: Any = None) -> Any:
        return self.parent.__cat_dim__(key, value, store)


class _Current(NamedTuple):
    """The stores of every type for ``data`` as it is now."""

    node: dict[NodeType, FeatureStore]
    edge: dict[EdgeType, FeatureStore]


class HeteroStores:
    """One :class:`~graphbatch.features.FeatureStore` per node type (and one per edge
    type for edge attributes), each kept as ``data``'s storage of that type is (a
    :class:`~graphbatch.loader.data_stores.DataStores` each: attributes added, deleted,
    replaced or written show in the next batches).

    Args:
        data: the graph.
        graph: its topology (the node and edge counts the tables must match).
        node_store: the user's stores by node type (the others: data's tables).
        edge_store: the user's stores by edge type.
    """

    def __init__(self, data: HeteroData, graph: HeteroGraph,
                 node_store: Optional[Mapping[NodeType, FeatureStore]] = None,
                 edge_store: Optional[Mapping[Any, FeatureStore]] = None) -> None:
        nodes = _given(node_store, "node_store", graph.num_nodes_dict, edge=False)
        edges = _given(edge_store, "edge_store", graph.num_edges_dict, edge=True)
        self.node = {t: _type_stores(data, t, n, 0, nodes.get(t), None)
                     for t, n in graph.num_nodes_dict.items()}
        self.edge = {k: _type_stores(data, k, 0, m, None, edges.get(k))
                     for k, m in graph.num_edges_dict.items()}

    def current(self, data: HeteroData) -> _Current:
        return _Current({t: s.current(_StorageView(data, data[t])).node for t, s in self.node.items()},
                        {k: s.current(_StorageView(data, data[k])).edge for k, s in self.edge.items()})

    def share_memory_(self) -> None:
        for store in (*self.node.values(), *self.edge.values()):
            for table in store.state.stores:
                table.share_memory_()


def _given(stores: Optional[Mapping], name: str, rows: dict, edge: bool) -> dict:
    """The user's stores by type, checked: known types, FeatureStores, right row counts."""
    if stores is None:
        return {}
    if not isinstance(stores, Mapping):
        raise TypeError(f"{name} for HeteroData must be a dict of FeatureStore by type, got "
                        f"{type(stores).__name__}")
    out = {}
    for key, store in stores.items():
        kind = known_type(key, list(rows), name, edge)
        if not isinstance(store, FeatureStore):
            raise TypeError(f"{name}[{key!r}] must be a FeatureStore, got {type(store).__name__}")
        if store.names and store.num_rows != rows[kind]:
            raise ValueError(f"{name}[{key!r}] has {store.num_rows} rows, data {rows[kind]}")
        out[kind] = store
    return out


def _type_stores(data: HeteroData, key: Any, num_nodes: int, num_edges: int,
                 node_store: Optional[FeatureStore], edge_store: Optional[FeatureStore]
                 ) -> DataStores:
    try:
        return DataStores(_StorageView(data, data[key]), num_nodes, num_edges, node_store,
                          edge_store)
    except ValueError as exc:
        raise ValueError(f"data[{key!r}]: {exc}") from None


def _fill(storage: Any, original: Any, index: Tensor, tables: FeatureStore, is_attr: Callable,
          data: HeteroData, device: Optional[torch.device]) -> dict:
    """Slices the attributes of ``storage`` (a batch's copy of ``original``) by
    ``index``: the store's tables gathered, the other attributes ``is_attr`` accepts
    indexed, ``num_nodes`` counted; returns the attributes it had."""
    attrs = dict(storage._mapping)
    if "adj_t" in attrs:
        raise NotImplementedError("data with 'adj_t' is not supported yet; give edge_index")
    sliced = [(key, value, data.__cat_dim__(key, value, original)) for key, value in attrs.items()
              if key not in tables and key not in ("num_nodes", "edge_index") and is_attr(key)]
    for key in attrs:
        if key in tables:
            del storage[key]
    if "num_nodes" in attrs:
        storage.num_nodes = index.numel()
    for key, value, dim in sliced:
        storage[key] = _index(value, index, dim)
    for name, rows in tables.gather_all(index, device).items():
        storage[name] = rows
    return attrs


def assemble_hetero(data: HeteroData, out: HeteroSampledSubgraph,
                    nodes: Mapping[NodeType, FeatureStore], edges: Mapping[EdgeType, FeatureStore],
                    device: Optional[torch.device] = None) -> HeteroData:
    """The ``HeteroData`` batch of ``out``, as PyG's ``filter_hetero_data`` and its
    loader's fields make it (see the module docstring). Moved to ``device`` if given."""
    batch = copy.copy(data)
    for node_type, storage in batch.node_items():
        original, index = data[node_type], out.node[node_type]
        attrs = _fill(storage, original, index, nodes[node_type], original.is_node_attr, data, device)
        if "n_id" not in attrs:
            storage.n_id = index
        if out.batch is not None:
            storage.batch = out.batch[node_type]
        if out.num_sampled_nodes is not None:
            storage.num_sampled_nodes = out.num_sampled_nodes[node_type]
    for edge_type, storage in batch.edge_items():
        original, index = data[edge_type], out.edge[edge_type]
        attrs = _fill(storage, original, index, edges[edge_type], original.is_edge_attr, data, device)
        storage.edge_index = out.edge_index[edge_type]
        if "e_id" not in attrs:
            storage.e_id = index
        if out.num_sampled_edges is not None:
            storage.num_sampled_edges = out.num_sampled_edges[edge_type]
    if device is not None:
        batch = batch.to(device, non_blocking=True)
    return batch


def _input_nodes(input_nodes: Any, graph: HeteroGraph) -> tuple[NodeType, Any]:
    """``(node_type, ids or mask or None)`` from PyG's heterogeneous ``input_nodes``."""
    if input_nodes is None:
        raise ValueError(f"input_nodes must name the seeds' node type for HeteroData: a node "
                         f"type, or (node_type, ids, a boolean mask or None); data's node types "
                         f"are {graph.node_types}")
    if isinstance(input_nodes, str):
        node_type, nodes = input_nodes, None
    elif (isinstance(input_nodes, (tuple, list)) and len(input_nodes) == 2
          and isinstance(input_nodes[0], str)):
        node_type, nodes = input_nodes
    else:
        raise TypeError(f"input_nodes for HeteroData must be a node type or (node_type, ids, "
                        f"a boolean mask or None), got {type(input_nodes).__name__}")
    graph.node_type_index(node_type, "input_nodes")
    return node_type, nodes


class HeteroNeighborLoader(NeighborLoader):
    """:class:`~graphbatch.loader.neighbor_loader.NeighborLoader` for ``HeteroData``, as
    ``torch_geometric.loader.NeighborLoader`` on heterogeneous graphs (see the module
    docstring for the batches). Every hop samples every edge type of every frontier
    node in one numba pass (:class:`~graphbatch.sampling.hetero.HeteroNeighborSampler`);
    randomness as in the homogeneous loader: the same seed gives the same batches for
    any ``num_workers`` and any number of threads.

    Args:
        data: the graph; every edge type needs ``edge_index``.
        num_neighbors: fanouts per hop: one list for every edge type, a dict
            ``{edge_type: list}`` (keys as tuples or ``'src__rel__dst'``), or PyG's
            ``NumNeighbors`` (its ``default`` for the edge types a dict leaves out).
        input_nodes: the seeds: a node type (all its nodes), or ``(node_type, ids)``
            with ids an index tensor (or list), a boolean mask over that type's nodes,
            or None (all). ``input_id`` and ``batch_size`` go on that type.
        replace, disjoint: as in the homogeneous loader; ``batch`` per node type when
            ``disjoint``.
        subgraph_type: ``'directional'`` or ``'induced'`` (every edge of every edge
            type among the sampled nodes).
        node_store: ``{node_type: FeatureStore}`` of node tables (memory-mapped, half
            precision, ...) for some node types; the others use data's tables.
        edge_store: ``{edge_type: FeatureStore}`` likewise for edge tables.
        graph: a prebuilt :class:`~graphbatch.sampling.hetero.HeteroGraph` of ``data``.
        neighbor_sampler: a prebuilt
            :class:`~graphbatch.sampling.hetero.HeteroNeighborSampler` (then
            ``num_neighbors``, ``replace``, ``subgraph_type`` and ``disjoint`` are its).
        transform, transform_sampler_output, filter_per_worker, device, prefetch,
            **kwargs: as in the homogeneous loader (``transform_sampler_output`` gets a
            :class:`~graphbatch.sampling.hetero.HeteroSampledSubgraph`).
    """

    def _sampler_for(self, data: HeteroData, graph: Optional[HeteroGraph],
                     neighbor_sampler: Optional[HeteroNeighborSampler], num_neighbors: Any,
                     replace: bool, subgraph_type: str, disjoint: bool,
                     weight_attr: Optional[str]) -> HeteroNeighborSampler:
        if not isinstance(data, HeteroData):
            raise TypeError(f"HeteroNeighborLoader takes a HeteroData, got {type(data).__name__}")
        if weight_attr is not None:
            raise NotImplementedError("weight_attr is not supported for heterogeneous graphs yet")
        if neighbor_sampler is None:
            return HeteroNeighborSampler(_graph_of(data, graph), num_neighbors, replace=replace,
                                         subgraph_type=subgraph_type, disjoint=disjoint)
        if not isinstance(neighbor_sampler, HeteroNeighborSampler):
            raise TypeError(f"neighbor_sampler for HeteroData must be a HeteroNeighborSampler, "
                            f"got {type(neighbor_sampler).__name__}")
        return neighbor_sampler

    def _resolve_inputs(self, input_nodes: Any, input_id: Any) -> Tensor:
        """Sets ``input_type``, ``input_nodes`` (ids within the type) and ``input_id``;
        returns the seeds' global ids, which the plans carry."""
        graph = self.neighbor_sampler.graph
        self.input_type, nodes = _input_nodes(input_nodes, graph)
        self.input_nodes = resolve_input_nodes(nodes, graph.num_nodes_dict[self.input_type],
                                               f"input_nodes of node type {self.input_type!r}")
        self.input_id = self._input_id(input_id, isinstance(nodes, Tensor)
                                       and nodes.dtype == torch.bool)
        return self.input_nodes + int(graph.node_offset[graph.node_types.index(self.input_type)])

    def _start(self, data: HeteroData, batches: SeededBatches, node_store: Any = None,
               edge_store: Any = None, **loader_args: Any) -> None:
        stores = HeteroStores(data, self.neighbor_sampler.graph, node_store, edge_store)
        # BatchLoader keeps stores of a Data's attributes: here, of data's graph-level
        # ones; they are replaced by the stores of every type right after.
        BatchLoader.__init__(self, _StorageView(data, data._global_store),
                             self.neighbor_sampler.graph, batches, self.neighbor_sampler,
                             **loader_args)
        self.data = data
        self.stores = stores
        if self.num_workers > 0 and self.filter_per_worker:
            stores.share_memory_()

    assemble_batch = staticmethod(assemble_hetero)

    def decorate(self, batch: HeteroData, out: HeteroSampledSubgraph, plan: BatchPlan,
                 device: Optional[torch.device]) -> None:
        self.put_input_id(batch[self.input_type], plan, device)

    def _batch_nbytes(self, batch: HeteroData) -> int:
        return batch_nbytes(batch, {id(v) for s in self.data.stores for v in s.values()})


def _graph_of(data: HeteroData, graph: Optional[HeteroGraph]) -> HeteroGraph:
    """``graph`` checked against ``data``, or the topology of ``data`` built now."""
    if graph is None:
        return HeteroGraph.from_data(data)
    if not isinstance(graph, HeteroGraph):
        raise TypeError(f"graph for HeteroData must be a HeteroGraph, got {type(graph).__name__}")
    nodes = {t: data[t].num_nodes for t in data.node_types}
    edges = {k: data[k].num_edges for k in data.edge_types}
    if nodes != graph.num_nodes_dict or edges != graph.num_edges_dict:
        raise ValueError(f"graph ({graph}) does not match data (num_nodes={nodes}, "
                         f"num_edges={edges})")
    return graph
