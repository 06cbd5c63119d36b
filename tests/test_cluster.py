"""Cluster-GCN: METIS partitions, ClusterData / ClusterLoader batches, the partition
cache, bad input, and the diagonal-enhanced normalization."""
from __future__ import annotations

import math
import warnings
from bisect import bisect_left

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader import cluster as pyg_cluster
from torch_geometric.utils import _sort_edge_index

from conftest import induced_reference, make_graph
from graphbatch import ClusterData, ClusterLoader, CSRGraph
from graphbatch.loader import cluster_loader
from graphbatch.nn import diag_enhanced_norm
from graphbatch.sampling.cluster import (
    Partition, check_num_parts, metis_adjacency, metis_partition,
)


@pytest.fixture(scope="module")
def data() -> Data:
    return make_graph(num_nodes=300, num_edges=1500, seed=7, num_isolated=10,
                      num_self_loops=8, num_duplicates=20)


@pytest.fixture(scope="module")
def cdata(data) -> ClusterData:
    return ClusterData(data, num_parts=10, log=False)


def check_partition(p: Partition, n: int, k: int) -> None:
    assert p.part.shape == (n,) and p.part.dtype == torch.int64
    assert int(p.part.min()) >= 0 and int(p.part.max()) < k
    assert sorted(p.node_perm.tolist()) == list(range(n))
    ptr = p.partptr.tolist()
    assert len(ptr) == k + 1 and ptr[0] == 0 and ptr[-1] == n
    assert all(a <= b for a, b in zip(ptr, ptr[1:]))
    seen = []
    for i in range(k):
        nodes = p.node_perm[ptr[i]:ptr[i + 1]]
        assert (p.part[nodes] == i).all()
        assert nodes.tolist() == sorted(nodes.tolist())  # within a cluster, by id
        seen += nodes.tolist()
    assert sorted(seen) == list(range(n))  # every node in exactly one part


def induced_eids(edge_index: torch.Tensor, nodes) -> set[int]:
    keep = set(int(v) for v in nodes)
    return {e for e, (s, d) in enumerate(zip(*edge_index.tolist())) if s in keep and d in keep}


def check_batch(batch: Data, data: Data, part: torch.Tensor) -> list[int]:
    n_id, e_id = batch.n_id, batch.e_id
    assert n_id.unique().numel() == n_id.numel()
    assert e_id.unique().numel() == e_id.numel()
    assert batch.num_nodes == n_id.numel()
    assert torch.equal(data.edge_index[:, e_id], n_id[batch.edge_index])
    assert torch.equal(batch.x, data.x[n_id])
    for name in ("y",):
        if name in data:
            assert torch.equal(batch[name], data[name][n_id])
    for name in ("edge_attr", "weight"):
        if name in data:
            assert torch.equal(batch[name], data[name][e_id])
    # nodes grouped by cluster, clusters in increasing id
    clusters = part[n_id]
    assert (clusters[1:] >= clusters[:-1]).all()
    ids = clusters.unique().tolist()
    # the whole clusters are there
    full = torch.isin(part, torch.tensor(ids)).nonzero().flatten()
    assert sorted(n_id.tolist()) == full.tolist()
    # exactly the induced subgraph (edges between the chosen clusters included)
    assert set(e_id.tolist()) == induced_eids(data.edge_index, n_id.tolist())
    return ids


# --------------------------------------------------------------------------- partition

@pytest.mark.parametrize("k", [1, 2, 7, 10])
def test_partition_structure(data, k):
    cd = ClusterData(data, num_parts=k, log=False)
    check_partition(cd.partition, data.num_nodes, k)
    assert len(cd) == k
    assert cd.partition.sparse_format == "csr"


def test_partition_from_parts_handles_empty_parts():
    part = torch.tensor([2, 0, 2, 0, 4])
    p = Partition.from_parts(part, 6, torch.tensor([[0, 4, 2], [2, 1, 3]]))
    check_partition(p, 5, 6)
    assert p.partptr.tolist() == [0, 2, 2, 4, 4, 5, 5]
    # node_perm [1, 3, 0, 2, 4]: the edges become 2->3, 4->0, 3->1
    assert p.indptr.tolist() == [0, 0, 0, 1, 2, 3]
    assert p.index.tolist() == [3, 1, 0]
    assert p.edge_perm.tolist() == [0, 2, 1]


