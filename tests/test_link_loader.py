"""LinkNeighborLoader and LinkSampler: every batch checked against brute force (the
pairs, their negatives, the sampled edges), determinism across workers and threads,
PyG's argument forms and label rules, and errors at the boundary."""
from __future__ import annotations

import importlib.util
import math
import warnings

import numba
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_geometric.data import Data, HeteroData
from torch_geometric.sampler import NegativeSampling
from torch_geometric.sampler.base import NumNeighbors, SubgraphType

from conftest import make_graph
from graphbatch.graph import CSCGraph
from graphbatch.loader.link_loader import LinkNeighborLoader
from graphbatch.sampling.link import LinkSampledSubgraph, LinkSampler, check_neg_sampling
from graphbatch.sampling.neighbor import NeighborSampler
from graphbatch.sampling.subgraph import SampledSubgraph
from test_neighbor_loader import assert_same_batches, collect, differ
from test_neighbor_sampler import small_problem


@pytest.fixture(scope="module")
def data() -> Data:
    d = make_graph(num_nodes=300, num_edges=1800, seed=5, num_isolated=15)
    d.graph_label = torch.tensor(3)
    return d


# ------------------------------------------------------------------------ brute force


def true_pairs(edge_index, extra=None) -> set:
    pairs = set(map(tuple, edge_index.t().tolist()))
    if extra is not None:
        pairs |= set(map(tuple, extra.t().tolist()))
    return pairs




def check_link_out(out: LinkSampledSubgraph, ref_sampler: NeighborSampler, edge_index, src, dst,
                   neg, disjoint, seed, batch, reject, exclude, weights=(None, None), extra=None):
    """``out`` (a link sample of pairs ``src -> dst``, negatives ``neg``, a checked
    setting) against brute force: the pairs and
    negatives it reports in local ids, and its subgraph against the neighbor sampler run
    on the seed nodes the pairs make (minus the pairs' edges with ``exclude``)."""
    node = out.node
    P = src.numel()
    assert out.num_pos == P
    mode = None if neg is None else neg.mode
    amount = 0 if neg is None else neg.amount
    truth = true_pairs(edge_index, extra)
    if mode == "triplet":
        assert torch.equal(node[out.src_index], src)
        assert torch.equal(node[out.dst_pos_index], dst)
        neg_index = out.dst_neg_index.view(P, -1)
        assert neg_index.size(1) == amount
        if amount == 1:
            assert out.dst_neg_index.shape == (P,)
        neg_dst = node[neg_index]  # [P, amount]: row i, source src[i]
        neg_pairs = [(int(src[i]), int(d)) for i in range(P) for d in neg_dst[i]]
        if disjoint:  # PyG's layout: negative seed 2P + q is source q % P's
            expect = 2 * P + torch.arange(P * amount).view(amount, P).t()
            assert torch.equal(neg_index, expect)
        ends = [src, dst, neg_dst.t().reshape(-1) if disjoint else neg_dst.reshape(-1)]
        all_src = torch.cat([src, src.repeat(amount) if disjoint
                             else src.repeat_interleave(amount)])
        all_dst = torch.cat([dst, ends[2]])
    else:
        eli = out.edge_label_index
        Q = math.ceil(P * amount) if mode == "binary" else 0
        assert eli.shape == (2, P + Q) and eli.dtype == torch.int64
        glob = node[eli]
        assert torch.equal(glob[0, :P], src) and torch.equal(glob[1, :P], dst)
        neg_pairs = list(map(tuple, glob[:, P:].t().tolist()))
        all_src, all_dst = glob[0], glob[1]
        ends = [all_src, all_dst]
        if disjoint:
            assert torch.equal(eli.view(-1), torch.arange(2 * (P + Q)))
    # Negatives: of positive weight, never true edges with rejection.
    src_weight, dst_weight = weights
    for s, d in neg_pairs:
        if mode == "binary" and src_weight is not None:
            assert src_weight[s] > 0, f"source {s} of zero weight drawn"
        if dst_weight is not None:
            assert dst_weight[d] > 0, f"destination {d} of zero weight drawn"
        if reject:
            assert (s, d) not in truth, f"negative {(s, d)} is a true edge"
    # The seeds: the ends, sorted and distinct, or in order (disjoint).
    seeds = torch.cat(ends)
    if not disjoint:
        seeds = torch.unique(seeds)
    ref = ref_sampler.sample(seeds, seed, batch)
    assert torch.equal(node, ref.node)
    assert out.num_sampled_nodes == ref.num_sampled_nodes
    if disjoint:
        assert torch.equal(out.batch, ref.batch % P)
    else:
        assert out.batch is None
    ref_edges = list(zip(ref.row.tolist(), ref.col.tolist(), ref.edge.tolist()))
    if exclude:
        joined = {(int(a), int(b)) for a, b in zip(all_src, all_dst)}
        joined |= {(b, a) for a, b in joined}
        ref_edges = [(r, c, e) for r, c, e in ref_edges
                     if (int(node[r]), int(node[c])) not in joined]
        if ref.num_sampled_edges is not None:
            assert sum(out.num_sampled_edges) == len(ref_edges)
            assert len(out.num_sampled_edges) == len(ref.num_sampled_edges)
            assert all(a <= b for a, b in zip(out.num_sampled_edges, ref.num_sampled_edges))
    else:
        assert out.num_sampled_edges == ref.num_sampled_edges
    assert list(zip(out.row.tolist(), out.col.tolist(), out.edge.tolist())) == ref_edges
    if out.edge_index is not None:
        assert torch.equal(out.edge_index, torch.stack([out.row, out.col]))


