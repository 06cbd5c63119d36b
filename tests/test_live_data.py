"""What the loaders take from ``data``, and when: attribute sizes checked when a loader is
built, attributes read as they are when each batch is made (PyG's semantics: ``del
loader.data.x`` for layer-wise inference, new or edited tables), numpy tables, and the
loaders' ``dataset``."""
from __future__ import annotations

import pickle
import threading
import time

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from conftest import make_graph
from graphbatch import (
    ClusterData, ClusterLoader, FeatureStore, GraphSAINTNodeSampler, GraphSAINTRandomWalkSampler,
    NeighborLoader,
)
from graphbatch.loader import data_stores

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


def check_batch(batch: Data, d: Data) -> None:
    """``batch`` against ``d`` as it is now, as PyG makes it: node attributes are
    ``d[key][n_id]``, edge attributes ``d[key][e_id]``, others passed whole, and nothing
    ``d`` lacks."""
    n_id, e_id = batch.n_id, batch.e_id
    for key, value in d:
        if key in ("edge_index", "num_nodes"):
            continue
        value = torch.as_tensor(value)
        if value.dim() > 0 and value.size(0) == d.num_nodes:
            expected = value[n_id]
        elif value.dim() > 0 and value.size(0) == d.num_edges:
            expected = value[e_id]
        else:
            expected = value
        assert key in batch, f"batch lacks {key!r}"
        assert isinstance(batch[key], torch.Tensor), f"{key!r} is a {type(batch[key]).__name__}"
        assert torch.equal(batch[key], expected), f"{key!r} differs from data's"
    for key in ("x", "z", "edge_attr"):
        assert (key in batch) == (key in d), f"{key!r} in batch: {key in batch}, in data: {key in d}"


def check_epoch(loader, step: str) -> None:
    batches = list(loader)
    assert batches, step
    for batch in batches:
        try:
            check_batch(batch, loader.data)
        except AssertionError as exc:
            raise AssertionError(f"after {step}: {exc}") from None


# ------------------------------------------------------------------- attribute sizes