def test_recursive(data, tmp_path):
    cd = ClusterData(data, num_parts=6, recursive=True, log=False, save_dir=tmp_path)
    check_partition(cd.partition, data.num_nodes, 6)
    assert cd.recursive
    assert (tmp_path / "part_6_recursive" / "metis.pt").exists()


def test_sparse_format_csc(data):
    cd = ClusterData(data, num_parts=3, sparse_format="csc", log=False)
    assert cd.partition.sparse_format == "csc"


def planted(num_comm=8, size=100, p_in=0.1, p_out=0.002, seed=0):
    rng = np.random.default_rng(seed)
    n = num_comm * size
    comm = np.repeat(np.arange(num_comm), size)
    same = comm[:, None] == comm[None, :]
    prob = np.where(same, p_in, p_out)
    adj = rng.random((n, n)) < prob
    np.fill_diagonal(adj, False)
    src, dst = np.nonzero(adj)  # directed; METIS symmetrizes
    perm = rng.permutation(n)  # hide the communities behind random ids
    ei = torch.from_numpy(np.stack([perm[src], perm[dst]]).astype(np.int64))
    return Data(edge_index=ei, num_nodes=n)


def sym_cut(edge_index: torch.Tensor, part: torch.Tensor) -> int:
    s, d = edge_index
    keep = s != d
    s, d = s[keep], d[keep]
    pairs = torch.stack([torch.minimum(s, d), torch.maximum(s, d)]).unique(dim=1)
    return int((part[pairs[0]] != part[pairs[1]]).sum())


def test_metis_quality_planted_communities():
    d = planted()
    cd = ClusterData(d, num_parts=8, log=False)
    check_partition(cd.partition, d.num_nodes, 8)
    cut = sym_cut(d.edge_index, cd.partition.part)
    rand = torch.randint(0, 8, (d.num_nodes,), generator=torch.Generator().manual_seed(0))
    rand_cut = sym_cut(d.edge_index, rand)
    assert cut < 0.25 * rand_cut, (cut, rand_cut)
    # fairly balanced
    sizes = torch.bincount(cd.partition.part, minlength=8)
    assert int(sizes.min()) > 50


def test_metis_adjacency_symmetric_no_loops_no_duplicates():
    ei = torch.tensor([[0, 0, 1, 1, 2, 3, 3, 0, 4],
                       [1, 1, 0, 1, 3, 3, 0, 2, 4]])
    g = CSRGraph.from_data(Data(edge_index=ei, num_nodes=6))
    xadj, adjncy, w = metis_adjacency(g)
    assert w is None
    assert xadj[0] == 0 and xadj[-1] == adjncy.shape[0]
    pairs = set()
    for v in range(6):
        nbrs = adjncy[xadj[v]:xadj[v + 1]].tolist()
        assert v not in nbrs
        assert len(nbrs) == len(set(nbrs))
        pairs |= {(v, u) for u in nbrs}
    assert all((u, v) in pairs for v, u in pairs)
    expected = {(0, 1), (0, 2), (2, 3), (0, 3)}
    expected |= {(b, a) for a, b in expected}
    assert pairs == expected


def test_metis_adjacency_edge_weights_merged():
    # 0->1 twice (w 2, 3), 1->0 (w 5), loop 1->1 (w 7), 1->2 (w 1)
    ei = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 0, 1, 2]])
    g = CSRGraph.from_data(Data(edge_index=ei, num_nodes=3))
    ew = np.array([2, 3, 5, 7, 1], dtype=np.int64)
    xadj, adjncy, w = metis_adjacency(g, ew)
    got = {}
    for v in range(3):
        for j in range(xadj[v], xadj[v + 1]):
            got[(v, int(adjncy[j]))] = int(w[j])
    assert got == {(0, 1): 10, (1, 0): 10, (1, 2): 1, (2, 1): 1}


def test_node_and_edge_weights(data):
    n, e = data.num_nodes, data.num_edges
    nw = torch.randint(1, 5, (n,), generator=torch.Generator().manual_seed(1))
    ew = torch.randint(1, 5, (e,), generator=torch.Generator().manual_seed(2))
    cd = ClusterData(data, num_parts=4, node_weight=nw, edge_weight=ew, log=False)
    check_partition(cd.partition, n, 4)
    cd = ClusterData(data, num_parts=4, node_weight=nw.int(), log=False)
    check_partition(cd.partition, n, 4)