def check_edges_exist(edge_index, node, row, col, edge, bidirectional=False):
    orig = edge_index[:, edge]
    mapped = torch.stack([node[row], node[col]])
    same = (orig == mapped).all(0)
    if bidirectional:
        same |= (orig.flip(0) == mapped).all(0)
    assert bool(same.all()), "a sampled edge is not the graph edge its id names"


def check_fanout(out, fanouts):
    """Each seed has at most ``fanouts[0]`` incoming first-hop edges."""
    if out.num_sampled_edges is None or fanouts[0] < 0:
        return
    first = out.num_sampled_edges[0]
    B = out.num_sampled_nodes[0]
    if first:
        assert int(torch.bincount(out.col[:first], minlength=B).max()) <= fanouts[0]


# ------------------------------------------------------------------ property based


@st.composite
def link_problem(draw):
    """The neighbor sampler's random problems (skewed graphs up to 25 nodes, fanouts,
    replace, disjoint, edge weights) with seed pairs, negatives and the link options."""
    n, ei, _, fanouts, replace, disjoint, edge_weight, seed = draw(small_problem())
    endpoint = st.one_of(st.integers(0, n - 1), st.integers(0, min(n - 1, 2)))
    P = draw(st.integers(1, 7))
    pairs = torch.tensor(draw(st.lists(st.tuples(endpoint, endpoint), min_size=P, max_size=P))).t()
    mode = draw(st.sampled_from([None, "binary", "triplet"]))
    neg = None
    if mode == "binary":
        neg = ("binary", draw(st.sampled_from([0.3, 1, 2.5])))
    elif mode == "triplet":
        neg = ("triplet", draw(st.sampled_from([1, 2, 3])))
    weights = [None, None]
    if mode is not None and draw(st.booleans()):
        for k in range(2):
            w = draw(st.lists(st.sampled_from([0.0, 1.0, 2.5]), min_size=n, max_size=n))
            if sum(w) > 0:
                weights[k] = torch.tensor(w, dtype=torch.float64)
        if weights != [None, None]:
            neg = dict(mode=mode, amount=neg[1], src_weight=weights[0], dst_weight=weights[1])
    cfg = dict(replace=replace, disjoint=disjoint, edge_weight=edge_weight,
               subgraph_type=draw(st.sampled_from(["directional", "directional", "bidirectional",
                                                   "induced"])))
    flags = dict(reject=draw(st.booleans()), exclude=draw(st.booleans()),
                 extra=draw(st.booleans()))
    return n, ei, pairs, neg, weights, fanouts, cfg, flags, seed, draw(st.integers(0, 500))


def negative_exists(n, truth, src, mode, weights):
    """Whether a valid negative exists for every source (triplet) or at all (binary)."""
    ok_s = [weights[0] is None or weights[0][v] > 0 for v in range(n)]
    ok_d = [weights[1] is None or weights[1][v] > 0 for v in range(n)]
    free = lambda s: any(ok_d[d] and (s, d) not in truth for d in range(n))  # noqa: E731
    if mode == "triplet":
        return all(free(int(s)) for s in src)
    return any(ok_s[s] and free(s) for s in range(n))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(link_problem())
