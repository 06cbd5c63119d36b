"""Heterogeneous NeighborLoader and sampler: batches against brute force, PyG's fields,
determinism across workers and threads, argument forms and errors."""
from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import numba
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_geometric.data import HeteroData
from torch_geometric.nn import GraphSAGE, to_hetero
from torch_geometric.sampler.base import NumNeighbors

from conftest import random_edge_index
from graphbatch import NeighborLoader
from graphbatch.features import FeatureStore
from graphbatch.loader.hetero_loader import HeteroNeighborLoader
from graphbatch.sampling.hetero import HeteroGraph, HeteroNeighborSampler

CITES, WRITES, WRITTEN = ("paper", "cites", "paper"), ("author", "writes", "paper"), ("paper", "rev_writes", "author")
HOSTS, COAUTHOR = ("venue", "hosts", "paper"), ("author", "coauthor", "author")


def bipartite_edges(num_src: int, num_dst: int, num_edges: int, seed: int) -> torch.Tensor:
    """Skewed edges from ``num_src`` to ``num_dst`` nodes, duplicates included."""
    ei = random_edge_index(max(num_src, num_dst), num_edges, seed, num_duplicates=10)
    return torch.stack([ei[0] % num_src, ei[1] % num_dst])


def make_hetero(seed: int = 0) -> HeteroData:
    """Papers, authors, venues (no incoming edges) and topics (no edges at all), with
    node features and labels, edge features on two edge types, two edge types between
    the same node types, self-type edges and a graph-level attribute."""
    gen = torch.Generator().manual_seed(seed)
    d = HeteroData()
    sizes = {"paper": 300, "author": 200, "venue": 7, "topic": 5}
    for i, (t, n) in enumerate(sizes.items()):
        d[t].x = torch.randn(n, 4 + i, generator=gen)
    d["paper"].y = torch.randint(0, 3, (300,), generator=gen)
    d[CITES].edge_index = bipartite_edges(300, 300, 1500, seed)
    writes = bipartite_edges(200, 300, 700, seed + 1)
    d[WRITES].edge_index = writes
    d[WRITTEN].edge_index = writes.flip(0)
    d[HOSTS].edge_index = torch.stack([torch.arange(300) % 7, torch.arange(300)])
    d[COAUTHOR].edge_index = bipartite_edges(200, 200, 400, seed + 2)
    d[CITES].edge_attr = torch.randn(d[CITES].num_edges, 2, generator=gen)
    d[WRITES].weight = torch.rand(d[WRITES].num_edges, generator=gen)
    d.year = torch.tensor([2024])
    return d


@pytest.fixture(scope="module")
def data() -> HeteroData:
    return make_hetero()


def expected_picks(degree: int, fanout: int, replace: bool) -> int:
    if fanout < 0 or (not replace and degree <= fanout):
        return degree
    return fanout if degree > 0 else 0


