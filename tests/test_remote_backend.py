"""PyG's remote-backend interface: a ``(FeatureStore, GraphStore)`` pair in place of a
``Data`` (PyG's own test stores), and graphbatch's FeatureStore offered through PyG's
``FeatureStore`` interface."""
from __future__ import annotations

import pickle

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader.utils import filter_custom_store
from torch_geometric.testing.feature_store import MyFeatureStore
from torch_geometric.testing.graph_store import MyGraphStore

from conftest import make_graph
from graphbatch import FeatureStore, NeighborLoader
from graphbatch.features.pyg_interface import PyGInterface


@pytest.fixture
def data() -> Data:
    d = make_graph(num_nodes=300, num_edges=2400, seed=3, num_isolated=5)
    d.y = torch.arange(300) % 7
    return d


def remote(data: Data, features=None) -> tuple:
    feature_store = features if features is not None else MyFeatureStore()
    if features is None:
        feature_store.put_tensor(data.x, group_name=None, attr_name="x", index=None)
        feature_store.put_tensor(data.y, group_name=None, attr_name="y", index=None)
    graph_store = MyGraphStore()
    graph_store.put_edge_index(data.edge_index, edge_type=None, layout="coo",
                               size=(data.num_nodes, data.num_nodes))
    return feature_store, graph_store


FIELDS = ("x", "y", "edge_index", "n_id", "e_id", "input_id", "batch_size",
          "num_sampled_nodes", "num_sampled_edges")


def epoch(loader, seed: int) -> list:
    torch.manual_seed(seed)
    return list(loader)


def assert_same_batches(a: list, b: list) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        for key in FIELDS:
            u, v = x[key], y[key]
            assert (torch.equal(u, v) if isinstance(u, torch.Tensor) else u == v), key


@pytest.mark.parametrize("workers", [0, 2])
def test_remote_pair_gives_the_batches_of_the_data(data, workers):
    kwargs = dict(num_neighbors=[5, 3], batch_size=32, shuffle=True,
                  input_nodes=torch.arange(0, 300, 2))
    expected = epoch(NeighborLoader(data, **kwargs), 4)
    got = epoch(NeighborLoader(remote(data), num_workers=workers, **kwargs), 4)
    assert_same_batches(expected, got)


def test_input_nodes_as_pyg_gives_them(data):
    kwargs = dict(num_neighbors=[4], batch_size=50)
    ids = torch.arange(100, 200)
    assert_same_batches(epoch(NeighborLoader(data, input_nodes=ids, **kwargs), 1),
                        epoch(NeighborLoader(remote(data), input_nodes=(None, ids), **kwargs), 1))
    with pytest.raises(ValueError, match="node type 'paper'"):
        NeighborLoader(remote(data), input_nodes=("paper", ids), **kwargs)


class CountingStore(MyFeatureStore):
    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def _multi_get_tensor(self, attrs):
        self.requests += 1
        return super()._multi_get_tensor(attrs)


def test_one_request_per_batch(data):
    features = CountingStore()
    features.put_tensor(data.x, group_name=None, attr_name="x", index=None)
    features.put_tensor(data.y, group_name=None, attr_name="y", index=None)
    loader = NeighborLoader(remote(data, features), [3], batch_size=100, prefetch=0)
    assert len(list(loader)) == 3 and features.requests == 3


def test_heterogeneous_store_is_refused(data):
    feature_store, _ = remote(data)
    graph_store = MyGraphStore()
    graph_store.put_edge_index(data.edge_index, edge_type=("a", "to", "b"), layout="coo",
                               size=(300, 300))
    with pytest.raises(NotImplementedError, match="homogeneous stores"):
        NeighborLoader((feature_store, graph_store), [2], batch_size=4)


# --------------------------------------------------------------------------- ours as PyG's


def test_graphbatch_store_through_pyg_interface(data):
    store = FeatureStore({"x": data.x.clone(), "y": data.y.clone()})
    pyg = store.as_pyg()
    assert isinstance(pyg, PyGInterface)
    ids = torch.tensor([5, 0, 299, 5])
    assert torch.equal(pyg.get_tensor(group_name=None, attr_name="x", index=ids), data.x[ids])
    assert torch.equal(pyg.get_tensor(None, "y", None), data.y)
    assert torch.equal(pyg.get_tensor(None, "x", slice(10, 20)), data.x[10:20])
    assert pyg.get_tensor_size(None, "x") == tuple(data.x.shape)
    assert sorted(a.attr_name for a in pyg.get_all_tensor_attrs()) == ["x", "y"]
    pyg.put_tensor(torch.full((2, data.x.size(1)), 9.0), group_name=None, attr_name="x",
                   index=torch.tensor([1, 2]))
    assert torch.equal(store["x"][1:3], torch.full((2, data.x.size(1)), 9.0))
    pyg.put_tensor(torch.arange(300.0), group_name=None, attr_name="z", index=None)
    assert "z" in store and pyg.remove_tensor(None, "z", None) and "z" not in store
    with pytest.raises(KeyError, match="no attribute 'w'"):
        pyg.get_tensor(None, "w", ids)
    with pytest.raises(ValueError, match="out of range"):
        pyg.get_tensor(None, "x", torch.tensor([300]))


def test_pyg_code_reads_graphbatch_store(data):
    """PyG's own batch filter for remote stores, on graphbatch's store."""
    store = FeatureStore({"x": data.x, "y": data.y})
    _, graph_store = remote(data)
    node = torch.tensor([3, 1, 4])
    batch = filter_custom_store(store.as_pyg(), graph_store, node, torch.tensor([0]),
                                torch.tensor([1]), None)
    assert torch.equal(batch.x, data.x[node]) and torch.equal(batch.y, data.y[node])


def test_graphbatch_store_as_the_remote_pair(data):
    kwargs = dict(num_neighbors=[5, 3], batch_size=40, shuffle=True)
    store = FeatureStore({"x": data.x, "y": data.y})
    pair = (store.as_pyg(), remote(data)[1])
    assert_same_batches(epoch(NeighborLoader(data, **kwargs), 9),
                        epoch(NeighborLoader(pair, **kwargs), 9))
    assert pickle.loads(pickle.dumps(pair[0])).get_tensor(None, "y", None).numel() == 300