def test_property_link_sampler_against_brute_force(problem):
    n, ei, pairs, neg, weights, fanouts, cfg, flags, seed, batch = problem
    graph = CSCGraph(ei, n)
    extra = pairs if flags["extra"] else None
    neg = check_neg_sampling(neg, n)
    sampler = LinkSampler(NeighborSampler(graph, fanouts, **cfg), neg,
                          flags["reject"], flags["exclude"], true_pairs=extra)
    ref = NeighborSampler(graph, fanouts, **cfg)
    mode = None if neg is None else neg.mode
    if (flags["reject"] and mode is not None
            and not negative_exists(n, true_pairs(ei, extra), pairs[0], mode, weights)):
        with pytest.raises(ValueError, match="no negative"):
            sampler.sample(pairs, seed, batch)
        return
    out = sampler.sample(pairs, seed, batch)
    assert isinstance(out, LinkSampledSubgraph)
    check_link_out(out, ref, ei, pairs[0], pairs[1], neg, cfg["disjoint"], seed, batch,
                   flags["reject"], flags["exclude"], weights, extra)
    check_edges_exist(ei, out.node, out.row, out.col, out.edge,
                      cfg["subgraph_type"] == "bidirectional")
    if cfg["subgraph_type"] == "directional":
        check_fanout(out, fanouts)
    # Equal arguments, equal samples.
    again = sampler.sample(pairs, seed, batch)
    for key in ("node", "row", "col", "edge"):
        assert torch.equal(getattr(out, key), getattr(again, key))


def test_rejection_falls_back_to_the_one_free_pair():
    """A complete graph less one pair: nearly every draw is a true edge, so most
    negatives come from the fallback scan, which must find that pair."""
    n = 30
    a, b = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = ~((a == 7) & (b == 19))
    ei = torch.stack([a[keep], b[keep]])
    graph = CSCGraph(ei, n)
    pairs = torch.tensor([[0, 1, 2], [3, 4, 5]])
    binary = LinkSampler(NeighborSampler(graph, [1]), check_neg_sampling(("binary", 20), n), True)
    out = binary.sample(pairs, seed=1)
    glob = out.node[out.edge_label_index[:, 3:]]
    assert glob.size(1) == 60 and bool((glob[0] == 7).all() and (glob[1] == 19).all())
    triplet = LinkSampler(NeighborSampler(graph, [1]), check_neg_sampling(("triplet", 4), n), True)
    with pytest.raises(ValueError, match="no negative destination exists for source node 0"):
        triplet.sample(pairs, seed=1)
    out = triplet.sample(torch.tensor([[7], [3]]), seed=1)
    assert bool((out.node[out.dst_neg_index] == 19).all())


def test_rejection_draws_again_uniformly():
    """With rejection, a negative that is a true edge is drawn again: the free
    destinations come equally often. Source 0 links to nodes 1..20 of 40; taking the
    next free node instead (a scan) would give node 21 half of the draws."""
    n = 40
    ei = torch.stack([torch.zeros(20, dtype=torch.long), torch.arange(1, 21)])
    sampler = LinkSampler(NeighborSampler(CSCGraph(ei, n), [0]),
                          check_neg_sampling(("triplet", 100), n), reject_true_edges=True)
    counts = torch.zeros(n, dtype=torch.long)
    for batch in range(20):
        out = sampler.sample(torch.tensor([[0], [5]]), seed=3, batch=batch)
        counts += torch.bincount(out.node[out.dst_neg_index].view(-1), minlength=n)
    assert int(counts[1:21].sum()) == 0, "a true edge drawn as a negative"
    free = torch.cat([counts[:1], counts[21:]])
    assert int(free.sum()) == 2000 and int(free.min()) >= 50 and int(free.max()) <= 150, free


def test_negative_weights_zero_never_drawn(data):
    n = data.num_nodes
    w = torch.zeros(n, dtype=torch.float64)
    w[:10] = 1.0
    w[5] = 50.0
    neg = NegativeSampling("binary", 3, src_weight=w, dst_weight=w.flip(0))
    torch.manual_seed(0)
    loader = LinkNeighborLoader(data, [2], neg_sampling=neg, batch_size=100)
    counts = torch.zeros(n)
    for b in loader:
        glob = b.n_id[b.edge_label_index[:, b.input_id.numel():]]
        assert bool((glob[0] < 10).all()) and bool((glob[1] >= n - 10).all())
        counts += torch.bincount(glob[0], minlength=n)
    assert counts[5] > counts[:10].sum() - counts[5]  # node 5 weighs 50 of 59


# ---------------------------------------------------------------------- loader batches