def check_sample(num_nodes, edge_index, seeds, fanouts, replace, disjoint, subgraph_type, out):
    """Everything a sample must satisfy, by brute force. ``seeds``: ``[(type, id)]`` in
    input order; ``out``: node, row, col, edge, batch, num_sampled_nodes/edges by type."""
    hops = len(next(iter(fanouts.values()))) if fanouts else 0
    seeds_of = defaultdict(list)
    for t, v in seeds:
        seeds_of[t].append(v)
    hop_of = {}
    for t, n in num_nodes.items():
        node = out.node[t]
        assert node.dtype == torch.int64 and node.dim() == 1
        assert ((node >= 0) & (node < n)).all()
        counts = out.num_sampled_nodes[t]
        assert len(counts) == hops + 1 and sum(counts) == node.numel(), (t, counts)
        assert counts[0] == len(seeds_of[t])
        assert node[:counts[0]].tolist() == seeds_of[t], "seeds first, in input order"
        hop_of[t] = torch.repeat_interleave(torch.arange(hops + 1), torch.tensor(counts))
        if disjoint:
            tree = out.batch[t]
            assert tree.dtype == torch.int64 and tree.numel() == node.numel()
            assert len(set(zip(tree.tolist(), node.tolist()))) == node.numel()
        else:
            assert out.batch is None
            assert len(set(node.tolist())) == node.numel(), f"{t}: a node twice"
    if disjoint:  # each seed its own tree, numbered in input order
        for i, (t, v) in enumerate(seeds):
            assert int(out.batch[t][seeds_of[t].index(v)]) == i
    sources = defaultdict(lambda: defaultdict(list))  # type -> hop -> [(tree, node)]
    for r, ei in edge_index.items():
        s, _, d = r
        row, col, e = out.row[r], out.col[r], out.edge[r]
        assert row.dtype == col.dtype == e.dtype == torch.int64
        assert row.numel() == col.numel() == e.numel()
        if e.numel():
            assert 0 <= int(e.min()) and int(e.max()) < ei.size(1)
            assert 0 <= int(row.min()) and int(row.max()) < out.node[s].numel()
            assert 0 <= int(col.min()) and int(col.max()) < out.node[d].numel()
        # Every sampled edge exists, with these endpoints and this type.
        assert torch.equal(out.node[s][row], ei[0, e]), f"{r}: sources"
        assert torch.equal(out.node[d][col], ei[1, e]), f"{r}: targets"
        if disjoint and e.numel():
            assert torch.equal(out.batch[s][row], out.batch[d][col]), f"{r}: across trees"
        if subgraph_type == "induced":
            assert out.num_sampled_edges is None
            assert sorted(zip(row.tolist(), col.tolist(), e.tolist())) == \
                induced_pairs(ei, out, r, disjoint), f"{r}: induced edges"
            continue
        per_hop = out.num_sampled_edges[r]
        assert len(per_hop) == hops and sum(per_hop) == e.numel()
        degree = torch.bincount(ei[1], minlength=num_nodes[d])
        start = 0
        for h, m in enumerate(per_hop):
            hr, hc, he = row[start:start + m], col[start:start + m], e[start:start + m]
            start += m
            assert bool((hop_of[d][hc] == h).all()), f"{r}: hop {h} edge from a node of another hop"
            frontier = (hop_of[d] == h).nonzero().view(-1)
            got = torch.bincount(hc, minlength=out.node[d].numel())[frontier]
            want = torch.tensor([expected_picks(int(degree[out.node[d][v]]), fanouts[r][h], replace)
                                 for v in frontier.tolist()], dtype=torch.int64)
            assert torch.equal(got, want), f"{r}: hop {h} fanout {fanouts[r][h]}"
            if not replace:
                assert len(set(zip(hc.tolist(), he.tolist()))) == m, f"{r}: an edge twice"
            tree = out.batch[s][hr] if disjoint else torch.zeros_like(hr)
            sources[s][h] += list(zip(tree.tolist(), out.node[s][hr].tolist()))
    if subgraph_type == "induced":
        return
    # Nodes of hop h + 1: the new sources of hop h's edges, of every edge type.
    for t in num_nodes:
        tree = out.batch[t] if disjoint else torch.zeros_like(out.node[t])
        keys = list(zip(tree.tolist(), out.node[t].tolist()))
        for h in range(hops):
            before = set(keys[:int(sum(out.num_sampled_nodes[t][:h + 1]))])
            added = keys[len(before):len(before) + out.num_sampled_nodes[t][h + 1]]
            assert set(added) == set(sources[t][h]) - before, f"{t}: hop {h + 1} nodes"


def induced_pairs(ei, out, r, disjoint):
    s, _, d = r
    src_local, dst_local = defaultdict(list), defaultdict(list)
    for i, v in enumerate(out.node[s].tolist()):
        src_local[v].append(i)
    for j, v in enumerate(out.node[d].tolist()):
        dst_local[v].append(j)
    pairs = []
    for e, (u, v) in enumerate(ei.t().tolist()):
        for i in src_local.get(u, ()):
            for j in dst_local.get(v, ()):
                if not disjoint or int(out.batch[s][i]) == int(out.batch[d][j]):
                    pairs.append((i, j, e))
    return sorted(pairs)


def as_output(batch: HeteroData):
    """A batch's sampler fields by type, as :func:`check_sample` reads them."""
    return SimpleNamespace(
        node={t: batch[t].n_id for t in batch.node_types},
        row={r: batch[r].edge_index[0] for r in batch.edge_types},
        col={r: batch[r].edge_index[1] for r in batch.edge_types},
        edge={r: batch[r].e_id for r in batch.edge_types},
        batch={t: batch[t].batch for t in batch.node_types} if "batch" in batch[batch.node_types[0]] else None,
        num_sampled_nodes={t: batch[t].num_sampled_nodes for t in batch.node_types},
        num_sampled_edges=({r: batch[r].num_sampled_edges for r in batch.edge_types}
                           if "num_sampled_edges" in batch[batch.edge_types[0]] else None))


