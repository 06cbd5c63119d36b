"""NeighborLoader: batch fields against the graph, epochs, determinism, bad input."""
from __future__ import annotations

import numba
import pytest
import torch
from torch_geometric.data import Data, HeteroData
from torch_geometric.sampler.base import NumNeighbors, SubgraphType

from conftest import in_degree, induced_reference, make_graph
from graphbatch import CSRGraph, NeighborLoader


@pytest.fixture(scope="module")
def data() -> Data:
    d = make_graph(num_nodes=400, num_edges=2500, seed=3, num_isolated=20)
    d.graph_label = torch.tensor(7)  # a graph-level attribute, passed through
    return d


def check_batch(batch, data, input_nodes, num_neighbors, subgraph_type="directional",
                disjoint=False, weight=None):
    """Every field of a batch, against ``data`` and the seeds it was given."""
    n_id, e_id, ei = batch.n_id, batch.e_id, batch.edge_index
    assert n_id.dtype == e_id.dtype == ei.dtype == batch.input_id.dtype == torch.int64
    assert ei.dim() == 2 and ei.size(0) == 2 and ei.size(1) == e_id.numel()
    assert batch.num_nodes == n_id.numel()
    # Attributes sliced by n_id / e_id.
    assert torch.equal(batch.x, data.x[n_id])
    assert torch.equal(batch.y, data.y[n_id])
    assert torch.equal(batch.edge_attr, data.edge_attr[e_id])
    assert torch.equal(batch.weight, data.weight[e_id])
    assert torch.equal(batch.graph_label, data.graph_label)
    # Seeds first, the input nodes at positions input_id.
    bs = batch.batch_size
    assert bs == batch.input_id.numel() and bs >= 1
    assert torch.equal(n_id[:bs], input_nodes[batch.input_id])
    # Local edges map to the original edges.
    if ei.numel():
        assert ei.min() >= 0 and ei.max() < n_id.numel()
    orig = data.edge_index[:, e_id]
    mapped = n_id[ei]
    if subgraph_type == "bidirectional":
        assert (torch.equal(orig, mapped) or
                bool(((orig == mapped).all(0) | (orig.flip(0) == mapped).all(0)).all()))
        pairs = set(map(tuple, ei.t().tolist()))
        assert all((c, r) in pairs for r, c in pairs), "an edge without its reverse"
    else:
        assert torch.equal(orig, mapped)
    if weight is not None:
        assert bool((weight[e_id] > 0).all()), "zero-weight edge sampled"
    # Per-hop counts.
    hops = len(num_neighbors)
    assert len(batch.num_sampled_nodes) == hops + 1
    assert batch.num_sampled_nodes[0] == bs
    assert sum(batch.num_sampled_nodes) == n_id.numel()
    if subgraph_type == "directional":
        assert len(batch.num_sampled_edges) == hops
        assert sum(batch.num_sampled_edges) == e_id.numel()
    else:
        # None in the sampler output; a PyG Data drops attributes set to None.
        assert getattr(batch, "num_sampled_edges", None) is None
    if subgraph_type == "induced":
        got = sorted(zip(ei[0].tolist(), ei[1].tolist(), e_id.tolist()))
        assert got == induced_reference(data.edge_index, n_id, batch.batch if disjoint else None)
    # Disjoint: one tree per seed.
    if disjoint:
        assert batch.batch.dtype == torch.int64 and batch.batch.numel() == n_id.numel()
        assert torch.equal(batch.batch[:bs], torch.arange(bs))
        assert torch.equal(batch.batch[ei[0]], batch.batch[ei[1]])
        assert len(set(zip(batch.batch.tolist(), n_id.tolist()))) == n_id.numel()
    else:
        assert "batch" not in batch
        assert len(set(n_id.tolist())) == n_id.numel()
    # First hop: at most fanout picks per seed, distinct edges without replacement.
    if subgraph_type == "directional" and num_neighbors[0] >= 0:
        first = batch.num_sampled_edges[0]
        counts = torch.bincount(ei[1, :first], minlength=bs)
        assert int(counts.max()) <= num_neighbors[0]


def collect(loader):
    return [b for b in loader]