CONFIGS = [
    dict(num_neighbors=[4, 2]),
    dict(num_neighbors=[4, 2], neg_sampling="binary"),
    dict(num_neighbors=[4, 2], neg_sampling=dict(mode="binary", amount=1.5), replace=True),
    dict(num_neighbors=[3, 2], neg_sampling=("triplet", 3)),
    dict(num_neighbors=[3, 2], neg_sampling="triplet", disjoint=True),
    dict(num_neighbors=[3, 2], neg_sampling=("triplet", 2), disjoint=True),
    dict(num_neighbors=[4, 2], neg_sampling="binary", disjoint=True),
    dict(num_neighbors=[4, 2], neg_sampling="binary", reject_true_edges=True),
    dict(num_neighbors=[4, 2], neg_sampling=("triplet", 2), reject_true_edges=True,
         exclude_seed_edges=True),
    dict(num_neighbors=[-1], neg_sampling="binary", exclude_seed_edges=True),
    dict(num_neighbors=[4, 2], neg_sampling="binary", exclude_seed_edges=True, disjoint=True),
    dict(num_neighbors=[3, 2], neg_sampling="binary", subgraph_type="bidirectional"),
    dict(num_neighbors=[3, 2], neg_sampling="binary", subgraph_type="induced",
         exclude_seed_edges=True),
    dict(num_neighbors=[3, 3], neg_sampling="binary", weight_attr="weight"),
]
SAMPLER_KEYS = ("replace", "subgraph_type", "disjoint")


def ident(cfg):
    return ",".join(f"{k}={v}" for k, v in cfg.items())


def reference_of(data, cfg):
    graph = CSCGraph.from_data(data)
    weight = data[cfg["weight_attr"]] if "weight_attr" in cfg else None
    return NeighborSampler(graph, cfg["num_neighbors"], edge_weight=weight,
                           **{k: cfg[k] for k in SAMPLER_KEYS if k in cfg})


@pytest.mark.parametrize("cfg", CONFIGS, ids=ident)
def test_batches_against_brute_force(data, cfg):
    """Every batch of an epoch: attributes, the pairs at input_id, negatives, labels, the
    subgraph against the neighbor sampler run on the pairs' ends."""
    pairs = torch.randint(0, data.num_nodes, (2, 150), generator=torch.Generator().manual_seed(1))
    pairs[:, :100] = data.edge_index[:, 50:150]
    torch.manual_seed(4)
    loader = LinkNeighborLoader(data, edge_label_index=pairs, batch_size=32, shuffle=True,
                                **cfg)
    ref = reference_of(data, cfg)
    neg = check_neg_sampling(cfg.get("neg_sampling"), data.num_nodes)
    mode = None if neg is None else neg.mode
    seen = []
    for b, plan in zip(collect(loader), loader.batches):
        assert torch.equal(b.input_id, plan.positions)
        seen.append(b.input_id)
        n_id, e_id = b.n_id, b.e_id
        assert torch.equal(b.x, data.x[n_id]) and torch.equal(b.edge_attr, data.edge_attr[e_id])
        assert torch.equal(b.graph_label, data.graph_label)
        out = LinkSampledSubgraph(node=n_id, row=b.edge_index[0], col=b.edge_index[1], edge=e_id,
                                  batch=b.batch if "batch" in b else None,
                                  num_sampled_nodes=b.num_sampled_nodes,
                                  num_sampled_edges=getattr(b, "num_sampled_edges", None),
                                  num_pos=b.input_id.numel(),
                                  edge_label_index=getattr(b, "edge_label_index", None),
                                  src_index=getattr(b, "src_index", None),
                                  dst_pos_index=getattr(b, "dst_pos_index", None),
                                  dst_neg_index=getattr(b, "dst_neg_index", None))
        src, dst = pairs[:, b.input_id]
        check_link_out(out, ref, data.edge_index, src, dst, neg, cfg.get("disjoint", False),
                       plan.epoch_seed, plan.index, cfg.get("reject_true_edges", False),
                       cfg.get("exclude_seed_edges", False), extra=pairs if neg else None)
        check_edges_exist(data.edge_index, n_id, b.edge_index[0], b.edge_index[1], e_id,
                          cfg.get("subgraph_type") == "bidirectional")
        if cfg.get("subgraph_type", "directional") == "directional":
            check_fanout(out, cfg["num_neighbors"])
        P = b.input_id.numel()
        if mode == "triplet":
            assert "edge_label_index" not in b and "edge_label" not in b
        elif mode == "binary":
            Q = b.edge_label_index.size(1) - P
            assert b.edge_label.dtype == torch.float32
            assert torch.equal(b.edge_label, torch.cat([torch.ones(P), torch.zeros(Q)]))
        else:
            assert "edge_label" not in b
    assert torch.equal(torch.cat(seen).sort().values, torch.arange(150))


def test_default_pairs_are_the_edges_and_labels_pass_through(data):
    """edge_label_index defaults to data.edge_index; without negatives the labels are
    the pairs' own, unchanged (0 stays 0)."""
    label = torch.arange(data.num_edges) % 3
    torch.manual_seed(0)
    batches = collect(LinkNeighborLoader(data, [2], edge_label=label, batch_size=500))
    ids = torch.cat([b.input_id for b in batches])
    assert torch.equal(ids, torch.arange(data.num_edges))
    for b in batches:
        assert torch.equal(b.n_id[b.edge_label_index], data.edge_index[:, b.input_id])
        assert torch.equal(b.edge_label, label[b.input_id])


