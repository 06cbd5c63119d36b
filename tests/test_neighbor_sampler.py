"""NeighborSampler: every output checked edge by edge against the graph (brute force)."""
from __future__ import annotations

from collections import defaultdict

import numba
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import in_degree, induced_reference, make_graph
from graphbatch import CSRGraph, NeighborSampler, SampledSubgraph


def check_directional(out: SampledSubgraph, edge_index, num_nodes, seeds, fanouts, replace,
                      disjoint, edge_weight=None) -> None:
    """Every property of a directional sample that follows from the spec."""
    src_all, dst_all = edge_index[0].numpy(), edge_index[1].numpy()
    seeds = torch.as_tensor(seeds)
    node, row, col, edge = out.node.numpy(), out.row.numpy(), out.col.numpy(), out.edge.numpy()
    for t in (out.node, out.row, out.col, out.edge):
        assert t.dtype == torch.int64 and t.dim() == 1
    n, m = node.size, row.size
    assert col.size == m and edge.size == m
    B = seeds.numel()

    # Seeds first, in input order; counts per hop consistent with the lengths.
    assert torch.equal(out.node[:B], seeds)
    assert len(out.num_sampled_nodes) == len(fanouts) + 1
    assert len(out.num_sampled_edges) == len(fanouts)
    assert out.num_sampled_nodes[0] == B
    assert sum(out.num_sampled_nodes) == n
    assert sum(out.num_sampled_edges) == m
    assert all(c >= 0 for c in out.num_sampled_nodes + out.num_sampled_edges)

    # Every edge is a graph edge, in the right direction, with its own id.
    if m:
        assert row.min() >= 0 and row.max() < n and col.min() >= 0 and col.max() < n
        assert edge.min() >= 0 and edge.max() < edge_index.size(1)
        np.testing.assert_array_equal(src_all[edge], node[row])
        np.testing.assert_array_equal(dst_all[edge], node[col])
        if edge_weight is not None:
            assert (edge_weight.numpy()[edge] > 0).all(), "a zero-weight edge was sampled"

    # Node uniqueness: globally, or per tree in disjoint mode.
    if disjoint:
        tree = out.batch.numpy()
        assert out.batch.dtype == torch.int64 and tree.size == n
        np.testing.assert_array_equal(tree[:B], np.arange(B))
        assert len(set(zip(tree.tolist(), node.tolist()))) == n
        np.testing.assert_array_equal(tree[row], tree[col])
    else:
        assert out.batch is None
        assert len(set(node.tolist())) == n

    deg = in_degree(edge_index, num_nodes, edge_weight)
    cum_n = np.concatenate([[0], np.cumsum(out.num_sampled_nodes)])
    cum_e = np.concatenate([[0], np.cumsum(out.num_sampled_edges)])
    for h, fanout in enumerate(fanouts):
        r, c, e = row[cum_e[h]:cum_e[h + 1]], col[cum_e[h]:cum_e[h + 1]], edge[cum_e[h]:cum_e[h + 1]]
        # Targets of hop h are the nodes added at hop h - 1 (the seeds at hop 0).
        assert ((c >= cum_n[h]) & (c < cum_n[h + 1])).all(), f"hop {h}: target outside frontier"
        # Sources are known nodes or the nodes this hop adds, numbered by first appearance.
        assert (r < cum_n[h + 2]).all(), f"hop {h}: source from a later hop"
        fresh = [x for x in r.tolist() if x >= cum_n[h + 1]]
        assert list(dict.fromkeys(fresh)) == list(range(cum_n[h + 1], cum_n[h + 2])), \
            f"hop {h}: new nodes not numbered in order of first appearance"
        per_target = defaultdict(list)
        for cc, ee in zip(c.tolist(), e.tolist()):
            per_target[cc].append(ee)
        for t in range(cum_n[h], cum_n[h + 1]):
            d = int(deg[node[t]])
            got = per_target.get(t, [])
            if fanout < 0:
                want = d
            elif replace:
                want = fanout if d > 0 else 0
            else:
                want = min(fanout, d)
            assert len(got) == want, f"hop {h}, node {node[t]}: {len(got)} picks, want {want}"
            if not replace or fanout < 0:
                assert len(set(got)) == len(got), f"hop {h}, node {node[t]}: repeated edge"
            if fanout < 0 or (not replace and fanout >= d):
                mask = dst_all == node[t]
                if edge_weight is not None:
                    mask &= edge_weight.numpy() > 0
                assert sorted(got) == np.flatnonzero(mask).tolist(), \
                    f"hop {h}, node {node[t]}: not all neighbors taken"