@pytest.mark.parametrize("name", ["node_weight", "edge_weight"])
def test_weight_validation(data, name):
    size = data.num_nodes if name == "node_weight" else data.num_edges
    with pytest.raises(TypeError, match=name):
        ClusterData(data, 4, log=False, **{name: torch.ones(size)})
    with pytest.raises(TypeError, match=name):
        ClusterData(data, 4, log=False, **{name: torch.ones(size, dtype=torch.bool)})
    with pytest.raises(ValueError, match=name):
        ClusterData(data, 4, log=False, **{name: torch.ones(size + 1, dtype=torch.long)})
    with pytest.raises(ValueError, match=name):
        ClusterData(data, 4, log=False, **{name: torch.ones(size, 1, dtype=torch.long)})
    bad = torch.ones(size, dtype=torch.long)
    bad[3] = 0
    with pytest.raises(ValueError, match=name):
        ClusterData(data, 4, log=False, **{name: bad})
    bad[3] = -2
    with pytest.raises(ValueError, match=name):
        ClusterData(data, 4, log=False, **{name: bad})


# --------------------------------------------------------------------------- edge cases

def small(edges, n):
    ei = torch.tensor(edges, dtype=torch.long).reshape(2, -1)
    return Data(edge_index=ei, num_nodes=n, x=torch.arange(n, dtype=torch.float).view(-1, 1))


@pytest.mark.parametrize("n,edges", [
    (3, [[0, 1], [1, 2]]),
    (4, [[0, 1, 2], [1, 2, 3]]),
    (5, [[0, 0, 0, 0, 1], [1, 2, 3, 4, 2]]),
    (5, [[0, 1, 1, 3], [1, 0, 0, 3]]),  # isolated nodes 2, 4; a loop; a duplicate
])
def test_small_graphs_every_num_parts(n, edges):
    d = small(edges, n)
    for k in range(1, n + 1):
        cd = ClusterData(d, num_parts=k, log=False)
        check_partition(cd.partition, n, k)
        batches = list(ClusterLoader(cd, batch_size=2))
        assert len(batches) == math.ceil(k / 2)
        got = sorted(v for b in batches for v in b.n_id.tolist())
        assert got == list(range(n))
        for b in batches:
            check_batch(b, d, cd.partition.part)
    with pytest.raises(ValueError, match="num_parts"):
        ClusterData(d, num_parts=n + 1, log=False)


def test_num_parts_equals_num_nodes(data):
    n = data.num_nodes
    cd = ClusterData(data, num_parts=n, log=False)
    check_partition(cd.partition, n, n)


def test_isolated_nodes_directed(data):
    cd = ClusterData(data, num_parts=5, log=False)
    iso = torch.ones(data.num_nodes, dtype=torch.bool)
    iso[data.edge_index.flatten()] = False
    assert iso.sum() >= 10
    check_partition(cd.partition, data.num_nodes, 5)


def test_self_loops_only_raises():
    d = small([[0, 1, 2], [0, 1, 2]], 4)
    with pytest.raises(ValueError, match="self-loops"):
        ClusterData(d, num_parts=2, log=False)


def test_no_edges_raises():
    d = Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=5)
    with pytest.raises(ValueError, match="edges"):
        ClusterData(d, num_parts=2, log=False)


@pytest.mark.parametrize("k", [0, -1, -10])
def test_num_parts_non_positive(data, k):
    with pytest.raises(ValueError, match="num_parts"):
        ClusterData(data, num_parts=k, log=False)


def test_num_parts_too_many(data):
    with pytest.raises(ValueError, match="num_parts"):
        ClusterData(data, num_parts=data.num_nodes + 1, log=False)
    with pytest.raises(ValueError, match="num_parts"):
        check_num_parts(6, 5)
    assert check_num_parts(5, 5) == 5


@pytest.mark.parametrize("k", [2.0, 2.5, "2", None])
def test_num_parts_not_int(data, k):
    with pytest.raises(TypeError, match="num_parts"):
        ClusterData(data, num_parts=k, log=False)


def test_bool_num_parts_rejected(data):
    with pytest.raises(TypeError, match="num_parts"):
        ClusterData(data, num_parts=True, log=False)