def test_binary_labels_shifted_as_pyg(data):
    """Binary negatives: labels holding a 0 move up by one (0 then means negative),
    others stay; negatives get 0 of the labels' dtype; trailing dimensions are kept."""
    pairs = data.edge_index[:, :64]
    for label, want in [(torch.tensor([0, 1, 2, 1] * 16), torch.tensor([1, 2, 3, 2] * 16)),
                        (torch.tensor([2, 1] * 32), torch.tensor([2, 1] * 32)),
                        (torch.ones(64, 2), torch.ones(64, 2))]:
        torch.manual_seed(0)
        (b,) = collect(LinkNeighborLoader(data, [1], pairs, edge_label=label, batch_size=64,
                                          neg_sampling=("binary", 0.5)))
        assert b.edge_label.dtype == label.dtype
        assert torch.equal(b.edge_label, torch.cat([want, want.new_zeros((32, *want.shape[1:]))]))


def test_data_link_attributes_replaced(data):
    """A RandomLinkSplit-style data carries its own edge_label(_index): batches hold
    their own instead (not the data's, not sliced)."""
    d = data.clone()
    d.edge_label_index = data.edge_index[:, :40]
    d.edge_label = torch.ones(40)
    d.edge_label_time = torch.zeros(40)
    torch.manual_seed(0)
    for neg in (None, "binary", "triplet"):
        (b,) = collect(LinkNeighborLoader(d, [2], d.edge_label_index, batch_size=40,
                                          neg_sampling=neg))
        assert "edge_label_time" not in b
        if neg == "triplet":
            assert "edge_label_index" not in b
            assert b.dst_neg_index.shape == (40,)
        else:
            assert torch.equal(b.n_id[b.edge_label_index[:, :40]], d.edge_label_index)
        if neg is None:
            assert "edge_label" not in b


def test_input_id_argument(data):
    pairs = data.edge_index[:, :50]
    ids = torch.arange(1000, 1050)
    torch.manual_seed(0)
    batches = collect(LinkNeighborLoader(data, [2], pairs, batch_size=16, shuffle=True,
                                         input_id=ids))
    for b in batches:
        assert torch.equal(b.n_id[b.edge_label_index], pairs[:, b.input_id - 1000])
    with pytest.raises(ValueError, match="input_id"):
        LinkNeighborLoader(data, [2], pairs, input_id=ids[:3])


@pytest.mark.parametrize("form", ["NegativeSampling", "str", "dict", "tuple", "ratio"])
def test_neg_sampling_forms(data, form):
    """Every form PyG takes for negative sampling gives the same batches."""
    alt = {"NegativeSampling": dict(neg_sampling=NegativeSampling("binary", 1)),
           "str": dict(neg_sampling="binary"),
           "dict": dict(neg_sampling=dict(mode="binary")),
           "tuple": dict(neg_sampling=("binary", 1.0)),
           "ratio": dict(neg_sampling="triplet", neg_sampling_ratio=1)}[form]
    runs = []
    for kw in (alt, dict(neg_sampling=NegativeSampling("binary"))):
        torch.manual_seed(2)
        runs.append(collect(LinkNeighborLoader(data, [3], batch_size=300, shuffle=True, **kw)))
    assert_same_batches(runs[0], runs[1], form)
    torch.manual_seed(2)
    zero = collect(LinkNeighborLoader(data, [3], batch_size=300, neg_sampling_ratio=0.0))
    assert "edge_label" not in zero[0]
    # The loader's neg_sampling is PyG's object, as on PyG's loader.
    ratio = LinkNeighborLoader(data, [3], neg_sampling="triplet", neg_sampling_ratio=2.5)
    assert ratio.neg_sampling.is_binary() and ratio.neg_sampling.amount == 2.5


def test_pyg_sampler_argument_forms(data):
    """NumNeighbors, SubgraphType and the deprecated directed=False mean what the plain
    forms mean, as in NeighborLoader."""
    plain = dict(num_neighbors=[3, 2], subgraph_type="induced")
    forms = [dict(num_neighbors=NumNeighbors([3, 2]), subgraph_type=SubgraphType("induced")),
             dict(num_neighbors=(3, 2), directed=False)]
    runs = []
    for kw in [plain, *forms]:
        torch.manual_seed(5)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            runs.append(collect(LinkNeighborLoader(data, batch_size=400, shuffle=True,
                                                   neg_sampling="binary", **kw)))
        assert any(w.category is DeprecationWarning for w in caught) == ("directed" in kw)
    for run in runs[1:]:
        assert_same_batches(runs[0], run)


