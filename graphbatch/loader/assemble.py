"""Batch assembly: a sampled subgraph's ids plus the graph's attributes -> a PyG ``Data``."""
from __future__ import annotations

import copy
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from graphbatch.features import FeatureStore
from graphbatch.sampling.subgraph import SampledSubgraph


def _index(value: Any, index: Tensor, dim: int) -> Any:
    """Entries ``index`` (int64 ids) along ``dim`` of an attribute no store holds: a
    tensor for a tensor and, as PyG's ``index_select`` gives, for a numpy array of a
    dtype torch has (others, strings say, stay numpy)."""
    if isinstance(value, Tensor):
        return value.index_select(dim, index.to(value.device))
    if isinstance(value, np.ndarray):
        rows = np.take(value, index.numpy(), axis=dim)
        return torch.from_numpy(rows) if rows.dtype.kind in "biufc" else rows
    return value[index.numpy()]  # other indexable tables


def assemble(
    data: Data,
    out: SampledSubgraph,
    nodes: FeatureStore,
    edges: FeatureStore,
    device: Optional[torch.device] = None,
) -> Data:
    """The batch of ``out``: a shallow copy of ``data`` whose node attributes are sliced by
    ``out.node`` and edge attributes by ``out.edge`` (tables of the feature stores
    gathered by them, other attributes indexed), with ``edge_index`` ``[2, m]`` int64 in
    local ids (``out.edge_index`` itself where the sampler made one) and the PyG batch
    fields ``n_id``, ``e_id``, ``num_sampled_nodes``, ``num_sampled_edges`` and
    ``batch`` (disjoint mode). Moved to ``device`` if given.
    """
    batch = copy.copy(data)
    out_store = batch._store
    # Read from the batch's own copy of data's attributes, and classified before that
    # copy changes (num_nodes): data may change while this runs (in a prefetch thread,
    # beside the training loop). _mapping, not to_dict(), which adds '_num_nodes'.
    attrs = dict(out_store._mapping)
    if "adj_t" in attrs:
        raise NotImplementedError("data with 'adj_t' is not supported yet; give edge_index")
    sliced = []
    for key, value in attrs.items():
        if key in nodes or key in edges:
            del out_store[key]  # gathered below
        elif key in ("num_nodes", "edge_index"):
            continue
        elif out_store.is_node_attr(key):
            sliced.append((key, value, out.node, data.__cat_dim__(key, value, out_store)))
        elif out_store.is_edge_attr(key):
            sliced.append((key, value, out.edge, data.__cat_dim__(key, value, out_store)))
    if "num_nodes" in attrs:
        out_store.num_nodes = out.node.numel()
    for key, value, index, dim in sliced:
        out_store[key] = _index(value, index, dim)
    for name, rows in nodes.gather_all(out.node, device).items():
        out_store[name] = rows
    for name, rows in edges.gather_all(out.edge, device).items():
        out_store[name] = rows
    out_store.edge_index = (out.edge_index if out.edge_index is not None
                            else torch.stack([out.row, out.col]))
    if "n_id" not in attrs:
        batch.n_id = out.node
    if "e_id" not in attrs:
        batch.e_id = out.edge
    if out.batch is not None:
        batch.batch = out.batch
    if out.num_sampled_nodes is not None:
        batch.num_sampled_nodes = out.num_sampled_nodes
        batch.num_sampled_edges = out.num_sampled_edges
    if device is not None:
        batch = batch.to(device, non_blocking=True)
    return batch
