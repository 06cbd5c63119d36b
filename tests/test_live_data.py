"""What the loaders take from ``data``, and when: attribute sizes checked when a loader is
built, attributes read as they are when each batch is made (PyG's semantics: ``del
loader.data.x`` for layer-wise inference, new or edited tables), numpy tables, and the
loaders' ``dataset``."""
from __future__ import annotations

import numpy as np
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


LOADERS = {"neighbor": neighbor, "saint": saint}
ALL_LOADERS = {**LOADERS, "cluster": cluster}


# ------------------------------------------------------------------------ numpy tables


def _memmap_npy(path, array: np.ndarray) -> np.memmap:
    np.save(path, array)
    return np.load(path, mmap_mode="r")


def _memmap_raw(path, array: np.ndarray) -> np.memmap:
    array.tofile(path)
    return np.memmap(path, dtype=array.dtype, mode="r", shape=array.shape)


@pytest.mark.parametrize("form", ["npy", "raw", "array", "strided"])
@pytest.mark.parametrize("kind", ALL_LOADERS)
def test_numpy_tables_come_back_as_tensors(data, kind, form, tmp_path):
    """A numpy ``x`` (a file map included) gives tensor batches, as in PyG."""
    x = np.random.default_rng(0).standard_normal((N, 6)).astype(np.float32)
    if form == "npy":
        data.x = _memmap_npy(tmp_path / "x.npy", x)
    elif form == "raw":
        data.x = _memmap_raw(tmp_path / "x.f32", x)
    elif form == "array":
        data.x = x
    else:
        data.x = np.asfortranarray(x)
    data.y = data.y.numpy()
    loader = ALL_LOADERS[kind](data)
    for batch in loader:
        assert isinstance(batch.x, torch.Tensor) and isinstance(batch.y, torch.Tensor)
        assert torch.equal(batch.x, torch.from_numpy(x)[batch.n_id])
        assert torch.equal(batch.y, torch.from_numpy(data.y)[batch.n_id])
    if form != "strided":  # read in place: gathered by the store, not copied
        assert "x" in loader.node_store


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