@pytest.mark.parametrize("kind", ALL_LOADERS)
@pytest.mark.parametrize("rows", [N - 1, N + 1, 2 * N, N // 2 + 1])
def test_node_table_with_wrong_row_count_raises(data, kind, rows):
    """A node table whose size is near num_nodes but not equal would pass whole into
    every batch (PyG classifies by size): refused when the loader is built."""
    data.x = torch.randn(rows, 4)
    with pytest.raises(ValueError, match=rf"'x'.*\b{rows}\b.*\b{N}\b"):
        ALL_LOADERS[kind](data)


@pytest.mark.parametrize("kind", ALL_LOADERS)
def test_edge_table_with_wrong_row_count_raises(data, kind):
    data.edge_attr = torch.randn(data.num_edges - 1, 3)
    with pytest.raises(ValueError, match=rf"'edge_attr'.*\b{data.num_edges - 1}\b.*\b{data.num_edges}\b"):
        ALL_LOADERS[kind](data)


@pytest.mark.parametrize("kind", ALL_LOADERS)
def test_wrong_row_count_in_numpy_and_1d_tables_raises(data, kind):
    data.y = torch.randint(0, 3, (N - 10,))
    with pytest.raises(ValueError, match="'y'"):
        ALL_LOADERS[kind](data)
    data.y = np.zeros((N + 5, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="'y'"):
        ALL_LOADERS[kind](data)


@pytest.mark.parametrize("kind", ALL_LOADERS)
def test_attributes_that_are_not_per_node_pass_whole(data, kind):
    """Graph-level attributes, index lists, link labels and small tables are legitimate
    and pass whole into every batch, as in PyG."""
    data.graph_y = torch.tensor([[0.0, 1.0, 0.0]])  # [1, C]: a graph-level label
    data.train_idx = torch.arange(0, N, 2)  # an index list of N / 2 nodes
    data.edge_label_index = torch.randint(0, N, (2, 2 * N))
    data.edge_label = torch.ones(2 * N)  # link labels: one per edge_label_index column
    data.class_weight = torch.rand(7)
    data.far = torch.zeros(3 * data.num_edges)  # far from both counts: not a mistaken table
    batch = next(iter(ALL_LOADERS[kind](data)))
    for key in ("graph_y", "train_idx", "edge_label_index", "edge_label", "class_weight", "far"):
        assert torch.equal(batch[key], data[key]), key
    assert torch.equal(batch.x, data.x[batch.n_id])


def test_user_store_table_replaces_a_wrong_sized_attribute(data):
    """A table the user's node_store holds is what batches carry under that name: data's
    attribute of that name is not used, so its size does not matter."""
    x = torch.randn(N, 4)
    data.x = torch.randn(N - 1, 4)
    batch = next(iter(neighbor(data, node_store=FeatureStore({"x": x}))))
    assert torch.equal(batch.x, x[batch.n_id])


# ------------------------------------------------------------- data read at batch time


MODES = {
    "prefetch0": dict(prefetch=0),
    "prefetch2": dict(),
    "workers2-prefetch0": dict(num_workers=2, prefetch=0),
    "workers2": dict(num_workers=2),
    "workers2-filter_per_worker": dict(num_workers=2, filter_per_worker=True),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", LOADERS)
def test_batches_follow_data(data, kind, mode):
    """Each change to ``loader.data`` between epochs shows in the next epoch's batches,
    whichever thread or worker makes them."""
    loader = LOADERS[kind](data, **MODES[mode])
    check_epoch(loader, "construction")
    loader.data.x.mul_(2)
    check_epoch(loader, "x.mul_(2)")
    loader.data.x = torch.randn(N, 5)
    check_epoch(loader, "a new x")
    del loader.data.x
    check_epoch(loader, "del x")
    big = torch.randn(5, N)
    data.x = big.t()  # not contiguous: the store gathers from a copy
    data.z = torch.randn(N, 3)
    check_epoch(loader, "a non-contiguous x and a new z")
    big.add_(1)
    check_epoch(loader, "an in-place write to the non-contiguous x")
    data.edge_attr = torch.randn(data.num_edges, 2)
    del data.weight
    check_epoch(loader, "a new edge_attr, del weight")


@pytest.mark.parametrize("kind", LOADERS)
def test_unchanged_data_keeps_the_stores(data, kind):
    """No rebuild while ``data`` is unchanged; a change rebuilds only the store it
    touches."""
    loader = LOADERS[kind](data)
    nodes, edges = loader.node_store, loader.edge_store
    for _ in range(2):
        list(loader)
    assert loader.node_store is nodes and loader.edge_store is edges
    data.x.add_(1)  # the store reads x's memory itself: nothing to rebuild
    check_epoch(loader, "x.add_(1)")
    assert loader.node_store is nodes
    data.x = torch.randn(N, 2)
    check_epoch(loader, "a new x")
    assert loader.node_store is not nodes and loader.edge_store is edges
    assert loader.node_store["x"].data_ptr() == data.x.data_ptr()


def test_producer_threads_rebuild_once(data, monkeypatch):
    """Two threads making batches both find data changed; one rebuilds the stores, the
    other waits for it and takes them."""
    loader = neighbor(data, prefetch_threads=2)
    sampled = loader.collate_fn(next(iter(loader.batches)))
    builds = []
    build = data_stores.DataStores.build

    def slow_build(self, d, old):
        builds.append(threading.get_ident())
        time.sleep(0.05)  # both threads find the stores stale before the first is done
        return build(self, d, old)

    monkeypatch.setattr(data_stores.DataStores, "build", slow_build)
    data.x = torch.randn(N, 3)
    batches = []
    threads = [threading.Thread(target=lambda: batches.append(loader.filter_fn(*sampled)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(batches) == 2 and len(builds) == 1
    assert builds[0] in {t.ident for t in threads}
    for batch in batches:
        check_batch(batch, data)


def test_batch_data_as_loader_data():
    """A collated Batch (PyG's collate sets '_num_nodes' on its storage) loads like
    Data, as in PyG."""
    graphs = [Data(x=torch.randn(4, 3), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]),
                   num_nodes=4) for _ in range(3)]
    batched = Batch.from_data_list(graphs)
    batch = next(iter(NeighborLoader(batched, [2], batch_size=4, prefetch=0)))
    assert torch.equal(batch.x, batched.x[batch.n_id])
    assert torch.equal(batch.batch, batched.batch[batch.n_id])


@pytest.mark.parametrize("kind", LOADERS)
def test_pickled_loader_follows_its_data(data, kind):
    """Spawn and forkserver workers (used where fork is unsafe: see graphbatch._numba)
    get the loader pickled. Those that build batches (filter_per_worker) get its data
    and stores: there its stores still match its data (no rebuild), and follow it.
    Those that only sample get neither."""
    sampling_only = pickle.loads(pickle.dumps(LOADERS[kind](data).collate_fn)).__self__
    assert sampling_only.data is None and sampling_only.stores is None
    loader = LOADERS[kind](data, filter_per_worker=True)
    big = torch.randn(5, N)
    data.x = big.t()  # a copied table: its version is watched
    list(loader)
    clone = pickle.loads(pickle.dumps(loader.collate_fn)).__self__
    stores = clone.stores.state
    assert clone.stores.current(clone.data) is stores
    batch = clone.collate_fn(next(iter(clone.batches)))
    check_batch(batch, clone.data)
    del clone.data.x
    batch = clone.collate_fn(next(iter(clone.batches)))
    check_batch(batch, clone.data)
    big.add_(1)  # the loader's copy is stale when pickled: the clone rebuilds
    clone = pickle.loads(pickle.dumps(loader.collate_fn)).__self__
    batch = clone.collate_fn(next(iter(clone.batches)))
    check_batch(batch, clone.data)
    assert torch.equal(batch.x, big.t()[batch.n_id])


def test_given_stores_stay_as_given(data):
    """A user's node_store is not rebuilt from data: its tables are what batches carry."""
    store = FeatureStore({"x": data.x.clone()})
    loader = neighbor(data, node_store=store)
    del data.x
    batch = next(iter(loader))
    assert loader.node_store is store
    assert torch.equal(batch.x, store["x"][batch.n_id])


def test_wrong_sized_replacement_raises_when_batches_are_made(data):
    loader = neighbor(data)
    data.x = torch.randn(N + 1, 4)
    with pytest.raises(ValueError, match=rf"'x'.*\b{N + 1}\b"):
        next(iter(loader))


def test_replaced_data_object_is_followed(data):
    """``loader.data = other`` (same graph): batches are made from ``other``."""
    loader = saint(data)
    other = data.clone()
    other.x = torch.randn(N, 6)
    loader.data = other
    check_epoch(loader, "loader.data replaced")


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