def check_induced(out, edge_index, disjoint) -> None:
    assert out.num_sampled_edges is None
    got = sorted(zip(out.row.tolist(), out.col.tolist(), out.edge.tolist()))
    assert got == induced_reference(edge_index, out.node, out.batch if disjoint else None)


def check_bidirectional(out, base, edge_index) -> None:
    """``base`` is the directional sample with the same seed: same nodes, edges plus reverses."""
    assert out.num_sampled_edges is None
    assert torch.equal(out.node, base.node)
    assert out.num_sampled_nodes == base.num_sampled_nodes
    pairs = list(zip(out.row.tolist(), out.col.tolist()))
    assert len(set(pairs)) == len(pairs), "a local pair appears twice"
    want = set(zip(base.row.tolist(), base.col.tolist())) | set(zip(base.col.tolist(), base.row.tolist()))
    assert set(pairs) == want
    for r, c in pairs:
        assert (c, r) in want
    # Each edge id names a graph edge joining the pair, in one direction or the other.
    src, dst = edge_index[0][out.edge], edge_index[1][out.edge]
    a, b = out.node[out.row], out.node[out.col]
    assert (((src == a) & (dst == b)) | ((src == b) & (dst == a))).all()


def make_samplers(graph, fanouts, replace, disjoint, edge_weight=None):
    kw = dict(replace=replace, disjoint=disjoint, edge_weight=edge_weight)
    return {t: NeighborSampler(graph, fanouts, subgraph_type=t, **kw)
            for t in ("directional", "induced", "bidirectional")}


def sample_all_types(graph, edge_index, seeds, fanouts, replace, disjoint, edge_weight=None,
                     seed=0, batch=0, samplers=None):
    """Runs the three subgraph types with one seed and checks each.

    ``samplers`` (from :func:`make_samplers`) are reused across calls when given.
    """
    if samplers is None:
        samplers = make_samplers(graph, fanouts, replace, disjoint, edge_weight)
    base = samplers["directional"].sample(seeds, seed=seed, batch=batch)
    check_directional(base, edge_index, graph.num_nodes, seeds, fanouts, replace, disjoint, edge_weight)
    ind = samplers["induced"].sample(seeds, seed=seed, batch=batch)
    assert torch.equal(ind.node, base.node)
    assert ind.num_sampled_nodes == base.num_sampled_nodes
    if disjoint:
        assert torch.equal(ind.batch, base.batch)
    check_induced(ind, edge_index, disjoint)
    bi = samplers["bidirectional"].sample(seeds, seed=seed, batch=batch)
    check_bidirectional(bi, base, edge_index)
    return base