def test_sparse_format_bogus(data):
    with pytest.raises(ValueError, match="sparse_format"):
        ClusterData(data, num_parts=2, sparse_format="bogus")


def test_metis_partition_direct(data):
    g = CSRGraph.from_data(data)
    part = metis_partition(g, 4, log=False)
    assert part.shape == (data.num_nodes,) and part.dtype == torch.int64
    assert set(part.tolist()) <= set(range(4))
    assert torch.equal(metis_partition(g, 1), torch.zeros(data.num_nodes, dtype=torch.long))


# --------------------------------------------------------------------------- PyG's fields

@pytest.fixture
def pyg_cluster_data(monkeypatch):
    """PyG's own ClusterData on a given partition (its METIS needs pyg-lib or
    torch-sparse). PyG breaks ties in its sorts (nodes of one cluster, parallel edges)
    with pyg-lib's radix sort, which is stable; without pyg-lib it falls back to an
    unstable torch sort, made stable here: ties in id order, as ours."""
    def stable_sort(inputs, max_value=None, stable=False):
        return inputs.sort(stable=True)

    monkeypatch.setattr(pyg_cluster, "index_sort", stable_sort)
    monkeypatch.setattr(_sort_edge_index, "index_sort", stable_sort)

    def make(data: Data, part: torch.Tensor, num_parts: int, **kwargs):
        class Reference(pyg_cluster.ClusterData):
            def _metis(self, edge_index, num_nodes):
                return part

        return Reference(data, num_parts, log=False, **kwargs)

    return make


def with_edge_ids(data: Data) -> Data:
    """``data`` plus an ``eid`` edge attribute (each edge's id), so sliced and permuted
    edges can be traced back."""
    out = data.clone()
    out.eid = torch.arange(data.num_edges)
    return out


def assert_same_data(a: Data, b: Data) -> None:
    assert sorted(a.keys()) == sorted(b.keys())
    for key in a.keys():
        if isinstance(a[key], torch.Tensor):
            assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def fixed_partition(monkeypatch, part: torch.Tensor) -> None:
    """ClusterData gets ``part`` instead of running METIS."""
    monkeypatch.setattr(cluster_loader, "metis_partition", lambda *args, **kwargs: part)


@pytest.mark.parametrize("sparse_format", ["csr", "csc"])
@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("empty_parts", [False, True])
def test_cluster_data_matches_pyg(data, pyg_cluster_data, monkeypatch, sparse_format, keep,
                                  empty_parts):
    """partition, data, len and [i] equal PyG's on the same partition (METIS's, or
    one with empty clusters)."""
    d = with_edge_ids(data)
    k = 9
    if empty_parts:
        gen = torch.Generator().manual_seed(3)
        fixed_partition(monkeypatch, torch.tensor([0, 1, 3, 4, 6, 8])[
            torch.randint(0, 6, (d.num_nodes,), generator=gen)])
    ours = ClusterData(d, num_parts=k, log=False, sparse_format=sparse_format,
                       keep_inter_cluster_edges=keep)
    ref = pyg_cluster_data(d, ours.partition.part, k, sparse_format=sparse_format,
                           keep_inter_cluster_edges=keep)
    for name in ("partptr", "node_perm", "indptr", "index", "edge_perm"):
        assert torch.equal(getattr(ours.partition, name), getattr(ref.partition, name)), name
    assert ours.partition.sparse_format == ref.partition.sparse_format == sparse_format
    assert ours.sparse_format == sparse_format and ours.keep_inter_cluster_edges == keep
    assert_same_data(ours.data, ref.data)
    assert len(ours) == len(ref) == k
    for i in range(k):
        assert_same_data(ours[i], ref[i])