def check_batch(batch, data, input_type, input_nodes, fanouts, replace=False, disjoint=False,
                subgraph_type="directional"):
    """A loader batch: attributes sliced by n_id and e_id, input fields, then
    :func:`check_sample` on its ids."""
    assert isinstance(batch, HeteroData)
    assert batch.node_types == data.node_types and batch.edge_types == data.edge_types
    for t in data.node_types:
        n_id = batch[t].n_id
        assert torch.equal(batch[t].x, data[t].x[n_id])
        assert batch[t].num_nodes == n_id.numel()
    assert torch.equal(batch["paper"].y, data["paper"].y[batch["paper"].n_id])
    for r in data.edge_types:
        e_id, ei = batch[r].e_id, batch[r].edge_index
        assert ei.shape == (2, e_id.numel()) and ei.is_contiguous()
        for key in data[r].keys():
            if key != "edge_index":
                assert torch.equal(batch[r][key], data[r][key][e_id])
    assert torch.equal(batch.year, data.year)
    bs = batch[input_type].batch_size
    assert bs == batch[input_type].input_id.numel() >= 1
    for t in data.node_types:
        assert ("input_id" in batch[t]) == (t == input_type)
    seeds = [(input_type, int(v)) for v in input_nodes[batch[input_type].input_id]]
    fanouts = {r: fanouts for r in data.edge_types} if isinstance(fanouts, list) else fanouts
    check_sample({t: data[t].num_nodes for t in data.node_types},
                 {r: data[r].edge_index for r in data.edge_types}, seeds, fanouts, replace,
                 disjoint, subgraph_type, as_output(batch))


def collect(loader):
    return [b for b in loader]


def assert_same_batches(a, b, what=""):
    assert len(a) == len(b) > 0, f"{what}: {len(a)} vs {len(b)} batches"
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.node_types == y.node_types and x.edge_types == y.edge_types
        for sx, sy in zip(x.stores, y.stores):
            assert set(sx.keys()) == set(sy.keys()), f"{what}: batch {i} keys"
            for key in sx.keys():
                u, v = sx[key], sy[key]
                same = (torch.equal(u, v) and u.dtype == v.dtype) if isinstance(u, torch.Tensor) else u == v
                assert same, f"{what}: batch {i}, {key} differs"


# ------------------------------------------------------------------------------- graph


def test_graph_layout_against_brute_force(data):
    """Each (node, incoming edge type) segment holds exactly that node's incoming edges
    of that type, in edge order; memory is PyG's per-type CSC's."""
    g = HeteroGraph.from_data(data)
    segptr, indices, perm = g.numpy()
    for r, k in enumerate(g.edge_types):
        s, _, d = k
        t = g.node_types.index(d)
        slots = list(g.in_rel[g.in_ptr[t]:g.in_ptr[t + 1]])
        ei = data[k].edge_index
        for v in range(data[d].num_nodes):
            seg = g.seg_base[t] + v * len(slots) + slots.index(r)
            got = [(int(indices[p]) - g.node_offset[g.node_types.index(s)],
                    int(perm[p]) - g.edge_offset[r]) for p in range(segptr[seg], segptr[seg + 1])]
            want = [(int(ei[0, e]), e) for e in (ei[1] == v).nonzero().view(-1).tolist()]
            assert got == want, (k, v)
    pyg_bytes = sum(8 * (data[k[2]].num_nodes + 1) + 16 * data[k].num_edges for k in data.edge_types)
    assert g.nbytes == pyg_bytes - 8 * (len(data.edge_types) - 1)


# ------------------------------------------------------------------------------ sampler