def assert_same_sample(a: SampledSubgraph, b: SampledSubgraph, what="") -> None:
    for f in ("node", "row", "col", "edge"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f"{what}: {f} differs"
    assert (a.batch is None) == (b.batch is None)
    if a.batch is not None:
        assert torch.equal(a.batch, b.batch), f"{what}: batch differs"
    assert a.num_sampled_nodes == b.num_sampled_nodes
    assert a.num_sampled_edges == b.num_sampled_edges


# ----------------------------------------------------------------------- fixed configs


@pytest.fixture(scope="module")
def data():
    return make_graph(num_nodes=500, num_edges=3000, seed=11, num_isolated=25)


@pytest.fixture(scope="module")
def graph(data):
    return CSRGraph.from_data(data)


CONFIGS = [
    ([5, 3], False, False),
    ([5, 3], True, False),
    ([5, 3], False, True),
    ([5, 3], True, True),
    ([-1], False, False),
    ([2, -1], False, True),
    ([0, 4], False, False),
    ([3, 0, 2], True, False),
    ([1, 1, 1, 1], False, False),
    ([40, 40], False, False),  # fanout above most degrees: all neighbors
    ([12, 6], False, False),  # hubs: both kernel paths (Floyd and selection sampling)
]


@pytest.mark.parametrize("fanouts,replace,disjoint", CONFIGS)
@pytest.mark.parametrize("weighted", [False, True])
def test_fixed_configs(data, graph, fanouts, replace, disjoint, weighted):
    case = CONFIGS.index((fanouts, replace, disjoint)) * 2 + weighted
    rng = np.random.default_rng(1000 + case)
    w = None
    if weighted:
        # A third of the edges weigh nothing; the rest have spread-out weights.
        w = torch.from_numpy(rng.choice([0.0, 0.25, 1.0, 4.0], size=data.num_edges, p=[1 / 3, 2 / 9, 2 / 9, 2 / 9]))
    # The samplers are reused across calls: a call must not depend on the previous ones.
    samplers = make_samplers(graph, fanouts, replace, disjoint, w)
    for trial in range(5):
        b = int(rng.integers(1, 40))
        seeds = torch.from_numpy(rng.choice(data.num_nodes, size=b, replace=False))
        sample_all_types(graph, data.edge_index, seeds, fanouts, replace, disjoint, w,
                         seed=int(rng.integers(0, 2**40)), batch=trial, samplers=samplers)


@pytest.mark.parametrize("kw", [dict(), dict(replace=True), dict(disjoint=True),
                                dict(subgraph_type="induced"), dict(subgraph_type="bidirectional"),
                                dict(weighted=True)], ids=str)
def test_reused_sampler_matches_fresh_sampler(data, graph, kw):
    """A sample is a function of (seeds, seed, batch) only, not of earlier calls."""
    kw = dict(kw)
    if kw.pop("weighted", False):
        kw["edge_weight"] = data.weight
    reused = NeighborSampler(graph, [4, 3], **kw)
    rng = np.random.default_rng(5)
    for b in range(12):
        seeds = torch.from_numpy(rng.choice(data.num_nodes, size=int(rng.integers(1, 60)), replace=False))
        got = reused.sample(seeds, seed=b, batch=b)
        want = NeighborSampler(graph, [4, 3], **kw).sample(seeds, seed=b, batch=b)
        assert_same_sample(got, want, f"call {b}")
    # Overlapping seed sets back to back, and the very same call twice.
    seeds = torch.arange(0, 100, 3)
    first = reused.sample(seeds, seed=1, batch=1)
    reused.sample(seeds.flip(0), seed=2, batch=2)
    assert_same_sample(reused.sample(seeds, seed=1, batch=1), first, "repeat")


def test_sampler_recovers_after_a_failed_call(data, graph):
    """A call that fails after its first hop leaves nothing behind that changes later
    samples. Hop 1 asks 2**31 - 1 picks (the largest fanout) for each of up to 40
    frontier nodes: hundreds of GB, so the allocation fails."""
    seeds = torch.argsort(graph.in_degree(), descending=True)[:10]
    s = NeighborSampler(graph, [4, 2**31 - 1], replace=True)
    with pytest.raises((ValueError, MemoryError)):
        s.sample(seeds, seed=1)
    s.num_neighbors = [4, 3]
    fresh = NeighborSampler(graph, [4, 3], replace=True)
    for b in range(6):
        x = seeds.flip(0) if b % 2 else seeds
        got = s.sample(x, seed=1, batch=b)
        assert_same_sample(got, fresh.sample(x, seed=1, batch=b), f"call {b}")
        check_directional(got, data.edge_index, data.num_nodes, x, [4, 3], True, False)


def test_fanout_beyond_int32_is_refused():
    """Four nodes with 2**62 picks each would add up to 2**64, which wraps to 0 in the
    int64 count of picks: such fanouts are refused at the boundary."""
    ei = torch.tensor([[4, 4, 4, 4], [0, 1, 2, 3]])
    with pytest.raises(ValueError, match=r"num_neighbors\[0\]"):
        NeighborSampler(CSRGraph(ei, 5), [2**62], replace=True)


def test_huge_fanout_with_replacement_fails_cleanly():
    """The largest fanout allowed, with replacement, asks for more memory than there is:
    the sampler must raise, not crash. Run in a subprocess, so that a crash fails this
    test only."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import torch
        from graphbatch import CSRGraph, NeighborSampler
        ei = torch.tensor([[4, 4, 4, 4], [0, 1, 2, 3]])
        s = NeighborSampler(CSRGraph(ei, 5), [2**31 - 1], replace=True)
        try:
            out = s.sample(torch.tensor([0, 1, 2, 3]))
        except (ValueError, OverflowError, MemoryError) as exc:
            print("raised", type(exc).__name__, exc)
        else:
            print("returned", out.edge.numel(), "edges")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"crashed with return code {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.startswith("raised"), proc.stdout


def test_sampler_shared_by_python_threads(data, graph):
    """Several Python threads sampling from one sampler get the single-threaded results."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(8)
    jobs = [(torch.from_numpy(rng.choice(data.num_nodes, size=30, replace=False)), b) for b in range(24)]
    for kw in (dict(), dict(subgraph_type="induced")):
        s = NeighborSampler(graph, [5, 3], **kw)
        want = [NeighborSampler(graph, [5, 3], **kw).sample(seeds, seed=3, batch=b) for seeds, b in jobs]
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda job: s.sample(job[0], seed=3, batch=job[1]), jobs))
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_sample(g, w, f"job {i}")