def test_transform_sampler_output_must_keep_pairs(data):
    seen = []
    loader = LinkNeighborLoader(data, [2], batch_size=500,
                                transform_sampler_output=lambda out: seen.append(out) or out)
    assert len(collect(loader)) == len(seen) == len(loader)
    plain = lambda out: SampledSubgraph(out.node, out.row, out.col, out.edge)  # noqa: E731
    loader = LinkNeighborLoader(data, [2], batch_size=500, prefetch=0,
                                transform_sampler_output=plain)
    with pytest.raises(TypeError, match="LinkSampledSubgraph"):
        next(iter(loader))


PYG_BACKEND = next((m for m in ("pyg_lib", "torch_sparse")
                    if importlib.util.find_spec(m) is not None), None)


@pytest.mark.skipif(PYG_BACKEND is None, reason="PyG's sampler needs pyg-lib or torch-sparse")
@pytest.mark.parametrize("disjoint", [False, True])
@pytest.mark.parametrize("neg", [None, "binary", ("triplet", 2)], ids=str)
def test_fields_match_pyg(data, neg, disjoint):
    """PyG's loader on the same arguments: the same fields of the same dtypes and
    shapes, the same pairs at the same input_id, the same labels; with every neighbor
    and no negatives, the same nodes and edges."""
    from torch_geometric.loader import LinkNeighborLoader as PyGLinkNeighborLoader

    if disjoint and PYG_BACKEND != "pyg_lib":
        pytest.skip("PyG's disjoint sampling needs pyg-lib")
    P = 40
    kw = dict(num_neighbors=[-1], edge_label_index=data.edge_index[:, 100:100 + P],
              batch_size=P, neg_sampling=neg, disjoint=disjoint)
    if neg != ("triplet", 2):
        kw["edge_label"] = torch.arange(P) % 3
    torch.manual_seed(0)
    (ours,) = collect(LinkNeighborLoader(data, **kw))
    (theirs,) = list(PyGLinkNeighborLoader(data, **kw))
    counts = {"num_sampled_nodes", "num_sampled_edges"}  # torch-sparse's PyG omits them
    assert set(ours.keys()) - counts == set(theirs.keys()) - counts
    sized_by_sample = {"x", "y", "edge_attr", "weight", "n_id", "e_id", "edge_index", "batch",
                       "num_nodes"}
    for key in set(theirs.keys()):
        a, b = ours[key], theirs[key]
        if isinstance(a, torch.Tensor):
            assert a.dtype == b.dtype, key
            assert key in sized_by_sample or a.shape == b.shape, key
        elif key not in sized_by_sample | counts:
            assert a == b, key
    assert torch.equal(ours.input_id, theirs.input_id)
    if neg == ("triplet", 2):
        for key in ("src_index", "dst_pos_index"):
            assert torch.equal(ours.n_id[ours[key]], theirs.n_id[theirs[key]])
        return
    glob = [b.n_id[b.edge_label_index] for b in (ours, theirs)]
    assert torch.equal(glob[0][:, :P], glob[1][:, :P])
    assert torch.equal(ours.edge_label, theirs.edge_label)
    if neg is None and not disjoint:
        seeds = torch.unique(kw["edge_label_index"])
        assert torch.equal(ours.n_id[:seeds.numel()], seeds)
        assert torch.equal(theirs.n_id[:seeds.numel()], seeds)
        assert set(ours.n_id.tolist()) == set(theirs.n_id.tolist())
        assert sorted(ours.e_id.tolist()) == sorted(theirs.e_id.tolist())


# --------------------------------------------------------------------- determinism


DET_CONFIGS = [
    dict(num_neighbors=[4, 2], neg_sampling="binary", shuffle=True),
    dict(num_neighbors=[3, 2], neg_sampling=("triplet", 2), reject_true_edges=True,
         exclude_seed_edges=True, filter_per_worker=True),
    dict(num_neighbors=[3, 2], neg_sampling=("binary", 2), disjoint=True,
         reject_true_edges=True, shuffle=True),
]


@pytest.mark.parametrize("cfg", DET_CONFIGS, ids=ident)
def test_same_seed_same_batches_any_num_workers(data, cfg):
    runs = {}
    for nw in (0, 2, 0):
        torch.manual_seed(42)
        loader = LinkNeighborLoader(data, batch_size=256, num_workers=nw,
                                    persistent_workers=False, **cfg)
        runs.setdefault(nw, []).append([collect(loader), collect(loader)])  # two epochs
    for epoch in range(2):
        assert_same_batches(runs[0][0][epoch], runs[0][1][epoch], f"workers=0 twice, {epoch}")
        assert_same_batches(runs[0][0][epoch], runs[2][0][epoch], f"workers 0 vs 2, {epoch}")
    assert differ(runs[0][0][0], runs[0][0][1]), "epochs should differ"