@st.composite
def hetero_problem(draw):
    num_types = draw(st.integers(1, 3))
    types = [f"t{i}" for i in range(num_types)]
    num_nodes = {t: draw(st.integers(1, 12)) for t in types}
    combos = [(s, rel, d) for s in types for d in types for rel in ("a", "b")]
    edge_types = draw(st.lists(st.sampled_from(combos), min_size=1, max_size=5, unique=True))
    edge_index = {}
    for s, rel, d in edge_types:
        m = draw(st.integers(0, 30))
        # Skewed: half the endpoints among the first two nodes.
        src = draw(st.lists(st.one_of(st.integers(0, num_nodes[s] - 1), st.integers(0, min(1, num_nodes[s] - 1))),
                            min_size=m, max_size=m))
        dst = draw(st.lists(st.one_of(st.integers(0, num_nodes[d] - 1), st.integers(0, min(1, num_nodes[d] - 1))),
                            min_size=m, max_size=m))
        edge_index[(s, rel, d)] = torch.tensor([src, dst], dtype=torch.long).view(2, m)
    hops = draw(st.integers(1, 3))
    fanouts = {r: draw(st.lists(st.sampled_from([-1, 0, 1, 2, 3, 5]), min_size=hops, max_size=hops))
               for r in edge_types}
    seed_types = draw(st.lists(st.sampled_from(types), min_size=1, max_size=2, unique=True))
    seeds = {t: draw(st.lists(st.integers(0, num_nodes[t] - 1), min_size=1, max_size=4, unique=True))
             for t in seed_types}
    options = dict(replace=draw(st.booleans()), disjoint=draw(st.booleans()),
                   subgraph_type=draw(st.sampled_from(["directional", "induced"])))
    return num_nodes, edge_index, fanouts, seeds, options, draw(st.integers(0, 2**40))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hetero_problem())
def test_property_random_hetero_graphs(problem):
    num_nodes, edge_index, fanouts, seeds, options, seed = problem
    graph = HeteroGraph(num_nodes, edge_index)
    sampler = HeteroNeighborSampler(graph, fanouts, **options)
    out = sampler.sample(seeds, seed=seed, batch=3)
    ordered = [(t, v) for t, ids in seeds.items() for v in ids]
    check_sample(num_nodes, edge_index, ordered, fanouts, options["replace"], options["disjoint"],
                 options["subgraph_type"], out)
    again = sampler.sample(seeds, seed=seed, batch=3)
    for name in ("node", "row", "col", "edge"):
        a, b = getattr(out, name), getattr(again, name)
        assert all(torch.equal(a[k], b[k]) for k in a)
    if options["subgraph_type"] == "induced":  # the same nodes as directional sampling
        plain = HeteroNeighborSampler(graph, fanouts, replace=options["replace"],
                                      disjoint=options["disjoint"]).sample(seeds, seed=seed, batch=3)
        assert all(torch.equal(plain.node[t], out.node[t]) for t in num_nodes)


def test_sampler_one_pass_per_hop_whatever_the_edge_types(data, monkeypatch):
    """One counting and one picking kernel call per hop, not one per edge type."""
    from graphbatch.sampling import _hetero_kernels as H

    calls = defaultdict(int)
    for name in ("count_typed_picks", "pick_typed"):
        kernel = getattr(H, name)

        def counted(*args, _kernel=kernel, _name=name):
            calls[_name] += 1
            return _kernel(*args)

        monkeypatch.setattr(H, name, counted)
    sampler = HeteroNeighborSampler(HeteroGraph.from_data(data), [3, 2, 2])
    sampler.sample(("paper", [0, 1, 2]))
    assert dict(calls) == {"count_typed_picks": 3, "pick_typed": 3}


def test_sampler_seed_forms_and_errors(data):
    sampler = HeteroNeighborSampler(HeteroGraph.from_data(data), [2, 2])
    a = sampler.sample(("paper", torch.tensor([3, 1])), seed=5)
    b = sampler.sample({"paper": [3, 1]}, seed=5)
    assert all(torch.equal(a.node[t], b.node[t]) for t in a.node)
    mixed = sampler.sample({"author": [4], "paper": [3]}, seed=5)
    assert mixed.node["author"][0] == 4 and mixed.node["paper"][0] == 3
    with pytest.raises(ValueError, match="seeds\\['nope'\\] names node type 'nope'"):
        sampler.sample(("nope", [0]))
    with pytest.raises(ValueError, match=r"seeds\['paper'\].*300"):
        sampler.sample(("paper", [300]))
    with pytest.raises(ValueError, match="at least one"):
        sampler.sample(("paper", []))
    with pytest.raises(TypeError, match="seeds"):
        sampler.sample(torch.tensor([1]))


# ------------------------------------------------------------------------------- loader


