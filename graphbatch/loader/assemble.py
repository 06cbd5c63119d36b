"""Batch assembly: a sampled subgraph's ids plus the graph's attributes -> a PyG ``Data``."""
from __future__ import annotations

import copy

import torch
from torch import Tensor
from torch_geometric.data import Data

from graphbatch.features import gather_rows
from graphbatch.sampling.neighbor import SampledSubgraph


def _index(value, index: Tensor, dim: int):
    if isinstance(value, Tensor):
        return gather_rows(value, index.to(value.device), dim)
    return value[index.numpy()]  # numpy arrays and the like


def slice_data(data: Data, out: SampledSubgraph) -> Data:
    """A shallow copy of ``data`` with node attributes sliced by ``out.node`` and edge
    attributes by ``out.edge``, ``edge_index`` replaced by ``[out.row, out.col]`` (``[2, m]``
    int64, local ids), and the PyG batch fields ``n_id``, ``e_id``, ``num_sampled_nodes``,
    ``num_sampled_edges`` and ``batch`` (disjoint mode) added."""
    store = data._store
    batch = copy.copy(data)
    out_store = batch._store
    for key, value in store.items():
        if key == "num_nodes":
            out_store.num_nodes = out.node.numel()
        elif key == "edge_index":
            out_store.edge_index = torch.stack([out.row, out.col]).to(value.device)
        elif key == "adj_t":
            raise NotImplementedError("data with 'adj_t' is not supported yet; give edge_index")
        elif store.is_node_attr(key):
            out_store[key] = _index(value, out.node, data.__cat_dim__(key, value, store))
        elif store.is_edge_attr(key):
            out_store[key] = _index(value, out.edge, data.__cat_dim__(key, value, store))
    if "n_id" not in store:
        batch.n_id = out.node
    if "e_id" not in store:
        batch.e_id = out.edge
    if out.batch is not None:
        batch.batch = out.batch
    batch.num_sampled_nodes = out.num_sampled_nodes
    batch.num_sampled_edges = out.num_sampled_edges
    return batch
