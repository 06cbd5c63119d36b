"""PyG's remote-backend input: a ``(torch_geometric.data.FeatureStore,
torch_geometric.data.GraphStore)`` pair in place of a ``Data``.

The topology is read from the graph store once, as COO, into graphbatch's CSC; the
features stay in the user's feature store, which a batch asks once for all its node
attributes (``multi_get_tensor``, every attribute indexed by the batch's nodes), so a
store that can batch requests (a database, a remote service) gets one request per
batch. Edge ids (``e_id``) index the edges in the order the graph store was given
them (``graph_store.coo()``'s order, put back where it converted from another layout). Homogeneous graphs only (the edge type ``None``): heterogeneous stores are not
supported yet.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.data import FeatureStore as PyGFeatureStore
from torch_geometric.data import GraphStore as PyGGraphStore

from graphbatch.features.elsewhere import RowsElsewhere


def is_remote(data: Any) -> bool:
    """Whether ``data`` is PyG's ``(FeatureStore, GraphStore)`` pair."""
    return (isinstance(data, (tuple, list)) and len(data) == 2
            and isinstance(data[0], PyGFeatureStore) and isinstance(data[1], PyGGraphStore))


class RemoteNodeFeatures(RowsElsewhere):
    """The node attributes of a PyG ``FeatureStore`` (group ``None``) through
    graphbatch's :class:`~graphbatch.features.FeatureStore` interface: gathers are
    requests to the user's store, one ``multi_get_tensor`` per batch."""

    def __init__(self, store: PyGFeatureStore, num_rows: int) -> None:
        attrs = [a for a in store.get_all_tensor_attrs() if a.group_name is None]
        self.remote = store
        self.num_rows = num_rows
        self._names = [a.attr_name for a in attrs]

    def __getitem__(self, name: str) -> Tensor:
        return self.remote.get_tensor(group_name=None, attr_name=name, index=None)

    def __repr__(self) -> str:
        return f"RemoteNodeFeatures(num_rows={self.num_rows}, names={self._names})"

    def __getstate__(self) -> dict:
        return dict(self.__dict__)  # the user's store pickles as it does

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def gather_all(self, index: Tensor, device: Optional[torch.device] = None,
                   names: Optional[list[str]] = None) -> dict[str, Tensor]:
        names = self._names if names is None else names
        if not names:
            return {}
        attrs = [self.remote._tensor_attr_cls.cast(group_name=None, attr_name=name, index=index)
                 for name in names]
        rows = self.remote.multi_get_tensor(attrs)
        out = {}
        for name, value in zip(names, rows):
            value = torch.as_tensor(value)
            if value.size(0) != index.numel():
                raise ValueError(f"the feature store returned {value.size(0)} rows of "
                                 f"{name!r} for {index.numel()} node ids")
            out[name] = value if device is None else value.to(device, non_blocking=True)
        return out


def remote_inputs(data: tuple, input_nodes: Any) -> tuple[Data, RemoteNodeFeatures, Any]:
    """``(skeleton Data, node features, input_nodes)`` for a ``(FeatureStore,
    GraphStore)`` pair: the ``Data`` holds the topology read from the graph store
    (``edge_index`` and ``num_nodes``) and no feature; ``input_nodes`` given as PyG's
    ``(None, ids)`` becomes ``ids``."""
    feature_store, graph_store = data
    attrs = graph_store.get_all_edge_attrs()
    types = {a.edge_type for a in attrs}
    if types != {None}:
        raise NotImplementedError(
            f"the graph store holds edge types {sorted(map(str, types))}; graphbatch reads "
            "homogeneous stores (edge type None) only, heterogeneous ones are not "
            "supported yet")
    row, col, perm = (x[None] if isinstance(x, dict) else x for x in graph_store.coo([None]))
    edge_index = torch.stack([torch.as_tensor(row), torch.as_tensor(col)])
    if perm is not None:  # converted from another layout: back in the store's edge order
        original = torch.empty_like(edge_index)
        original[:, torch.as_tensor(perm)] = edge_index
        edge_index = original
    num_nodes = _num_nodes(feature_store, attrs, edge_index)
    if isinstance(input_nodes, tuple):
        node_type, input_nodes = input_nodes
        if node_type is not None:
            raise ValueError(f"input_nodes names node type {node_type!r}; a homogeneous "
                             "store has the node type None")
    skeleton = Data(edge_index=edge_index.to(torch.int64), num_nodes=num_nodes)
    return skeleton, RemoteNodeFeatures(feature_store, num_nodes), input_nodes


def _num_nodes(feature_store: PyGFeatureStore, attrs: list, edge_index: Tensor) -> int:
    """The node count, as PyG finds it: the edge attribute's ``size``, else the rows
    of the node attributes, else the largest id + 1."""
    for attr in attrs:
        if attr.size is not None:
            return int(max(attr.size))
    for attr in feature_store.get_all_tensor_attrs():
        if attr.group_name is None:
            size = feature_store.get_tensor_size(attr)
            if size is not None:
                return int(size[0])
    return int(edge_index.max()) + 1 if edge_index.numel() else 0