def epoch(data, cfg, seed=42, threads=None):
    """An epoch from ``seed``, with the kernels on ``threads`` threads (reset after)."""
    before = numba.get_num_threads()
    numba.set_num_threads(threads or before)
    try:
        torch.manual_seed(seed)
        return collect(LinkNeighborLoader(data, batch_size=256, **cfg))
    finally:
        numba.set_num_threads(before)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has fewer than 2 threads")
@pytest.mark.parametrize("cfg", DET_CONFIGS, ids=ident)
def test_same_seed_same_batches_any_numba_thread_count(data, cfg):
    one, two = (epoch(data, cfg, threads=t) for t in (1, 2))
    assert_same_batches(one, two, f"threads 1 vs 2, {cfg}")


@pytest.mark.parametrize("cfg", DET_CONFIGS, ids=ident)
def test_different_seed_different_batches(data, cfg):
    assert differ(epoch(data, cfg, seed=1), epoch(data, cfg, seed=2))


# ------------------------------------------------------------------------ bad input


def test_bad_edge_label_index(data):
    n = data.num_nodes
    cases = [
        (ValueError, r"edge_label_index must have shape \[2, L\], got \(3, 4\)",
         torch.zeros(3, 4, dtype=torch.long)),
        (ValueError, r"edge_label_index must have shape \[2, L\], got \(8,\)",
         torch.zeros(8, dtype=torch.long)),
        (ValueError, "edge_label_index holds no pair", torch.zeros(2, 0, dtype=torch.long)),
        (TypeError, "edge_label_index must have dtype", torch.zeros(2, 4)),
        (TypeError, "edge_label_index must have dtype", torch.zeros(2, 4, dtype=torch.bool)),
        (ValueError, f"edge_label_index holds node id {n}, out of range",
         torch.tensor([[0, n], [1, 2]])),
        (ValueError, r"edge_label_index holds a negative node id \(-1\)",
         torch.tensor([[0, 1], [-1, 2]])),
        (NotImplementedError, "edge type", (("a", "to", "a"), torch.zeros(2, 3, dtype=torch.long))),
    ]
    for exc, match, value in cases:
        with pytest.raises(exc, match=match):
            LinkNeighborLoader(data, [2], edge_label_index=value)
    # Lists and int32 are fine.
    b = next(iter(LinkNeighborLoader(data, [2], [[0, 1], [2, 3]], batch_size=2)))
    assert torch.equal(b.n_id[b.edge_label_index], torch.tensor([[0, 1], [2, 3]]))
    LinkNeighborLoader(data, [2], torch.tensor([[0, 1], [2, 3]], dtype=torch.int32))


def test_bad_edge_label(data):
    pairs = data.edge_index[:, :10]
    with pytest.raises(ValueError, match=r"edge_label must hold one label per pair .*\(10\), got shape \(9,\)"):
        LinkNeighborLoader(data, [2], pairs, edge_label=torch.ones(9))
    with pytest.raises(ValueError, match="edge_label must hold one label"):
        LinkNeighborLoader(data, [2], pairs, edge_label=torch.tensor(1.0))
    with pytest.raises(TypeError, match="edge_label must be a tensor, got list"):
        LinkNeighborLoader(data, [2], pairs, edge_label=[1] * 10)
    with pytest.raises(ValueError, match="edge_label must be None for 'triplet'"):
        LinkNeighborLoader(data, [2], pairs, edge_label=torch.ones(10), neg_sampling="triplet")


def test_bad_neg_sampling(data):
    n = data.num_nodes
    cases = [
        (ValueError, "neg_sampling mode must be one of .*'unary'", "unary"),
        (ValueError, "neg_sampling amount must be positive, got 0", ("binary", 0)),
        (ValueError, "neg_sampling amount must be positive, got -1", dict(mode="binary", amount=-1)),
        (ValueError, "neg_sampling amount must be an integer for 'triplet', got 1.5",
         ("triplet", 1.5)),
        (TypeError, "neg_sampling amount must be a finite number", ("binary", "2")),
        (TypeError, "neg_sampling amount must be a finite number", ("binary", float("inf"))),
        (TypeError, "neg_sampling must be None, a NegativeSampling", 3),
        (TypeError, "neg_sampling as a dict takes 'mode'", dict(amount=2)),
        (TypeError, "neg_sampling as a dict takes", dict(mode="binary", ratio=2)),
        (ValueError, "neg_sampling as a tuple", ()),
        (ValueError, r"neg_sampling src_weight must have shape \[300\]",
         dict(mode="binary", src_weight=torch.ones(5))),
        (TypeError, "neg_sampling dst_weight must be a floating point tensor",
         dict(mode="binary", dst_weight=torch.ones(n, dtype=torch.long))),
        (ValueError, "neg_sampling dst_weight must be finite, >= 0 and not all 0",
         dict(mode="triplet", dst_weight=torch.zeros(n))),
        (ValueError, "neg_sampling src_weight must be finite",
         dict(mode="binary", src_weight=torch.full((n,), -1.0))),
    ]
    for exc, match, value in cases:
        with pytest.raises(exc, match=match):
            LinkNeighborLoader(data, [2], neg_sampling=value)
    with pytest.raises(ValueError, match="neg_sampling_ratio amount must be positive, got -0.5"):
        LinkNeighborLoader(data, [2], neg_sampling_ratio=-0.5)