@pytest.mark.parametrize("sparse_format", ["csr", "csc"])
@pytest.mark.parametrize("keep", [False, True])
def test_cluster_data_brute_force(data, sparse_format, keep):
    """PyG's semantics from scratch: cluster ``i`` is rows ``partptr[i]:partptr[i + 1]``
    of the permuted ``data``; the permuted graph's edges sorted by (row, other end,
    edge id), rows over sources for 'csr', targets for 'csc'; ``[i]`` the edges of
    cluster ``i``'s rows, only those within the cluster unless
    ``keep_inter_cluster_edges`` (then the other end stays a permuted id)."""
    d = with_edge_ids(data)
    k = 7
    cd = ClusterData(d, num_parts=k, log=False, sparse_format=sparse_format,
                     keep_inter_cluster_edges=keep)
    p, csr = cd.partition, sparse_format == "csr"
    ptr, perm = p.partptr.tolist(), p.node_perm
    rank = {v: j for j, v in enumerate(perm.tolist())}
    assert "edge_index" not in cd.data
    assert cd.data.num_nodes == d.num_nodes
    for i in range(k):
        nodes = perm[ptr[i]:ptr[i + 1]]
        assert (p.part[nodes] == i).all()
        assert torch.equal(cd.data.x[ptr[i]:ptr[i + 1]], d.x[nodes])
        assert torch.equal(cd.data.y[ptr[i]:ptr[i + 1]], d.y[nodes])
    edges = sorted((rank[s], rank[t], e) if csr else (rank[t], rank[s], e)
                   for e, (s, t) in enumerate(zip(*d.edge_index.tolist())))
    rows = [r for r, _, _ in edges]
    assert p.indptr.tolist() == [bisect_left(rows, v) for v in range(d.num_nodes + 1)]
    assert p.index.tolist() == [o for _, o, _ in edges]
    assert p.edge_perm.tolist() == [e for _, _, e in edges]
    for key in ("edge_attr", "weight", "eid"):
        assert torch.equal(cd.data[key], d[key][p.edge_perm])
    for i in range(k):
        lo, hi = ptr[i], ptr[i + 1]
        c = cd[i]
        assert c.num_nodes == hi - lo
        assert torch.equal(c.x, d.x[perm[lo:hi]])
        expected = []
        for r, o, e in edges:
            if lo <= r < hi and (keep or lo <= o < hi):
                o = o if keep else o - lo
                expected.append((r - lo, o, e) if csr else (o, r - lo, e))
        assert list(zip(*c.edge_index.tolist(), c.eid.tolist())) == expected
        assert torch.equal(c.edge_attr, d.edge_attr[c.eid])
        assert torch.equal(c.weight, d.weight[c.eid])
        if not keep:  # the induced subgraph, in local ids of the permuted order
            got = sorted(zip(*c.edge_index.tolist(), c.eid.tolist()))
            assert got == induced_reference(d.edge_index, perm[lo:hi])
    assert cd[-0].num_nodes == ptr[1]
    for bad in (k, k + 5, -1):
        with pytest.raises(IndexError):
            cd[bad]


def test_pyg_fields_built_on_first_access(data):
    """Batches never build the permuted data nor the permuted graph's CSR; the first
    access builds them, later ones reuse them."""
    cd = ClusterData(data, num_parts=5, log=False)
    for batch in ClusterLoader(cd, batch_size=2):
        check_batch(batch, data, cd.partition.part)
    assert cd._data is None and cd.partition._csr is None
    permuted = cd.data
    assert cd.partition._csr is not None
    assert cd.data is permuted
    assert cd.original_data is data and "edge_index" in data


def test_loader_indexes_the_original_data(data):
    """Once ``cluster_data.data`` is built, batches still slice the data as given."""
    cd = ClusterData(data, num_parts=5, log=False)
    assert not torch.equal(cd.data.x, data.x)
    loader = ClusterLoader(cd, batch_size=2, shuffle=True)
    assert loader.data is data
    for batch in loader:
        check_batch(batch, data, cd.partition.part)


@pytest.mark.parametrize("keep", [False, True])
def test_loader_batches_are_pyg_batches(data, pyg_cluster_data, keep):
    """PyG's loader on the same partition: the same nodes in the same order, the same
    edges (up to their order) with the same attributes; keep_inter_cluster_edges
    changes neither loader."""
    d = with_edge_ids(data)
    cd = ClusterData(d, num_parts=7, log=False, keep_inter_cluster_edges=keep)
    ref = pyg_cluster_data(d, cd.partition.part, 7, keep_inter_cluster_edges=keep)
    ours = list(ClusterLoader(cd, batch_size=3))
    theirs = list(pyg_cluster.ClusterLoader(ref, batch_size=3))
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs):
        assert a.num_nodes == b.num_nodes
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
        assert torch.equal(a.eid, a.e_id)
        key = lambda batch: sorted(zip(*batch.edge_index.tolist(), batch.eid.tolist()))
        assert key(a) == key(b)
        assert torch.equal(b.edge_attr, d.edge_attr[b.eid])
        assert torch.equal(a.edge_attr, d.edge_attr[a.eid])