def assert_same_batches(a, b, what=""):
    assert len(a) == len(b) > 0, f"{what}: {len(a)} vs {len(b)} batches"
    first = ["input_id", "n_id", "e_id", "edge_index"]
    for i, (x, y) in enumerate(zip(a, b)):
        assert set(x.keys()) == set(y.keys()), f"{what}: batch {i} keys"
        for key in first + sorted(set(x.keys()) - set(first)):
            u, v = x[key], y[key]
            if isinstance(u, torch.Tensor):
                same = isinstance(v, torch.Tensor) and u.dtype == v.dtype and torch.equal(u, v)
            else:
                same = u == v
            assert same, f"{what}: batch {i}, {key} differs:\n{u}\nvs\n{v}"


def differ(a, b) -> bool:
    try:
        assert_same_batches(a, b)
    except AssertionError:
        return True
    return False


# ---------------------------------------------------------------------------- batch fields


CONFIGS = [
    dict(num_neighbors=[5, 3]),
    dict(num_neighbors=[5, 3], replace=True),
    dict(num_neighbors=[4, 2], disjoint=True),
    dict(num_neighbors=[4, 2], subgraph_type="induced"),
    dict(num_neighbors=[4, 2], subgraph_type="induced", disjoint=True),
    dict(num_neighbors=[4, 2], subgraph_type="bidirectional"),
    dict(num_neighbors=[-1]),
    dict(num_neighbors=[0]),
    dict(num_neighbors=[3, 3], weight_attr="weight"),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_batch_fields(data, cfg):
    torch.manual_seed(0)
    loader = NeighborLoader(data, batch_size=64, shuffle=True, **cfg)
    input_nodes = torch.arange(data.num_nodes)
    seen = []
    for batch in loader:
        check_batch(batch, data, input_nodes, cfg["num_neighbors"], cfg.get("subgraph_type", "directional"),
                    cfg.get("disjoint", False))
        seen.append(batch.input_id)
    assert torch.equal(torch.cat(seen).sort().values, input_nodes)


def test_batch_fields_fanout_zero_is_seeds_only(data):
    loader = NeighborLoader(data, [0, 0], batch_size=50)
    for batch in loader:
        assert batch.num_nodes == batch.batch_size and batch.edge_index.numel() == 0
        assert batch.edge_attr.shape == (0, data.edge_attr.size(1))


def test_input_nodes_index_tensor(data):
    input_nodes = torch.tensor([5, 399, 0, 17, 17 * 3, 250, 8, 100, 101, 102, 7])
    torch.manual_seed(1)
    loader = NeighborLoader(data, [3, 2], input_nodes=input_nodes, batch_size=4)
    assert len(loader) == 3
    batches = collect(loader)
    assert [b.batch_size for b in batches] == [4, 4, 3]
    for b in batches:
        check_batch(b, data, input_nodes, [3, 2])
    # Not shuffled: input order, positions 0..10.
    assert torch.equal(torch.cat([b.input_id for b in batches]), torch.arange(11))
    assert torch.equal(torch.cat([b.n_id[:b.batch_size] for b in batches]), input_nodes)
    # int32, a list and a numpy array name the same seeds.
    for alt in (input_nodes.int(), input_nodes.tolist(), input_nodes.numpy()):
        torch.manual_seed(1)
        assert_same_batches(collect(NeighborLoader(data, [3, 2], input_nodes=alt, batch_size=4)), batches,
                            type(alt).__name__)


def test_input_nodes_mask(data):
    mask = torch.zeros(data.num_nodes, dtype=torch.bool)
    mask[torch.arange(3, data.num_nodes, 9)] = True
    idx = mask.nonzero().view(-1)
    torch.manual_seed(2)
    a = collect(NeighborLoader(data, [4, 4], input_nodes=mask, batch_size=10, shuffle=True))
    torch.manual_seed(2)
    b = collect(NeighborLoader(data, [4, 4], input_nodes=idx, batch_size=10, shuffle=True))
    for batch in a:
        check_batch(batch, data, torch.arange(data.num_nodes), [4, 4])
        assert mask[batch.n_id[:batch.batch_size]].all()
    # As in PyG, the input_id of a mask's seeds are their node ids, of an index's seeds
    # their positions in it; the batches are otherwise the same.
    assert torch.equal(torch.cat([x.input_id for x in a]).sort().values, idx)
    for other in b:
        other.input_id = idx[other.input_id]
    assert_same_batches(a, b, "mask vs index")


def test_input_id_argument(data):
    """PyG's input_id (passed on to its NodeLoader): the ids batches report for the seeds."""
    idx = torch.tensor([7, 3, 250, 9, 100])
    ids = torch.tensor([70, 30, 2500, 90, 1000])
    torch.manual_seed(3)
    a = collect(NeighborLoader(data, [2], input_nodes=idx, input_id=ids, batch_size=2, shuffle=True))
    torch.manual_seed(3)
    b = collect(NeighborLoader(data, [2], input_nodes=idx, batch_size=2, shuffle=True))
    assert len(a) == len(b) == 3
    for x, y in zip(a, b):
        assert torch.equal(x.input_id, ids[y.input_id])
        assert torch.equal(x.n_id, y.n_id)
    mask = torch.zeros(data.num_nodes, dtype=torch.bool)
    mask[idx] = True
    batch = next(iter(NeighborLoader(data, [2], input_nodes=mask, input_id=ids, batch_size=5)))
    assert torch.equal(batch.input_id, ids)
    with pytest.raises(ValueError, match="input_id"):
        NeighborLoader(data, [2], input_nodes=idx, input_id=ids[:4])
    with pytest.raises(TypeError, match="input_id"):
        NeighborLoader(data, [2], input_nodes=idx, input_id=ids.float())


@pytest.mark.parametrize("n,bs,drop_last", [(45, 10, False), (45, 10, True), (40, 10, True), (40, 10, False),
                                            (7, 10, False), (7, 10, True), (45, 1, False)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_epoch_cover_len_and_drop_last(data, n, bs, drop_last, shuffle):
    input_nodes = torch.arange(n) * 3
    torch.manual_seed(n + bs)
    loader = NeighborLoader(data, [2], input_nodes=input_nodes, batch_size=bs, shuffle=shuffle,
                            drop_last=drop_last)
    want_len = n // bs if drop_last else -(-n // bs)
    assert len(loader) == want_len
    for epoch in range(2):
        batches = collect(loader)
        assert len(batches) == want_len
        assert all(b.batch_size == bs for b in batches[:-1])
        if drop_last:
            assert all(b.batch_size == bs for b in batches)
        ids = torch.cat([b.input_id for b in batches]) if batches else torch.empty(0, dtype=torch.long)
        # Every input node at most once per epoch; all of them unless the last batch is dropped.
        assert ids.unique().numel() == ids.numel()
        assert ids.numel() == (n // bs * bs if drop_last else n)
        if not shuffle:
            assert torch.equal(ids, torch.arange(ids.numel()))
        for b in batches:
            assert torch.equal(b.n_id[:b.batch_size], input_nodes[b.input_id])


def test_shuffle_changes_order_between_epochs(data):
    torch.manual_seed(4)
    loader = NeighborLoader(data, [2], batch_size=50, shuffle=True)
    orders = [torch.cat([b.input_id for b in loader]) for _ in range(3)]
    for o in orders:
        assert torch.equal(o.sort().values, torch.arange(data.num_nodes))
    assert not torch.equal(orders[0], torch.arange(data.num_nodes))
    assert not torch.equal(orders[0], orders[1]) and not torch.equal(orders[1], orders[2])


def test_epochs_resample_neighbors(data):
    torch.manual_seed(5)
    loader = NeighborLoader(data, [3, 3], batch_size=100)
    a, b = collect(loader), collect(loader)
    assert [x.input_id.tolist() for x in a] == [x.input_id.tolist() for x in b]
    assert differ(a, b), "two epochs sampled the same neighbors"
    torch.manual_seed(5)
    a2, b2 = collect(loader), collect(loader)
    assert_same_batches(a, a2, "epoch 1 reseeded")
    assert_same_batches(b, b2, "epoch 2 reseeded")


def test_transforms(data):
    seen = []

    def tso(out):
        seen.append(out.node.numel())
        return out

    def transform(batch):
        batch.marker = batch.n_id.numel()
        return batch

    loader = NeighborLoader(data, [2], batch_size=100, transform=transform, transform_sampler_output=tso)
    batches = collect(loader)
    assert [b.marker for b in batches] == [b.num_nodes for b in batches]
    # Prefetch threads run the transforms concurrently: the calls come in any order.
    assert sorted(seen) == sorted(b.num_nodes for b in batches)


def test_prebuilt_graph(data):
    g = CSRGraph.from_data(data)
    torch.manual_seed(6)
    a = collect(NeighborLoader(data, [3], batch_size=80, graph=g))
    torch.manual_seed(6)
    b = collect(NeighborLoader(data, [3], batch_size=80))
    assert_same_batches(a, b, "prebuilt graph")
    other = CSRGraph(data.edge_index[:, :-1], data.num_nodes)
    with pytest.raises(ValueError, match="graph"):
        NeighborLoader(data, [3], graph=other)


def test_generator_argument(data):
    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        return collect(NeighborLoader(data, [3, 2], batch_size=70, shuffle=True, generator=gen))

    torch.manual_seed(0)
    a = run(11)
    torch.manual_seed(999)  # the global generator does not matter
    assert_same_batches(a, run(11), "same generator seed")
    assert differ(a, run(12))


def test_large_feature_gather(data):
    """Batches whose node features exceed a few MB (a different allocation path)."""
    n = 2600
    d = make_graph(num_nodes=n, num_edges=9000, seed=8, num_isolated=50)
    d.x = torch.randn(n, 512)  # a full batch gathers more than 5 MB
    for nw in (0, 2):
        torch.manual_seed(3)
        loader = NeighborLoader(d, [-1], batch_size=n, num_workers=nw)
        (batch,) = collect(loader)
        assert batch.x.nbytes > 4 << 20
        assert torch.equal(batch.x, d.x[batch.n_id])
        assert batch.x.is_contiguous() and batch.x.shape == (batch.n_id.numel(), 512)
        before = d.x.clone()
        batch.x.add_(1.0)  # a batch owns its memory
        assert torch.equal(d.x, before)


# ----------------------------------------------------------------------------- weights


def test_weight_attr(data):
    d = data.clone()
    w = torch.ones(d.num_edges, dtype=torch.float64)
    w[::3] = 0.0
    d.importance = w
    torch.manual_seed(7)
    loader = NeighborLoader(d, [4, 4], batch_size=80, weight_attr="importance", replace=True)
    for batch in loader:
        check_batch(batch, d, torch.arange(d.num_nodes), [4, 4], weight=w)
        assert torch.equal(batch.importance, w[batch.e_id])
    # Without replacement and fanout above every degree: all positive-weight edges.
    loader = NeighborLoader(d, [10**6], batch_size=80, weight_attr="importance")
    deg = in_degree(d.edge_index, d.num_nodes, w)
    for batch in loader:
        bs = batch.batch_size
        assert batch.num_sampled_edges[0] == int(deg[batch.n_id[:bs]].sum())
        assert bool((w[batch.e_id] > 0).all())


def test_weight_attr_float32_and_uniform_weights_match_unweighted_support(data):
    d = data.clone()
    d.w32 = torch.full((d.num_edges,), 2.5, dtype=torch.float32)
    loader = NeighborLoader(d, [-1], batch_size=100, weight_attr="w32")
    plain = NeighborLoader(d, [-1], batch_size=100)
    pairs = list(zip(loader, plain))
    assert len(pairs) == len(plain) > 0
    for a, b in pairs:
        assert torch.equal(a.e_id.sort().values, b.e_id.sort().values)


# ---------------------------------------------------------------------------- determinism


DET_CONFIGS = [
    dict(num_neighbors=[4, 3], shuffle=True),
    dict(num_neighbors=[4, 3], replace=True, disjoint=True),
    dict(num_neighbors=[3, 3], subgraph_type="induced", weight_attr="weight", shuffle=True),
]


@pytest.mark.parametrize("cfg", DET_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_workers_after_parallel_kernels_in_parent(data, cfg):
    """Forked workers run the parallel kernels after the parent already did (workers=0
    pass first), and their batches are valid and cover the epoch."""
    torch.manual_seed(0)
    collect(NeighborLoader(data, batch_size=64, num_workers=0, **cfg))  # parent runs the kernels
    torch.manual_seed(0)
    loader = NeighborLoader(data, batch_size=64, num_workers=2, persistent_workers=False, **cfg)
    batches = collect(loader)
    assert len(batches) == len(loader)
    for b in batches:
        check_batch(b, data, torch.arange(data.num_nodes), cfg["num_neighbors"],
                    cfg.get("subgraph_type", "directional"), cfg.get("disjoint", False))
    ids = torch.cat([b.input_id for b in batches]).sort().values
    assert torch.equal(ids, torch.arange(data.num_nodes))


@pytest.mark.parametrize("cfg", DET_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_same_seed_same_batches_any_num_workers(data, cfg):
    """The workers=0 pass runs first, so the forked workers start after the parent ran
    the parallel kernels."""
    runs = {}
    for nw in (0, 2, 0, 2):
        torch.manual_seed(42)
        loader = NeighborLoader(data, batch_size=64, num_workers=nw, persistent_workers=False, **cfg)
        runs.setdefault(nw, []).append([collect(loader), collect(loader)])  # two epochs
    (w0a, w0b), (w2a, w2b) = runs[0], runs[2]
    for epoch in range(2):
        assert_same_batches(w0a[epoch], w0b[epoch], f"workers=0 twice, epoch {epoch}")
        assert_same_batches(w2a[epoch], w2b[epoch], f"workers=2 twice, epoch {epoch}")
    for epoch in range(2):
        assert_same_batches(w0a[epoch], w2a[epoch], f"workers=0 vs workers=2, epoch {epoch}")


@pytest.mark.parametrize("context", ["spawn", "forkserver"])
def test_a_generator_and_spawned_workers(data, context):
    """Workers that unpickle the loader (spawn, forkserver) never see its generator,
    which they could not rebuild; the batches are those of no workers."""
    runs = []
    for nw in (0, 1):
        loader = NeighborLoader(data, [4, 3], batch_size=128, shuffle=True, num_workers=nw,
                                multiprocessing_context=context if nw else None,
                                generator=torch.Generator().manual_seed(3))
        runs.append(collect(loader))
    assert_same_batches(runs[0], runs[1], f"workers=0 vs one {context} worker")


def test_same_seed_same_batches_any_numba_thread_count(data):
    before = numba.get_num_threads()
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has fewer than 2 threads")
    cfgs = DET_CONFIGS + [dict(num_neighbors=[-1, 5], subgraph_type="bidirectional")]
    try:
        for cfg in cfgs:
            runs = []
            for threads in (1, 2):
                numba.set_num_threads(threads)
                torch.manual_seed(42)
                # prefetch=0: prefetch threads set their own kernel thread counts
                runs.append(collect(NeighborLoader(data, batch_size=64, prefetch=0, **cfg)))
            assert_same_batches(runs[0], runs[1], f"threads 1 vs 2, {cfg}")
    finally:
        numba.set_num_threads(before)
    assert numba.get_num_threads() == before


def test_different_seed_different_batches(data):
    for cfg in DET_CONFIGS:
        runs = []
        for seed in (1, 2):
            torch.manual_seed(seed)
            runs.append(collect(NeighborLoader(data, batch_size=64, **cfg)))
        assert differ(runs[0], runs[1]), cfg


def test_filter_per_worker_false_same_batches(data):
    for nw in (0, 2):
        for cfg in DET_CONFIGS:
            out = []
            for fpw in (True, False):
                torch.manual_seed(9)
                loader = NeighborLoader(data, batch_size=64, num_workers=nw, filter_per_worker=fpw, **cfg)
                out.append(collect(loader))
                assert len(loader) == len(out[-1])
            assert_same_batches(out[0], out[1], f"filter_per_worker, workers={nw}, {cfg}")


# ------------------------------------------------------------------------------ bad input


def test_bad_input_nodes(data):
    n = data.num_nodes
    with pytest.raises(ValueError, match="input_nodes"):
        NeighborLoader(data, [2], input_nodes=torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="input_nodes"):
        NeighborLoader(data, [2], input_nodes=torch.zeros(n, dtype=torch.bool))
    with pytest.raises(ValueError, match="input_nodes"):
        NeighborLoader(data, [2], input_nodes=torch.ones(n - 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="input_nodes"):
        NeighborLoader(data, [2], input_nodes=torch.ones(n + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="input_nodes"):
        NeighborLoader(data, [2], input_nodes=torch.tensor([0, n]))
    with pytest.raises(ValueError, match="input_nodes"):
        NeighborLoader(data, [2], input_nodes=torch.tensor([3, -1]))
    with pytest.raises(TypeError, match="input_nodes"):
        NeighborLoader(data, [2], input_nodes=torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="input_nodes"):
        NeighborLoader(data, [2], input_nodes=torch.tensor([[1, 2]]))


def test_bad_batch_size(data):
    for bs in (0, -3):
        with pytest.raises(ValueError, match="batch_size"):
            NeighborLoader(data, [2], batch_size=bs)
    with pytest.raises(TypeError, match="batch_size"):
        NeighborLoader(data, [2], batch_size=2.5)


def test_bad_num_neighbors(data):
    with pytest.raises(ValueError, match="num_neighbors"):
        NeighborLoader(data, [])
    with pytest.raises(ValueError, match="num_neighbors"):
        NeighborLoader(data, [-2])
    with pytest.raises(ValueError, match="num_neighbors"):
        NeighborLoader(data, [3, -5])
    with pytest.raises(TypeError, match="num_neighbors"):
        NeighborLoader(data, [2.0])
    with pytest.raises(TypeError, match="num_neighbors"):
        NeighborLoader(data, ["2"])
    with pytest.raises(TypeError, match="num_neighbors"):
        NeighborLoader(data, 2)


def test_bad_weight_attr(data):
    with pytest.raises(ValueError, match="weight_attr"):
        NeighborLoader(data, [2], weight_attr="missing")
    for bad in (-1.0, float("nan"), float("inf")):
        d = data.clone()
        d.importance = torch.ones(d.num_edges, dtype=torch.float64)
        d.importance[10] = bad
        # The message names the argument (or the attribute it points to).
        with pytest.raises(ValueError, match="weight_attr|importance"):
            NeighborLoader(d, [2], weight_attr="importance")


@pytest.mark.parametrize("form", ["enum", "NumNeighbors", "tuple", "range"])
@pytest.mark.parametrize("subgraph_type", ["directional", "bidirectional", "induced"])
def test_pyg_argument_forms(data, form, subgraph_type):
    """Every form PyG accepts for an argument means what the plain form means."""
    plain = dict(num_neighbors=[3, 2], subgraph_type=subgraph_type, input_nodes=torch.arange(5, 305))
    alt = dict(plain)
    if form == "enum":
        alt["subgraph_type"] = SubgraphType(subgraph_type)
    elif form == "NumNeighbors":
        alt["num_neighbors"] = NumNeighbors([3, 2])
    elif form == "tuple":
        alt["num_neighbors"] = (3, 2)
    else:
        alt["input_nodes"] = range(5, 305)
    torch.manual_seed(9)
    a = collect(NeighborLoader(data, batch_size=64, shuffle=True, **alt))
    torch.manual_seed(9)
    b = collect(NeighborLoader(data, batch_size=64, shuffle=True, **plain))
    assert_same_batches(a, b, form)


def test_heterogeneous_argument_forms_refused(data):
    with pytest.raises(NotImplementedError, match="num_neighbors"):
        NeighborLoader(data, NumNeighbors({("a", "to", "a"): [2]}))
    with pytest.raises(NotImplementedError, match="input_nodes"):
        NeighborLoader(data, [2], input_nodes=("a", torch.arange(3)))


@pytest.mark.parametrize("prefetch", [0, 2])
def test_sampler_positions_checked(data, prefetch):
    """A sampler's positions index input_nodes: out of range is an error naming sampler
    and the value (-1 would wrap to the last seed), raised when the epoch starts."""
    idx = torch.arange(10, 60)
    for bad in (-1, 50, 5000):
        loader = NeighborLoader(data, [2], input_nodes=idx, batch_size=4, prefetch=prefetch,
                                sampler=[0, 3, bad, 7])
        with pytest.raises(ValueError, match=rf"sampler.*{bad}"):
            iter(loader)
    with pytest.raises(TypeError, match="sampler"):
        iter(NeighborLoader(data, [2], input_nodes=idx, sampler=[0, 1.5]))
    epochs = iter([[0, 1, 49], [2, 50]])

    class Changing:  # a sampler whose positions change per epoch, as a RandomSampler's do
        def __iter__(self):
            return iter(next(epochs))

        def __len__(self):
            return 3

    loader = NeighborLoader(data, [2], input_nodes=idx, batch_size=2, prefetch=prefetch,
                            sampler=Changing())
    assert [b.input_id.tolist() for b in loader] == [[0, 1], [49]]
    with pytest.raises(ValueError, match="sampler.*50"):
        iter(loader)


def test_bad_subgraph_type(data):
    with pytest.raises(ValueError, match="subgraph_type"):
        NeighborLoader(data, [2], subgraph_type="bogus")


def test_hetero_data_needs_input_nodes_of_a_type():
    h = HeteroData()
    h["a"].x = torch.randn(4, 2)
    h["a", "to", "a"].edge_index = torch.tensor([[0, 1], [1, 2]])
    for num_neighbors in ([2], {("a", "to", "a"): [2]}):
        with pytest.raises(ValueError, match="input_nodes"):
            NeighborLoader(h, num_neighbors)


def test_unsupported_dataloader_arguments(data):
    with pytest.raises(TypeError, match="collate_fn"):
        NeighborLoader(data, [2], collate_fn=lambda x: x)
    with pytest.raises(NotImplementedError):
        NeighborLoader(data, [2], time_attr="t")