def test_hub_seeds_both_kernel_paths(data, graph):
    """High-degree seeds, with fanouts on both sides of pick_uniform's switch (k*k <= 4*d:
    Floyd's algorithm, else selection sampling), each pick checked."""
    deg = graph.in_degree()
    hubs = torch.argsort(deg, descending=True)[:8]
    assert int(deg[hubs].min()) >= 20
    for v in hubs.tolist():
        d = int(deg[v])
        floyd = int(2 * d ** 0.5)
        assert floyd * floyd <= 4 * d < (floyd + 1) ** 2
        for k in (1, floyd, floyd + 1, d // 2, d - 1, d, d + 1):
            for replace in (False, True):
                for s in range(2):
                    seeds = torch.tensor([v])
                    out = NeighborSampler(graph, [k], replace=replace).sample(seeds, seed=s, batch=k)
                    check_directional(out, data.edge_index, data.num_nodes, seeds, [k], replace, False)


def test_isolated_seed_gets_nothing(data, graph):
    deg = graph.in_degree()
    isolated = torch.nonzero(deg == 0).view(-1)[:3]
    assert isolated.numel() == 3
    for replace in (False, True):
        out = NeighborSampler(graph, [5, 5], replace=replace).sample(isolated)
        assert torch.equal(out.node, isolated)
        assert out.row.numel() == 0
        assert out.num_sampled_nodes == [3, 0, 0] and out.num_sampled_edges == [0, 0]


def test_fanout_zero_samples_nothing(data, graph):
    seeds = torch.arange(30)
    out = NeighborSampler(graph, [0, 0], replace=True).sample(seeds)
    assert torch.equal(out.node, seeds) and out.edge.numel() == 0
    assert out.num_sampled_edges == [0, 0]


def test_self_loop_and_duplicate_edges_are_distinct_picks():
    # Node 0 has a self loop and two parallel edges from 1: three distinct incoming edges.
    ei = torch.tensor([[0, 1, 1, 2], [0, 0, 0, 1]])
    g = CSRGraph(ei, 3)
    out = NeighborSampler(g, [-1]).sample(torch.tensor([0]))
    assert sorted(out.edge.tolist()) == [0, 1, 2]
    assert out.node.tolist() == [0, 1]  # node 1 added once
    check_directional(out, ei, 3, torch.tensor([0]), [-1], False, False)
    out = NeighborSampler(g, [3]).sample(torch.tensor([0]))
    assert sorted(out.edge.tolist()) == [0, 1, 2]
    # The self loop in the induced subgraph of {0, 1}: edges 0, 1, 2 (edge 3 leads to 2).
    ind = NeighborSampler(g, [3], subgraph_type="induced").sample(torch.tensor([0]))
    assert sorted(ind.edge.tolist()) == [0, 1, 2]


def test_first_appearance_order_on_a_path():
    # 3 -> 2 -> 1 -> 0, and 4 -> 0: hop 0 from seed 0 adds {1, 4} in CSC order.
    ei = torch.tensor([[3, 2, 1, 4], [2, 1, 0, 0]])
    out = NeighborSampler(CSRGraph(ei, 5), [-1, -1, -1]).sample(torch.tensor([0]))
    assert out.node.tolist() == [0, 1, 4, 2, 3]
    assert out.num_sampled_nodes == [1, 2, 1, 1]
    assert out.num_sampled_edges == [2, 1, 1]
    assert out.row.tolist() == [1, 2, 3, 4]
    assert out.col.tolist() == [0, 0, 1, 3]
    assert out.edge.tolist() == [2, 3, 1, 0]


def test_revisit_does_not_resample():
    # A 2-cycle: hop 1 reaches seed 0 again, which is not new and not expanded again.
    ei = torch.tensor([[1, 0], [0, 1]])
    out = NeighborSampler(CSRGraph(ei, 2), [-1, -1, -1]).sample(torch.tensor([0]))
    assert out.node.tolist() == [0, 1]
    assert out.num_sampled_nodes == [1, 1, 0, 0]
    assert out.num_sampled_edges == [1, 1, 0]
    assert out.row.tolist() == [1, 0] and out.col.tolist() == [0, 1]


def test_disjoint_trees_repeat_nodes():
    ei = torch.tensor([[1, 2, 0], [0, 0, 1]])
    g = CSRGraph(ei, 3)
    seeds = torch.tensor([0, 1, 0])
    out = NeighborSampler(g, [-1, -1], disjoint=True).sample(seeds)
    check_directional(out, ei, 3, seeds, [-1, -1], False, True)
    # Tree 0: 0 <- {1, 2}, then 1 <- 0 (already in the tree). Tree 1: 1 <- 0, 0 <- {1, 2}.
    trees = defaultdict(set)
    for b, v in zip(out.batch.tolist(), out.node.tolist()):
        trees[b].add(v)
    assert trees == {0: {0, 1, 2}, 1: {0, 1, 2}, 2: {0, 1, 2}}
    ind = NeighborSampler(g, [-1, -1], disjoint=True, subgraph_type="induced").sample(seeds)
    check_induced(ind, ei, True)
    assert ind.edge.numel() == 9  # all three edges in each of the three trees


def test_same_arguments_same_sample_any_thread_count(data, graph):
    seeds = torch.arange(0, 400, 7)
    configs = [dict(replace=False), dict(replace=True), dict(disjoint=True),
               dict(subgraph_type="induced"), dict(edge_weight=data.weight)]
    before = numba.get_num_threads()
    try:
        for kw in configs:
            s = NeighborSampler(graph, [6, 4], **kw)
            results = []
            for threads in (1, 2, 1):
                if threads > numba.config.NUMBA_NUM_THREADS:
                    pytest.skip("numba has fewer than 2 threads")
                numba.set_num_threads(threads)
                results.append(s.sample(seeds, seed=5, batch=3))
            for r in results[1:]:
                for f in ("node", "row", "col", "edge"):
                    assert torch.equal(getattr(r, f), getattr(results[0], f)), (kw, f)
                assert r.num_sampled_nodes == results[0].num_sampled_nodes
    finally:
        numba.set_num_threads(before)


def test_seed_and_batch_change_the_sample(data, graph):
    seeds = torch.arange(0, 400, 5)
    s = NeighborSampler(graph, [3, 3])
    a = s.sample(seeds, seed=1, batch=0)
    assert not torch.equal(s.sample(seeds, seed=2, batch=0).edge, a.edge)
    assert not torch.equal(s.sample(seeds, seed=1, batch=1).edge, a.edge)
    assert torch.equal(s.sample(seeds, seed=1, batch=0).edge, a.edge)


def test_seeds_as_list_and_int32(graph):
    s = NeighborSampler(graph, [3])
    a = s.sample(torch.tensor([4, 9, 2]), seed=3)
    b = s.sample([4, 9, 2], seed=3)
    c = s.sample(torch.tensor([4, 9, 2], dtype=torch.int32), seed=3)
    for o in (b, c):
        assert torch.equal(o.node, a.node) and torch.equal(o.edge, a.edge)


def test_larger_batch_exercises_table_growth(data, graph):
    # Many seeds and three wide hops: the node table rehashes several times.
    seeds = torch.arange(data.num_nodes)
    fanouts = [8, 8, 8]
    out = NeighborSampler(graph, fanouts).sample(seeds, seed=9)
    check_directional(out, data.edge_index, data.num_nodes, seeds, fanouts, False, False)
    out = NeighborSampler(graph, [4, 4], disjoint=True).sample(seeds[:200], seed=9)
    check_directional(out, data.edge_index, data.num_nodes, seeds[:200], [4, 4], False, True)


# --------------------------------------------------------------------------- bad input


def test_bad_arguments(graph, data):
    with pytest.raises(TypeError, match="graph"):
        NeighborSampler(data.edge_index, [2])
    with pytest.raises(ValueError, match="subgraph_type"):
        NeighborSampler(graph, [2], subgraph_type="bogus")
    with pytest.raises(ValueError, match="num_neighbors"):
        NeighborSampler(graph, [])
    with pytest.raises(ValueError, match=r"num_neighbors\[1\]"):
        NeighborSampler(graph, [2, -2])
    with pytest.raises(TypeError, match=r"num_neighbors\[0\]"):
        NeighborSampler(graph, [1.5])
    with pytest.raises(TypeError, match=r"num_neighbors\[0\]"):
        NeighborSampler(graph, [True])
    with pytest.raises(TypeError, match="num_neighbors"):
        NeighborSampler(graph, 3)
    with pytest.raises(NotImplementedError, match="num_neighbors"):
        NeighborSampler(graph, {"a": [2]})
    with pytest.raises(ValueError, match="weight"):
        NeighborSampler(graph, [2], edge_weight=torch.ones(data.num_edges + 1))
    with pytest.raises(TypeError, match="weight"):
        NeighborSampler(graph, [2], edge_weight=torch.ones(data.num_edges, dtype=torch.long))
    s = NeighborSampler(graph, [2])
    with pytest.raises(ValueError, match="seeds"):
        s.sample(torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="seeds"):
        s.sample(torch.tensor([data.num_nodes]))
    with pytest.raises(ValueError, match="seeds"):
        s.sample(torch.tensor([-1]))
    with pytest.raises(TypeError, match="seeds"):
        s.sample(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="seeds"):
        s.sample(torch.tensor([[1]]))


# ---------------------------------------------------------------------- property based


@st.composite
def small_problem(draw):
    n = draw(st.integers(1, 25))
    m = draw(st.integers(0, 70))
    # Skewed endpoints: half the edges land on the first few nodes.
    endpoint = st.one_of(st.integers(0, n - 1), st.integers(0, min(n - 1, 2)))
    src = draw(st.lists(endpoint, min_size=m, max_size=m))
    dst = draw(st.lists(endpoint, min_size=m, max_size=m))
    ei = torch.tensor([src, dst], dtype=torch.long).view(2, m)
    seeds = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=min(n, 6), unique=True))
    fanouts = draw(st.lists(st.sampled_from([-1, 0, 1, 2, 3, 5]), min_size=1, max_size=3))
    replace = draw(st.booleans())
    disjoint = draw(st.booleans())
    weights = None
    if draw(st.booleans()) and m:
        weights = torch.tensor(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0]), min_size=m, max_size=m)),
                               dtype=torch.float64)
    seed = draw(st.integers(0, 2**40))
    return n, ei, torch.tensor(seeds), fanouts, replace, disjoint, weights, seed


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problem())
def test_property_random_graphs(problem):
    n, ei, seeds, fanouts, replace, disjoint, weights, seed = problem
    graph = CSRGraph(ei, n)
    sample_all_types(graph, ei, seeds, fanouts, replace, disjoint, weights, seed=seed)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**40), st.integers(0, 1000), st.sampled_from([[2], [4, 2], [-1, 3], [1, 0, 6]]),
       st.booleans(), st.booleans())
def test_property_fixed_graph_many_seeds(data, graph, seed, batch, fanouts, replace, disjoint):
    rng = np.random.default_rng(seed % 2**32)
    seeds = torch.from_numpy(rng.choice(data.num_nodes, size=int(rng.integers(1, 30)), replace=False))
    sample_all_types(graph, data.edge_index, seeds, fanouts, replace, disjoint, seed=seed, batch=batch)