# --------------------------------------------------------------------------- ClusterLoader

@pytest.mark.parametrize("batch_size", [1, 3, 4, 10, 20])
def test_loader_batches(cdata, data, batch_size):
    torch.manual_seed(batch_size)
    loader = ClusterLoader(cdata, batch_size=batch_size, shuffle=True)
    assert len(loader) == math.ceil(cdata.num_parts / batch_size)
    batches = list(loader)
    assert len(batches) == len(loader)
    seen_clusters, seen_nodes = [], []
    for b in batches:
        seen_clusters += check_batch(b, data, cdata.partition.part)
        seen_nodes += b.n_id.tolist()
    assert sorted(seen_clusters) == list(range(cdata.num_parts))
    assert sorted(seen_nodes) == list(range(data.num_nodes))


def test_loader_induced_reference_exact(cdata, data):
    for b in ClusterLoader(cdata, batch_size=3, shuffle=True):
        ref = induced_reference(data.edge_index, b.n_id)
        got = sorted(zip(b.edge_index[0].tolist(), b.edge_index[1].tolist(), b.e_id.tolist()))
        assert got == ref


def test_loader_drop_last(cdata):
    loader = ClusterLoader(cdata, batch_size=3, drop_last=True)
    assert len(loader) == cdata.num_parts // 3
    assert len(list(loader)) == cdata.num_parts // 3


def test_loader_no_shuffle_order(cdata):
    batches = list(ClusterLoader(cdata, batch_size=4))
    part = cdata.partition.part
    got = [sorted(part[b.n_id].unique().tolist()) for b in batches]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def run_epochs(cdata, num_workers, seed):
    torch.manual_seed(seed)
    loader = ClusterLoader(cdata, batch_size=3, shuffle=True, num_workers=num_workers)
    return [[(b.n_id.clone(), b.e_id.clone(), b.edge_index.clone()) for b in loader]
            for _ in range(2)]


def test_loader_determinism_across_workers(cdata):
    a = run_epochs(cdata, 0, 123)
    b = run_epochs(cdata, 2, 123)
    c = run_epochs(cdata, 0, 124)
    assert len(a) == len(b)
    for ea, eb in zip(a, b):
        assert len(ea) == len(eb)
        for x, y in zip(ea, eb):
            for t, u in zip(x, y):
                assert torch.equal(t, u)
    flat = lambda r: [t.tolist() for ep in r for x in ep for t in x[:1]]
    assert flat(a) != flat(c)
    assert flat(a[:1]) != flat(a[1:])  # two epochs differ


def test_loader_rejects_non_cluster_data(data):
    with pytest.raises(TypeError, match="cluster_data"):
        ClusterLoader(data, batch_size=2)


def test_loader_bad_batch_size(cdata):
    for bad in (0, -1):
        with pytest.raises(ValueError, match="batch_size"):
            ClusterLoader(cdata, batch_size=bad)


# --------------------------------------------------------------------------- cache