CONFIGS = [
    dict(num_neighbors=[4, 3]),
    dict(num_neighbors=[3, 2], replace=True),
    dict(num_neighbors=[3, 2], disjoint=True),
    dict(num_neighbors=[3, 2], subgraph_type="induced"),
    dict(num_neighbors={CITES: [5, 0], WRITES: [2, 3], WRITTEN: [-1, 1], HOSTS: [1, 1],
                        COAUTHOR: [0, 2]}),
    dict(num_neighbors=[-1]),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_batch_fields(data, cfg):
    input_nodes = torch.arange(300)
    torch.manual_seed(0)
    loader = NeighborLoader(data, input_nodes="paper", batch_size=64, shuffle=True, **cfg)
    assert isinstance(loader, HeteroNeighborLoader) and isinstance(loader, NeighborLoader)
    batches = collect(loader)
    assert len(batches) == len(loader) == 5
    for b in batches:
        check_batch(b, data, "paper", input_nodes, cfg["num_neighbors"], cfg.get("replace", False),
                    cfg.get("disjoint", False), cfg.get("subgraph_type", "directional"))
    ids = torch.cat([b["paper"].input_id for b in batches]).sort().values
    assert torch.equal(ids, input_nodes)


def test_input_node_forms(data):
    """A node type, (type, None), (type, ids), (type, mask), and input_id, as PyG's
    get_input_nodes reads them."""
    mask = torch.zeros(200, dtype=torch.bool)
    mask[torch.tensor([5, 17, 90, 150])] = True
    ids = torch.tensor([150, 17, 5])
    everyone, picked = torch.arange(200), mask.nonzero().view(-1)
    # (input_nodes, the seeds, their input_id, what input_id indexes)
    for input_nodes, seeds, input_id, lookup in [
        ("author", everyone, everyone, everyone),
        (("author", None), everyone, everyone, everyone),
        (("author", ids), ids, torch.arange(3), ids),
        (["author", ids.tolist()], ids, torch.arange(3), ids),
        (("author", mask), picked, picked, everyone),
    ]:
        batches = collect(NeighborLoader(data, [2, 2], input_nodes=input_nodes, batch_size=50))
        assert torch.equal(torch.cat([b["author"].input_id for b in batches]), input_id)
        got = torch.cat([b["author"].n_id[:b["author"].batch_size] for b in batches])
        assert torch.equal(got, seeds), input_nodes
        for b in batches:
            check_batch(b, data, "author", lookup, [2, 2])
    given = torch.tensor([70, 71, 72])
    b = next(iter(NeighborLoader(data, [1], input_nodes=("author", ids), input_id=given, batch_size=8)))
    assert torch.equal(b["author"].input_id, given)


def test_num_neighbors_forms_give_the_same_batches(data):
    """A list, a dict of every edge type (tuple or 'src__rel__dst' keys) and a
    NumNeighbors with a default are the same fanouts."""
    forms = [
        [3, 2],
        {r: [3, 2] for r in data.edge_types},
        {"__".join(r): [3, 2] for r in data.edge_types},
        NumNeighbors({CITES: [3, 2]}, default=[3, 2]),
        NumNeighbors([3, 2]),
    ]
    runs = []
    for form in forms:
        torch.manual_seed(4)
        runs.append(collect(NeighborLoader(data, form, input_nodes="paper", batch_size=100, shuffle=True)))
    for form, run in zip(forms[1:], runs[1:]):
        assert_same_batches(runs[0], run, repr(form))


def test_per_type_fanout_zero_stops_that_type(data):
    fanouts = {r: [0, 0] for r in data.edge_types}
    fanouts[WRITES] = [2, 0]
    b = next(iter(NeighborLoader(data, fanouts, input_nodes="paper", batch_size=20)))
    assert b["author"].num_sampled_nodes[1] > 0 and b["paper"].num_sampled_nodes[1:] == [0, 0]
    assert b[CITES].num_edges == b[WRITTEN].num_edges == 0
    assert b[WRITES].num_sampled_edges == [b[WRITES].num_edges, 0]


# -------------------------------------------------------------------------- determinism


DET_CONFIGS = [
    dict(num_neighbors=[3, 2], shuffle=True),
    dict(num_neighbors={CITES: [4, 1], WRITES: [2, 2], WRITTEN: [1, 3], HOSTS: [-1, 1],
                        COAUTHOR: [2, 2]}, replace=True, shuffle=True),
    dict(num_neighbors=[2, 2], disjoint=True, shuffle=True),
    dict(num_neighbors=[2, 2], subgraph_type="induced", shuffle=True),
]


@pytest.mark.parametrize("cfg", DET_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_same_seed_same_batches_any_num_workers(data, cfg):
    """0 and 2 workers, two epochs each: the same batches; the 0-worker pass runs first,
    so forked workers start after the parent ran the parallel kernels."""
    runs = {}
    for nw in (0, 2):
        torch.manual_seed(42)
        loader = NeighborLoader(data, input_nodes="paper", batch_size=64, num_workers=nw, **cfg)
        runs[nw] = [collect(loader), collect(loader)]
    for epoch in range(2):
        assert_same_batches(runs[0][epoch], runs[2][epoch], f"workers 0 vs 2, epoch {epoch}")
    with pytest.raises(AssertionError):  # the two epochs differ
        assert_same_batches(runs[0][0], runs[0][1])
    for b in runs[2][0]:
        check_batch(b, data, "paper", torch.arange(300), cfg["num_neighbors"], cfg.get("replace", False),
                    cfg.get("disjoint", False), cfg.get("subgraph_type", "directional"))


def test_filter_per_worker_same_batches(data):
    runs = []
    for nw, fpw in ((0, False), (2, True), (2, False)):
        torch.manual_seed(3)
        runs.append(collect(NeighborLoader(data, [3, 2], input_nodes="paper", batch_size=64,
                                           shuffle=True, num_workers=nw, filter_per_worker=fpw)))
    assert_same_batches(runs[0], runs[1], "filter_per_worker")
    assert_same_batches(runs[0], runs[2], "workers without filter_per_worker")


def batches_on_threads(threads: int, cfg: dict) -> list:
    """One epoch made with numba on ``threads`` threads, seed 42, with ``prefetch=0``:
    the batches are sampled in this thread, which runs the kernels on the threads set
    here (prefetch threads set their own)."""
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        torch.manual_seed(42)
        return collect(NeighborLoader(data_for_threads, input_nodes="paper", batch_size=64,
                                      prefetch=0, **cfg))
    finally:
        numba.set_num_threads(before)


data_for_threads = make_hetero(seed=5)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has fewer than 2 threads")
@pytest.mark.parametrize("cfg", DET_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_same_seed_same_batches_any_numba_thread_count(cfg):
    assert_same_batches(batches_on_threads(1, cfg), batches_on_threads(2, cfg), "threads 1 vs 2")


def test_different_seed_different_batches(data):
    runs = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        runs.append(collect(NeighborLoader(data, [3, 2], input_nodes="paper", batch_size=64)))
    with pytest.raises(AssertionError, match="differs"):
        assert_same_batches(*runs)


# ------------------------------------------------------------------------ features, models


def test_feature_store_per_node_and_edge_type(data):
    """A user's store for one node type (half precision) and one edge type; the other
    types gather data's tables."""
    half = FeatureStore({"x": data["author"].x}, dtype=torch.float16)
    edge = FeatureStore({"edge_attr": data[CITES].edge_attr * 2})
    loader = NeighborLoader(data, [3, 2], input_nodes="paper", batch_size=64,
                            node_store={"author": half}, edge_store={"paper__cites__paper": edge})
    for b in loader:
        assert b["author"].x.dtype == torch.float16
        assert torch.equal(b["author"].x, data["author"].x[b["author"].n_id].half())
        assert torch.equal(b["paper"].x, data["paper"].x[b["paper"].n_id])
        assert torch.equal(b[CITES].edge_attr, 2 * data[CITES].edge_attr[b[CITES].e_id])


def test_changes_to_data_show_in_later_batches(data):
    d = make_hetero(seed=1)
    loader = NeighborLoader(d, [-1], input_nodes="paper", batch_size=300, prefetch=0)
    first = next(iter(loader))
    d["author"].x = d["author"].x + 1  # replaced
    d["paper"].x.mul_(2)  # written in place
    d["paper"].z = torch.ones(300)  # added
    b = next(iter(loader))
    assert torch.equal(b["author"].n_id, first["author"].n_id)
    assert torch.equal(b["author"].x, first["author"].x + 1)
    assert torch.equal(b["paper"].x, 2 * first["paper"].x)
    assert torch.equal(b["paper"].z, torch.ones(b["paper"].num_nodes))


def test_to_hetero_graphsage_consumes_batches(data):
    # Venues and topics get no messages, which to_hetero refuses: the model leaves them out.
    metadata = (["paper", "author"], [CITES, WRITES, WRITTEN, COAUTHOR])
    model = to_hetero(GraphSAGE((-1, -1), 16, 2, out_channels=3), metadata, aggr="sum")
    b = next(iter(NeighborLoader(data, [3, 2], input_nodes=("paper", torch.arange(32)), batch_size=32)))
    out = model({t: b[t].x for t in metadata[0]}, {r: b[r].edge_index for r in metadata[1]})
    assert out["paper"].shape == (b["paper"].num_nodes, 3)
    loss = torch.nn.functional.cross_entropy(out["paper"][:b["paper"].batch_size],
                                             b["paper"].y[:b["paper"].batch_size])
    loss.backward()


def test_transform_and_transform_sampler_output(data):
    seen = []

    def on_ids(out):
        seen.append(out.num_sampled_nodes["paper"][0])
        return out

    def on_batch(batch):
        batch.tagged = True
        return batch

    b = next(iter(NeighborLoader(data, [2], input_nodes="paper", batch_size=10, prefetch=0,
                                 transform=on_batch, transform_sampler_output=on_ids)))
    assert b.tagged and seen == [10]


def test_prebuilt_graph_and_sampler(data):
    graph = HeteroGraph.from_data(data)
    sampler = HeteroNeighborSampler(graph, [3, 2])
    runs = []
    for fanouts, kwargs in (([3, 2], {}), ([3, 2], {"graph": graph}),
                            ([1], {"neighbor_sampler": sampler})):  # the sampler's fanouts win
        torch.manual_seed(8)
        runs.append(collect(NeighborLoader(data, fanouts, input_nodes="paper", batch_size=100, **kwargs)))
    assert_same_batches(runs[0], runs[1], "graph")
    assert_same_batches(runs[0], runs[2], "neighbor_sampler")


def test_pyg_batches_have_the_same_fields(data):
    """PyG's hetero loader (pyg-lib or torch-sparse) gives batches of the same keys per
    type, with the same seeds (its sampler output lacks per-hop counts with torch-sparse)."""
    if not (_has("pyg_lib") or _has("torch_sparse")):
        pytest.skip("PyG's hetero sampler needs pyg_lib or torch_sparse")
    from torch_geometric.loader import NeighborLoader as PyGNeighborLoader

    ours = next(iter(NeighborLoader(data, [3, 2], input_nodes="paper", batch_size=16)))
    theirs = next(iter(PyGNeighborLoader(data, [3, 2], input_nodes="paper", batch_size=16)))
    counts = {"num_sampled_nodes", "num_sampled_edges"}
    for s, p in zip(ours.stores, theirs.stores):
        extra = counts if not _has("pyg_lib") else set()
        assert set(s.keys()) - extra == set(p.keys()) - extra
    assert torch.equal(ours["paper"].n_id[:16], theirs["paper"].n_id[:16])
    assert torch.equal(ours["paper"].input_id, theirs["paper"].input_id)


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------------ errors


def test_bad_arguments(data):
    with pytest.raises(ValueError, match="input_nodes.*node type"):
        NeighborLoader(data, [2])
    with pytest.raises(ValueError, match="input_nodes names node type 'nope'"):
        NeighborLoader(data, [2], input_nodes="nope")
    with pytest.raises(TypeError, match="input_nodes"):
        NeighborLoader(data, [2], input_nodes=torch.arange(3))
    with pytest.raises(ValueError, match=r"mask must have shape \[300\]"):
        NeighborLoader(data, [2], input_nodes=("paper", torch.ones(200, dtype=torch.bool)))
    with pytest.raises(ValueError, match="'paper' holds node id 300"):
        NeighborLoader(data, [2], input_nodes=("paper", torch.tensor([0, 300])))
    with pytest.raises(ValueError, match="num_neighbors names edge type.*'nope'"):
        NeighborLoader(data, {("paper", "nope", "paper"): [2]}, input_nodes="paper")
    with pytest.raises(ValueError, match="no fanouts for edge type.*writes"):
        NeighborLoader(data, {CITES: [2]}, input_nodes="paper")
    with pytest.raises(ValueError, match="same number of hops"):
        NeighborLoader(data, NumNeighbors({CITES: [2, 2]}, default=[2]), input_nodes="paper")
    with pytest.raises(ValueError, match=r"num_neighbors\[\('paper', 'cites', 'paper'\)\].*-2"):
        NeighborLoader(data, NumNeighbors({CITES: [-2]}, default=[2]), input_nodes="paper")
    with pytest.raises(TypeError, match="edge type"):
        NeighborLoader(data, {"paper-cites": [2]}, input_nodes="paper")
    with pytest.raises(NotImplementedError, match="bidirectional"):
        NeighborLoader(data, [2], input_nodes="paper", subgraph_type="bidirectional")
    with pytest.raises(NotImplementedError, match="weight_attr"):
        NeighborLoader(data, [2], input_nodes="paper", weight_attr="weight")
    with pytest.raises(NotImplementedError, match="temporal"):
        NeighborLoader(data, [2], input_nodes="paper", time_attr="t")
    with pytest.raises(ValueError, match="node_store names node type 'nope'"):
        NeighborLoader(data, [2], input_nodes="paper", node_store={"nope": FeatureStore({})})
    with pytest.raises(ValueError, match=r"node_store\['author'\] has 300 rows, data 200"):
        NeighborLoader(data, [2], input_nodes="paper",
                       node_store={"author": FeatureStore({"x": torch.zeros(300, 2)})})
    with pytest.raises(TypeError, match="node_store"):
        NeighborLoader(data, [2], input_nodes="paper", node_store=FeatureStore({}))
    with pytest.raises(TypeError, match="graph for HeteroData"):
        NeighborLoader(data, [2], input_nodes="paper", graph=object())
    with pytest.raises(ValueError, match="does not match"):
        NeighborLoader(data, [2], input_nodes="paper", graph=HeteroGraph.from_data(make_hetero_small()))
    bad = make_hetero(seed=2)
    bad["author"].h = torch.zeros(199, 3)
    with pytest.raises(ValueError, match=r"data\['author'\].*'h' has 199 rows"):
        NeighborLoader(bad, [2], input_nodes="paper")


def make_hetero_small() -> HeteroData:
    d = HeteroData()
    d["paper"].num_nodes = 3
    d[CITES].edge_index = torch.tensor([[0, 1], [1, 2]])
    return d


def test_bad_graph():
    with pytest.raises(ValueError, match="node type 'venue'"):
        HeteroGraph({"paper": 3}, {HOSTS: torch.zeros(2, 1, dtype=torch.long)})
    with pytest.raises(ValueError, match=r"cites.*sources.*node id 3"):
        HeteroGraph({"paper": 3}, {CITES: torch.tensor([[3], [0]])})
    with pytest.raises(ValueError, match=r"cites.*targets.*negative"):
        HeteroGraph({"paper": 3}, {CITES: torch.tensor([[0], [-1]])})
    with pytest.raises(TypeError, match=r"cites.*dtype"):
        HeteroGraph({"paper": 3}, {CITES: torch.zeros(2, 1)})
    with pytest.raises(ValueError, match=r"num_nodes\['paper'\]"):
        HeteroGraph({"paper": -1}, {})


# ------------------------------------------------------------------------------- bench


def test_typed_graph_splits_the_graph_by_id():
    """Node v is node v // 3 of type n{v % 3}, with its features; every edge between
    different types is kept, under its (source type, target type) edge type."""
    from graphbatch.cli.hetero_bench import typed_graph
    from graphbatch.datasets.synthetic import skewed_pairs

    data = skewed_pairs(300, 2000, 2, seed=1)
    h = typed_graph(data)
    assert h.node_types == ["n0", "n1", "n2"] and len(h.edge_types) == 6
    for t in range(3):
        assert torch.equal(h[f"n{t}"].x, data.x[t::3])
    want = sorted((u, v) for u, v in data.edge_index.t().tolist() if u % 3 != v % 3)
    got = sorted((3 * u + int(a[1]), 3 * v + int(b[1])) for a, _, b in h.edge_types
                 for u, v in h[a, "to", b].edge_index.t().tolist())
    assert got == want


def test_bench_hetero_rows(tmp_path, capsys):
    """``graphbatch bench hetero`` on a tiny graph: its rows and JSON."""
    import argparse

    from graphbatch.cli import hetero_bench, results
    from graphbatch.cli._args import run_check

    parser = argparse.ArgumentParser()
    hetero_bench.add_arguments(parser)
    args = parser.parse_args(["--num-nodes", "3000", "--num-pairs", "15000", "--num-features", "4",
                              "--fanouts", "3", "2", "--batch-size", "64", "--num-input-nodes",
                              "500", "--batches", "3", "--warmup", "1", "--out",
                              str(tmp_path / "h.json")])
    run_check(args)
    rows = hetero_bench.run(args)
    assert [r["loader"] for r in rows][:2] == ["graphbatch (stages)", "graphbatch"]
    for row in rows:
        assert row["ms_per_batch"] > 0 and row["edges_per_s"] > 0 and row["graph_mib"] > 0
    assert rows[0]["sampled_edges_per_s"] > 0 and rows[1]["sampled_edges_per_s"] is None
    assert results.read(tmp_path / "h.json")["rows"] == rows
    assert "graphbatch (stages)" in capsys.readouterr().out
    args.batches = 100
    assert "fewer than --warmup" in hetero_bench._check(args)