def test_temporal_and_heterogeneous_refused(data):
    with pytest.raises(NotImplementedError, match="edge_label_time"):
        LinkNeighborLoader(data, [2], data.edge_index[:, :5], edge_label_time=torch.zeros(5))
    with pytest.raises(NotImplementedError, match="time_attr"):
        LinkNeighborLoader(data, [2], time_attr="t")
    h = HeteroData()
    h["a"].x = torch.randn(4, 2)
    h["a", "to", "a"].edge_index = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(NotImplementedError, match="LinkNeighborLoader"):
        LinkNeighborLoader(h, [2], edge_label_index=(("a", "to", "a"), None))


def test_bad_sampler_arguments(data):
    with pytest.raises(ValueError, match="num_neighbors"):
        LinkNeighborLoader(data, [-3])
    with pytest.raises(ValueError, match="subgraph_type"):
        LinkNeighborLoader(data, [2], subgraph_type="bogus")
    with pytest.raises(ValueError, match="weight_attr='missing'"):
        LinkNeighborLoader(data, [2], weight_attr="missing")
    with pytest.raises(ValueError, match="batch_size"):
        LinkNeighborLoader(data, [2], batch_size=0)
    with pytest.raises(TypeError, match="neighbor_sampler must be a graphbatch NeighborSampler"):
        LinkSampler(object())
    sampler = LinkSampler(NeighborSampler(CSCGraph.from_data(data), [2]))
    with pytest.raises(ValueError, match=r"pairs must be a \[2, P\] tensor"):
        sampler.sample(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="pairs holds node id 300"):
        sampler.sample(torch.tensor([[0], [300]]))


# ------------------------------------------------------------------------ benchmark


def test_link_bench_rows_json_and_csv(tmp_path, capsys, monkeypatch):
    """``graphbatch bench link`` on a tiny graph: the documented row keys, numbers as
    numbers in the JSON, the CSV rows, and a PyG row only where PyG's backend imports."""
    import argparse
    import csv

    from graphbatch.cli import link_bench, results
    from graphbatch.cli._args import run_check

    parser = argparse.ArgumentParser()
    link_bench.add_arguments(parser)
    argv = ["--num-nodes", "3000", "--num-pairs", "15000", "--num-features", "4",
            "--fanouts", "5", "5", "--batch-size", "64", "--num-seed-edges", "1000",
            "--batches", "3", "--warmup", "1", "--out", str(tmp_path / "r.json"),
            "--csv", str(tmp_path / "r.csv")]
    keys = ["loader", "ms_per_batch", "sample_ms_per_batch", "gather_ms_per_batch",
            "seed_edges_per_s", "edges_per_s", "nodes_per_s", "cores_busy",
            "seed_edges_vs_pyg", "edges_vs_pyg"]
    for mode in ("binary", "triplet"):
        monkeypatch.setattr(link_bench, "pyg_backend", lambda: None)
        args = parser.parse_args(argv + ["--neg-sampling", mode])
        run_check(args)
        rows = link_bench.run(args)
        assert "PyG comparison skipped" in capsys.readouterr().out
        assert [r["loader"] for r in rows] == ["graphbatch (stages)", "graphbatch"]
        doc = results.read(tmp_path / "r.json")
        assert doc["command"] == "bench link" and doc["rows"] == rows
        for row in rows:
            assert list(row) == keys
            assert row["seed_edges_per_s"] == pytest.approx(3 * 64 / (row["ms_per_batch"] * 3e-3))
            assert row["edges_per_s"] > 0 and row["seed_edges_vs_pyg"] is None
        with open(tmp_path / "r.csv") as f:
            assert [r["loader"] for r in csv.DictReader(f)] == ["graphbatch (stages)", "graphbatch"]
    with pytest.raises(SystemExit):
        args = parser.parse_args(argv + ["--num-seed-edges", "100"])
        run_check(args)
