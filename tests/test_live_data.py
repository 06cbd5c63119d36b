"""What the loaders take from ``data``, and when: attribute sizes checked when a loader is
built, attributes read as they are when each batch is made (PyG's semantics: ``del
loader.data.x`` for layer-wise inference, new or edited tables), numpy tables, and the
loaders' ``dataset``."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from conftest import make_graph
from graphbatch import (
    ClusterData, ClusterLoader, GraphSAINTNodeSampler, GraphSAINTRandomWalkSampler, NeighborLoader,
)

N = 300


@pytest.fixture
def data() -> Data:
    """A fresh graph per test: the tests change it."""
    d = make_graph(num_nodes=N, num_edges=1500, seed=11)
    d.train_mask = torch.arange(N) % 3 == 0
    d.graph_label = torch.tensor([4])  # graph-level: passed whole
    return d


def neighbor(d: Data, **kw) -> NeighborLoader:
    return NeighborLoader(d, [3, 2], batch_size=64, **kw)


def saint(d: Data, **kw) -> GraphSAINTNodeSampler:
    return GraphSAINTNodeSampler(d, 60, num_steps=4, log=False, **kw)


def cluster(d: Data, **kw) -> ClusterLoader:
    return ClusterLoader(ClusterData(d, num_parts=6, log=False), batch_size=2, **kw)


# ---------------------------------------------------------------------------- dataset


def test_dataset_length_is_pygs(data):
    """``len(loader.dataset)``, as PyG's examples use for progress bars: the seeds, the
    steps, the clusters."""
    mask = torch.arange(N) % 4 == 1
    assert len(NeighborLoader(data, [2], input_nodes=mask, batch_size=10).dataset) == int(mask.sum())
    assert len(NeighborLoader(data, [2], batch_size=10).dataset) == N
    assert len(saint(data).dataset) == 4
    assert len(GraphSAINTRandomWalkSampler(data, 10, 2, num_steps=7, log=False).dataset) == 7
    assert len(cluster(data).dataset) == 6