def test_cache_written_and_reused(data, tmp_path, monkeypatch):
    a = ClusterData(data, num_parts=5, save_dir=tmp_path, log=False)
    path = tmp_path / "part_5" / "metis.pt"
    assert path.exists()

    def boom(*args, **kwargs):
        raise AssertionError("METIS ran despite a valid cache")

    monkeypatch.setattr(cluster_loader, "metis_partition", boom)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = ClusterData(data, num_parts=5, save_dir=str(tmp_path), log=False)
    assert torch.equal(a.partition.part, b.partition.part)
    assert torch.equal(a.partition.partptr, b.partition.partptr)
    assert torch.equal(a.partition.node_perm, b.partition.node_perm)
    # another num_parts, another graph, or other weights: not reused
    with pytest.raises(AssertionError, match="METIS ran"):
        ClusterData(data, num_parts=4, save_dir=tmp_path, log=False)
    other = make_graph(num_nodes=300, num_edges=1500, seed=8, num_isolated=10,
                       num_self_loops=8, num_duplicates=20)
    with pytest.raises(AssertionError, match="METIS ran"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ClusterData(other, num_parts=5, save_dir=tmp_path, log=False)
    with pytest.raises(AssertionError, match="METIS ran"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ClusterData(data, num_parts=5, save_dir=tmp_path, log=False,
                    node_weight=torch.ones(data.num_nodes, dtype=torch.long))
    with pytest.raises(AssertionError, match="METIS ran"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ClusterData(data, num_parts=5, save_dir=tmp_path, recursive=True, log=False)


def test_cache_different_graph_warns_and_recomputes(data, tmp_path):
    ClusterData(data, num_parts=5, save_dir=tmp_path, log=False)
    other = make_graph(num_nodes=300, num_edges=1500, seed=9, num_isolated=10,
                       num_self_loops=8, num_duplicates=20)
    with pytest.warns(UserWarning, match="METIS partition cache"):
        c = ClusterData(other, num_parts=5, save_dir=tmp_path, log=False)
    fresh = ClusterData(other, num_parts=5, log=False)
    assert torch.equal(c.partition.part, fresh.partition.part)


def test_cache_filename(data, tmp_path):
    ClusterData(data, num_parts=3, save_dir=tmp_path, filename="mine.pt", log=False)
    assert (tmp_path / "part_3" / "mine.pt").exists()
    assert not (tmp_path / "part_3" / "metis.pt").exists()
    ClusterData(data, num_parts=3, recursive=True, save_dir=tmp_path, log=False)
    assert (tmp_path / "part_3_recursive" / "metis.pt").exists()
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert leftovers == []


@pytest.mark.parametrize("corrupt", ["truncate", "garbage", "empty"])
def test_cache_corrupted_recomputed(data, tmp_path, corrupt):
    a = ClusterData(data, num_parts=5, save_dir=tmp_path, log=False)
    path = tmp_path / "part_5" / "metis.pt"
    good = path.read_bytes()
    if corrupt == "truncate":
        path.write_bytes(good[: len(good) // 2])
    elif corrupt == "garbage":
        path.write_bytes(b"\x00not a torch file" * 50)
    else:
        path.write_bytes(b"")
    with pytest.warns(UserWarning, match="METIS partition cache"):
        b = ClusterData(data, num_parts=5, save_dir=tmp_path, log=False)
    assert torch.equal(a.partition.part, b.partition.part)
    # rewritten: a third load is silent and valid
    assert path.stat().st_size > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = ClusterData(data, num_parts=5, save_dir=tmp_path, log=False)
    assert torch.equal(a.partition.part, c.partition.part)


def test_cache_tampered_partition_recomputed(data, tmp_path):
    a = ClusterData(data, num_parts=5, save_dir=tmp_path, log=False)
    path = tmp_path / "part_5" / "metis.pt"
    saved = torch.load(path, weights_only=True)
    saved["tensors"]["part"] = torch.full_like(saved["tensors"]["part"], 99)
    torch.save(saved, path)
    with pytest.warns(UserWarning, match="METIS partition cache"):
        b = ClusterData(data, num_parts=5, save_dir=tmp_path, log=False)
    assert torch.equal(a.partition.part, b.partition.part)


# --------------------------------------------------------------------------- diag_enhanced_norm

def dense_reference(ei: torch.Tensor, n: int, lam: float, x: torch.Tensor) -> torch.Tensor:
    """(A~ + lam diag(A~)) x with A~ = (D + I)^-1 (A + I), A[v, u] counting edges u -> v
    (an input self-loop counts in A, so in diag(A~))."""
    a = torch.zeros(n, n, dtype=torch.float64)
    for s, d in ei.t().tolist():
        a[d, s] += 1.0
    deg = torch.bincount(ei[1], minlength=n).double()
    at = torch.diag(1.0 / (deg + 1.0)) @ (a + torch.eye(n, dtype=torch.float64))
    return (at + lam * torch.diag(torch.diagonal(at))) @ x


def gcn_aggregate(ei: torch.Tensor, n: int, lam: float, x: torch.Tensor) -> torch.Tensor:
    out_ei, w = diag_enhanced_norm(ei, n, lam)
    assert out_ei.shape[1] == w.shape[0] == ei.shape[1] + n
    assert torch.equal(out_ei[:, :ei.shape[1]], ei)
    out = torch.zeros(n, x.shape[1], dtype=torch.float64)
    out.index_add_(0, out_ei[1], w.double().unsqueeze(1) * x[out_ei[0]])
    return out


@pytest.mark.parametrize("lam", [0.0, 1.0, 2.5])
def test_diag_enhanced_norm_dense(lam):
    ei = torch.tensor([[0, 1, 2, 2, 3, 0, 0, 4],
                       [1, 2, 1, 0, 1, 1, 2, 3]])  # a duplicate 0->1; node 5 isolated
    n = 6
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(gcn_aggregate(ei, n, lam, x), dense_reference(ei, n, lam, x),
                          atol=1e-6)


@pytest.mark.parametrize("lam", [0.0, 1.0, 2.5])
def test_diag_enhanced_norm_dense_with_input_self_loop(lam):
    # Cluster batches keep the graph's self-loops, so the norm must handle them:
    # node 2 has in-edges 1->2 and the loop 2->2 (deg 2): A~[2, 2] = (1 + 1) / 3,
    # so (A~ + lam diag(A~))[2, 2] = 2 (1 + lam) / 3.
    ei = torch.tensor([[0, 1, 2, 2], [1, 2, 2, 0]])
    n = 3
    x = torch.eye(n, dtype=torch.float64)
    out = gcn_aggregate(ei, n, lam, x)
    assert out[2, 2].item() == pytest.approx(2 * (1 + lam) / 3)
    assert torch.allclose(out, dense_reference(ei, n, lam, x), atol=1e-6)


def test_diag_enhanced_norm_negative_lambda():
    ei = torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match="diag_lambda"):
        diag_enhanced_norm(ei, 2, -0.1)


@pytest.mark.parametrize("name", ["node_weight", "edge_weight"])
@pytest.mark.parametrize("cache", [False, True])
def test_weight_not_a_tensor(data, name, cache, tmp_path):
    size = data.num_nodes if name == "node_weight" else data.num_edges
    kw = {"save_dir": tmp_path} if cache else {}
    with pytest.raises(TypeError, match=name):
        ClusterData(data, 4, log=False, **kw, **{name: [1] * size})
    with pytest.raises(TypeError, match=name):
        ClusterData(data, 4, log=False, **kw, **{name: np.ones(size, dtype=np.int64)})


@given(st.integers(1, 12), st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11),
                                               st.integers(1, 9)), min_size=1, max_size=60))
@settings(max_examples=80, deadline=None)
def test_metis_adjacency_matches_brute_force(num_nodes, edges):
    """Any graph (loops, duplicates, one direction only): each node's neighbors are
    sorted and distinct, and a pair's weight sums its edges in both directions."""
    edges = [(s % num_nodes, d % num_nodes, w) for s, d, w in edges]
    ei = torch.tensor([[s for s, _, _ in edges], [d for _, d, _ in edges]])
    ew = np.array([w for _, _, w in edges], dtype=np.int64)
    g = CSRGraph(ei, num_nodes)
    expected: dict[tuple[int, int], int] = {}
    for s, d, w in edges:
        if s != d:
            expected[(s, d)] = expected.get((s, d), 0) + w
            expected[(d, s)] = expected.get((d, s), 0) + w
    for weights in (None, ew):
        xadj, adjncy, w = metis_adjacency(g, weights)
        assert xadj.shape == (num_nodes + 1,) and xadj[-1] == adjncy.shape[0]
        got = {}
        for v in range(num_nodes):
            nbrs = adjncy[xadj[v]:xadj[v + 1]]
            assert (np.diff(nbrs) > 0).all()
            for j in range(xadj[v], xadj[v + 1]):
                got[(v, int(adjncy[j]))] = None if w is None else int(w[j])
        assert set(got) == set(expected)
        if weights is not None:
            assert got == expected


def test_pickled_cluster_data_leaves_out_its_permuted_copies():
    """Workers get ClusterData pickled: the permuted data and CSR, built on first access,
    stay behind and are rebuilt equal."""
    import pickle

    data = make_graph()
    cluster_data = ClusterData(data, num_parts=4, log=False)
    permuted, indptr = cluster_data.data, cluster_data.partition.indptr
    clone = pickle.loads(pickle.dumps(cluster_data))
    assert clone._data is None and clone.partition._csr is None
    assert torch.equal(clone.data.x, permuted.x)
    assert torch.equal(clone.partition.indptr, indptr)
