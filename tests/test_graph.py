"""CSRGraph: the CSC topology against a brute-force reference, and its input checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from conftest import incoming_reference, make_graph, random_edge_index
from graphbatch import CSRGraph


def assert_matches_reference(g: CSRGraph, edge_index: torch.Tensor, num_nodes: int) -> None:
    ref = incoming_reference(edge_index, num_nodes)
    assert g.num_nodes == num_nodes
    assert g.num_edges == edge_index.size(1)
    for name in ("indptr", "indices", "perm"):
        assert getattr(g, name).dtype == torch.int64, name
    assert g.indptr.shape == (num_nodes + 1,)
    assert g.indices.shape == g.perm.shape == (edge_index.size(1),)
    indptr, indices, perm = g.indptr.tolist(), g.indices.tolist(), g.perm.tolist()
    assert indptr[0] == 0 and indptr[-1] == edge_index.size(1)
    for v in range(num_nodes):
        got = list(zip(indices[indptr[v]:indptr[v + 1]], perm[indptr[v]:indptr[v + 1]]))
        # Same (source, edge id) pairs, in original edge order.
        assert got == ref[v], f"node {v}"
    assert sorted(perm) == list(range(edge_index.size(1)))
    expected_deg = np.bincount(edge_index[1].numpy(), minlength=num_nodes)
    assert g.in_degree().tolist() == expected_deg.tolist()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force(seed):
    n = [50, 300, 1000][seed]
    ei = random_edge_index(n, 6 * n, seed, num_isolated=n // 10, num_self_loops=5, num_duplicates=10)
    g = CSRGraph(ei, n)
    assert_matches_reference(g, ei, n)


def test_int32_and_noncontiguous_input():
    ei = random_edge_index(100, 500, 7, num_isolated=5, num_self_loops=3, num_duplicates=5)
    g32 = CSRGraph(ei.to(torch.int32), 100)
    assert_matches_reference(g32, ei, 100)
    # A transposed view is not contiguous; rows must still be read as rows.
    ei_t = ei.t().contiguous().t()
    assert not ei_t.is_contiguous()
    assert_matches_reference(CSRGraph(ei_t, 100), ei, 100)


def test_isolated_trailing_nodes_and_inferred_num_nodes():
    ei = torch.tensor([[0, 2, 2, 1], [1, 1, 0, 1]])
    g = CSRGraph(ei)  # num_nodes inferred as max id + 1
    assert g.num_nodes == 3
    assert_matches_reference(g, ei, 3)
    g = CSRGraph(ei, 10)  # nodes 3..9 isolated
    assert_matches_reference(g, ei, 10)
    assert g.in_degree()[3:].eq(0).all()


def test_no_edges_but_nodes():
    ei = torch.empty(2, 0, dtype=torch.long)
    g = CSRGraph(ei, 4)
    assert g.num_edges == 0
    assert g.indptr.tolist() == [0] * 5
    assert g.in_degree().tolist() == [0] * 4


def test_does_not_alias_or_modify_input():
    ei = torch.tensor([[1, 0, 1], [0, 1, 0]])
    before = ei.clone()
    g = CSRGraph(ei, 2)
    assert torch.equal(ei, before)
    g.indices.fill_(5)
    assert torch.equal(ei, before)


def test_share_memory():
    ei = random_edge_index(60, 200, 3)
    g = CSRGraph(ei, 60)
    assert not g.indptr.is_shared()
    ret = g.share_memory_()
    assert ret is g
    for name in ("indptr", "indices", "perm"):
        assert getattr(g, name).is_shared(), name
    assert_matches_reference(g, ei, 60)
    indptr, indices, perm = g.numpy()
    assert indptr.dtype == indices.dtype == perm.dtype == np.int64
    # numpy() is a zero-copy view of the shared tensors.
    assert np.shares_memory(indices, g.indices.numpy())


def test_from_data():
    data = make_graph(num_nodes=120, num_edges=700, seed=4, num_isolated=10)
    g = CSRGraph.from_data(data)
    assert_matches_reference(g, data.edge_index, 120)
    # num_nodes comes from data, not from the largest id: trailing isolated nodes count.
    data2 = Data(edge_index=torch.tensor([[0], [1]]), num_nodes=5)
    assert CSRGraph.from_data(data2).num_nodes == 5
    with pytest.raises(ValueError, match="edge_index"):
        CSRGraph.from_data(Data(x=torch.randn(3, 2)))


def test_repr():
    g = CSRGraph(torch.tensor([[0, 1], [1, 2]]), 3)
    assert "num_nodes=3" in repr(g) and "num_edges=2" in repr(g)


# ----------------------------------------------------------------------------- bad input


def test_not_a_tensor():
    with pytest.raises(TypeError, match="edge_index"):
        CSRGraph([[0, 1], [1, 0]], 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bool, torch.uint8])
def test_bad_dtype(dtype):
    with pytest.raises(TypeError, match="edge_index"):
        CSRGraph(torch.tensor([[0, 1], [1, 0]]).to(dtype), 2)


@pytest.mark.parametrize("shape", [(3, 4), (1, 4), (8,), (2, 2, 2)])
def test_bad_shape(shape):
    ei = torch.zeros(shape, dtype=torch.long)
    with pytest.raises(ValueError, match="edge_index"):
        CSRGraph(ei, 2)


def test_negative_id():
    with pytest.raises(ValueError, match="edge_index.*negative"):
        CSRGraph(torch.tensor([[0, -1], [1, 0]]), 3)
    with pytest.raises(ValueError, match="edge_index.*negative"):
        CSRGraph(torch.tensor([[0, 1], [1, -3]]), 3)


def test_id_out_of_range():
    ei = torch.tensor([[0, 5], [1, 0]])
    with pytest.raises(ValueError, match="num_nodes"):
        CSRGraph(ei, 5)
    with pytest.raises(ValueError, match="num_nodes"):
        CSRGraph(ei, 2)  # num_nodes smaller than the largest id
    CSRGraph(ei, 6)  # the boundary is fine


@pytest.mark.parametrize("num_nodes", [0, -3])
def test_num_nodes_not_positive(num_nodes):
    with pytest.raises(ValueError, match="num_nodes"):
        CSRGraph(torch.empty(2, 0, dtype=torch.long), num_nodes)


def test_empty_graph_inferred():
    # No edges and no num_nodes: zero nodes, which is an error naming num_nodes.
    with pytest.raises(ValueError, match="num_nodes"):
        CSRGraph(torch.empty(2, 0, dtype=torch.long))


@pytest.mark.parametrize("num_nodes", [2.0, "3", True])
def test_num_nodes_bad_type(num_nodes):
    with pytest.raises(TypeError, match="num_nodes"):
        CSRGraph(torch.tensor([[0], [1]]), num_nodes)


# ------------------------------------------------------------------ oriented adjacency


@pytest.mark.parametrize("seed", range(4))
def test_oriented_files_each_edge_once_under_its_lower_degree_endpoint(seed):
    num_nodes = 40
    edge_index = random_edge_index(num_nodes, 300, seed=seed)
    # Self-loops and duplicate edges are filed like any other edge.
    edge_index = torch.cat([edge_index, torch.tensor([[3, 3, 5], [3, 7, 7]])], dim=1)
    g = CSRGraph(edge_index, num_nodes)
    optr, code, edge = g.oriented()
    assert optr.dtype == np.int64 and code.dtype == edge.dtype == np.int32
    assert optr[0] == 0 and optr[-1] == edge_index.size(1)
    src, dst = edge_index.numpy()
    degree = np.bincount(src, minlength=num_nodes) + np.bincount(dst, minlength=num_nodes)
    rank = {v: (degree[v], v) for v in range(num_nodes)}
    assert sorted(edge.tolist()) == list(range(edge_index.size(1)))
    for x in range(num_nodes):
        for q in range(optr[x], optr[x + 1]):
            e, other, x_is_source = edge[q], code[q] >> 1, code[q] & 1
            s, d = (x, other) if x_is_source else (other, x)
            assert (s, d) == (src[e], dst[e]), f"edge {e} filed under {x}"
            assert rank[x] <= rank[other]
    # Built once, then reused; moving it to shared memory keeps its contents (and
    # invalidates earlier views, as for every tensor moved there).
    assert np.shares_memory(g.oriented()[1], code)
    edge = edge.copy()
    g.share_memory_()
    assert g._oriented[2].is_shared()
    assert np.array_equal(g.oriented()[2], edge)


def test_saved_graph_loads_mapped_and_pickles_as_its_directory(tmp_path):
    import pickle

    ei = torch.tensor([[0, 1, 2, 2, 3], [1, 2, 0, 1, 1]])
    graph = CSRGraph(ei, num_nodes=5)
    graph.save(tmp_path)
    loaded = CSRGraph.load(tmp_path)
    for a, b in zip(graph.numpy(), loaded.numpy()):
        assert np.array_equal(a, b)
    assert loaded.num_nodes == 5
    again = pickle.loads(pickle.dumps(loaded))
    assert again._directory == str(tmp_path) and np.array_equal(again.numpy()[1], graph.numpy()[1])
    assert pickle.loads(pickle.dumps(graph))._directory is None
    loaded.share_memory_()  # stays mapped: no copy into shared memory
    assert not loaded.indices.is_shared()
    loaded.indices[0] = 4  # copy-on-write: the file and other maps keep their values
    assert CSRGraph.load(tmp_path).indices[0] == graph.indices[0]


def test_loading_a_graph_from_a_wrong_directory_names_it(tmp_path):
    with pytest.raises(ValueError, match="cannot map indptr.npy"):
        CSRGraph.load(tmp_path)
    np.save(tmp_path / "indptr.npy", np.array([0, 2], dtype=np.int64))
    np.save(tmp_path / "indices.npy", np.array([0], dtype=np.int64))
    np.save(tmp_path / "perm.npy", np.array([0], dtype=np.int64))
    with pytest.raises(ValueError, match="does not hold a CSC graph"):
        CSRGraph.load(tmp_path)
    np.save(tmp_path / "perm.npy", np.array([0.0]))
    with pytest.raises(ValueError, match="perm.npy holds float64"):
        CSRGraph.load(tmp_path)


@pytest.mark.parametrize("context", ["spawn", "forkserver"])
def test_workers_keep_a_saved_graph_mapped(tmp_path, context):
    """A loader of a graph mapped from files starts workers that map the files too:
    nothing of it is copied into shared memory."""
    from graphbatch import NeighborLoader
    from graphbatch.distributed import load_graph, save_graph

    data = make_graph(200, 900)
    save_graph(data, tmp_path / "g")
    shared = load_graph(tmp_path / "g")
    loader = NeighborLoader(shared.data, [3, 2], batch_size=50, num_workers=1,
                            multiprocessing_context=context, **shared.loader_args())
    batches = list(loader)
    assert len(batches) == 4 and torch.equal(batches[0].x, data.x[batches[0].n_id])
    for t in (shared.data.x, shared.data.edge_index, *shared.graph.numpy()):
        t = torch.as_tensor(t)
        assert not t.is_shared()
    assert shared.graph._directory is not None
