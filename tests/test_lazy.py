"""Lazy propagation (LazyGNN): the paper's identities, the lazy backward, the state's
write rules in mini-batches, memory that does not grow with L, and the halo loader."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from conftest import make_graph
from graphbatch import ClusterData, CSRGraph, FeatureStore, HaloLoader, LazyGNN, LazyPropagation
from graphbatch.cli.lazy_bench import saved_bytes
from graphbatch.lazy import appnp_steps, normalized_adjacency, sparse_operator


def undirected_graph(n: int = 60, m: int = 240, seed: int = 0) -> tuple[torch.Tensor, int]:
    gen = torch.Generator().manual_seed(seed)
    return to_undirected(torch.randint(0, n, (2, m), generator=gen), num_nodes=n), n


@pytest.fixture(scope="module")
def graph():
    ei, n = undirected_graph()
    ei_norm, w = normalized_adjacency(ei, n)
    return ei, n, ei_norm, w, sparse_operator(ei_norm, w, n)


# ------------------------------------------------------------------ paper identities


@pytest.mark.parametrize("steps,iterations", [(1, 5), (2, 3), (3, 4)])
@pytest.mark.parametrize("alpha", [0.1, 0.5])
def test_lazy_iterations_equal_long_appnp(graph, steps, iterations, alpha):
    """beta = 0 (a pure warm start from the stored result): K lazy iterations of L
    steps are L * K APPNP steps from the same X_in."""
    _, n, ei_norm, w, adj = graph
    x_in = torch.randn(n, 5, generator=torch.Generator().manual_seed(1))
    prop = LazyPropagation(n, 5, steps=steps, alpha=alpha, beta=0.0, pin=False)
    for _ in range(iterations):
        out = prop(x_in, ei_norm, w)
    expected = appnp_steps(x_in, x_in, adj, alpha, steps * iterations)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(prop.state["fea"], expected, atol=1e-5, rtol=1e-5)


def test_lazygnn_with_learning_rate_zero_equals_long_appnp(graph):
    """The whole model, trained with lr 0, dropout 0 and beta 0: its K-th training
    output is APPNP with L * K steps from the MLP's logits."""
    _, n, ei_norm, w, adj = graph
    torch.manual_seed(0)
    x = torch.randn(n, 8)
    y = torch.randint(0, 3, (n,))
    model = LazyGNN(8, 16, 3, n, num_layers=2, dropout=0.0, batch_norm=False, steps=2,
                    beta=0.0, gamma=0.5, pin=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    for _ in range(4):
        opt.zero_grad()
        out = model(x, ei_norm, w)
        torch.nn.functional.cross_entropy(out, y).backward()
        opt.step()
    x_in = model.mlp(x).detach()
    torch.testing.assert_close(out.detach(), appnp_steps(x_in, x_in, adj, 0.1, 8),
                               atol=1e-5, rtol=1e-5)


def test_eval_mode_is_plain_appnp_and_leaves_the_state(graph):
    _, n, ei_norm, w, adj = graph
    x_in = torch.randn(n, 4)
    prop = LazyPropagation(n, 4, eval_steps=7, pin=False).eval()
    torch.testing.assert_close(prop(x_in, ei_norm, w), appnp_steps(x_in, x_in, adj, 0.1, 7))
    assert not prop.state.written("fea").any()
    assert not prop.state["fea"].any()


# ------------------------------------------------------------------ lazy backward


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_backward_with_gamma_one_is_autograd_through_the_steps(graph, steps):
    """gamma = 1 and a first visit (X_0 = X_in): the lazy gradient is exactly autograd's
    through L unrolled steps; the state stores it."""
    _, n, ei_norm, w, adj = graph
    gen = torch.Generator().manual_seed(2)
    x_in, upstream = torch.randn(n, 3, generator=gen), torch.randn(n, 3, generator=gen)
    prop = LazyPropagation(n, 3, steps=steps, beta=0.3, gamma=1.0, pin=False)
    a = x_in.clone().requires_grad_()
    (prop(a, ei_norm, w) * upstream).sum().backward()
    b = x_in.clone().requires_grad_()
    (appnp_steps(b, b, adj, 0.1, steps) * upstream).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(prop.state["grad"], a.grad)
    assert prop.state.written("grad").all()


def test_backward_mixes_the_stored_gradient(graph):
    """gamma < 1: G_L = (1 - gamma) M_grad + gamma dL/dX_L, then L steps of
    G_l = (1 - alpha) Â^T G_{l+1} + alpha dL/dX_L; nodes without a stored gradient
    start from dL/dX_L."""
    ei, n, ei_norm, w, _ = graph
    adj_t = sparse_operator(ei_norm, w, n, transpose=True)
    gamma, alpha, steps = 0.3, 0.2, 2
    prop = LazyPropagation(n, 3, steps=steps, alpha=alpha, gamma=gamma, pin=False)
    gen = torch.Generator().manual_seed(3)
    stored = torch.randn(n, 3, generator=gen)
    has = torch.rand(n, generator=gen) < 0.5
    prop.state["grad"].copy_(stored)
    prop.state.written("grad").copy_(has)
    x_in = torch.randn(n, 3, generator=gen, requires_grad=True)
    upstream = torch.randn(n, 3, generator=gen)
    (prop(x_in, ei_norm, w) * upstream).sum().backward()
    start = torch.where(has[:, None], (1 - gamma) * stored + gamma * upstream, upstream)
    expected = appnp_steps(start, upstream, adj_t, alpha, steps)
    torch.testing.assert_close(x_in.grad, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(prop.state["grad"], expected, atol=1e-6, rtol=1e-5)


def test_backward_uses_the_transpose_on_directed_graphs():
    """On a directed graph Â is not symmetric; gamma = 1 still matches autograd."""
    n = 30
    ei = torch.randint(0, n, (2, 90), generator=torch.Generator().manual_seed(4))
    ei_norm, w = normalized_adjacency(ei, n)
    adj = sparse_operator(ei_norm, w, n)
    upstream = torch.randn(n, 2)
    a = torch.randn(n, 2, requires_grad=True)
    prop = LazyPropagation(n, 2, steps=3, gamma=1.0, pin=False)
    (prop(a, ei_norm, w) * upstream).sum().backward()
    b = a.detach().clone().requires_grad_()
    (appnp_steps(b, b, adj, 0.1, 3) * upstream).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------ mini-batches


def halo_batch(n_targets: int = 8):
    ei, n = undirected_graph(80, 200, seed=5)
    data = Data(edge_index=ei, num_nodes=n, x=torch.randn(n, 6))
    loader = HaloLoader(data, num_hops=2, input_nodes=torch.arange(0, n, 3),
                        batch_size=n_targets, shuffle=False, prefetch=0)
    return data, loader, next(iter(loader))


def test_only_targets_are_written_and_halo_gets_no_gradient():
    data, loader, batch = halo_batch()
    k, n = batch.batch_size, data.num_nodes
    assert batch.num_nodes > k  # there is a halo
    prop = LazyPropagation(n, 6, steps=2, beta=0.5, gamma=0.5, pin=False)
    gen = torch.Generator().manual_seed(6)
    prop.state["fea"].copy_(torch.randn(n, 6, generator=gen))
    prop.state["grad"].copy_(torch.randn(n, 6, generator=gen))
    prop.state.written("fea").fill_(True)
    prop.state.written("grad").fill_(True)
    before = {name: prop.state[name].clone() for name in ("fea", "grad")}
    x_in = batch.x.clone().requires_grad_()
    out = prop(x_in, batch.edge_index, batch.edge_weight, batch.n_id, k)
    out[:k].sum().backward()
    targets = torch.zeros(n, dtype=torch.bool)
    targets[batch.n_id[:k]] = True
    for name in ("fea", "grad"):
        changed = (prop.state[name] != before[name]).any(1)
        assert changed[targets].all(), name
        assert not changed[~targets].any(), f"{name}: a halo or unvisited row was written"
    torch.testing.assert_close(prop.state["fea"][batch.n_id[:k]], out[:k].detach())
    assert not x_in.grad[k:].any()
    assert x_in.grad[:k].abs().sum() > 0


def test_first_visit_does_not_mix():
    """Rows never written are not mixed, whatever the table holds."""
    data, loader, batch = halo_batch()
    n, k = data.num_nodes, batch.batch_size
    fresh = LazyPropagation(n, 6, steps=2, beta=0.5, gamma=0.5, pin=False)
    junk = LazyPropagation(n, 6, steps=2, beta=0.5, gamma=0.5, pin=False)
    junk.state["fea"].fill_(1e3)
    junk.state["grad"].fill_(1e3)
    outs, grads = [], []
    for prop in (fresh, junk):
        x_in = batch.x.clone().requires_grad_()
        out = prop(x_in, batch.edge_index, batch.edge_weight, batch.n_id, k)
        out[:k].sum().backward()
        outs.append(out.detach())
        grads.append(x_in.grad)
    torch.testing.assert_close(outs[0], outs[1])
    torch.testing.assert_close(grads[0], grads[1])
    # After the first visit the targets are marked; the halo is not.
    assert junk.state.written("fea")[batch.n_id[:k]].all()
    assert not junk.state.written("fea")[batch.n_id[k:]].any()


def test_halo_batch_gives_the_targets_their_full_graph_output():
    """L steps on a batch with the complete L-hop halo and the global normalization:
    the targets' rows equal the full-graph computation."""
    data, loader, batch = halo_batch()
    n, k = data.num_nodes, batch.batch_size
    x_in = torch.randn(n, 6, generator=torch.Generator().manual_seed(7))
    full_ei, full_w = normalized_adjacency(data.edge_index, n)
    full = appnp_steps(x_in, x_in, sparse_operator(full_ei, full_w, n), 0.1, 2)
    prop = LazyPropagation(n, 6, steps=2, pin=False)
    out = prop(x_in[batch.n_id], batch.edge_index, batch.edge_weight, batch.n_id, k)
    torch.testing.assert_close(out[:k], full[batch.n_id[:k]], atol=1e-6, rtol=1e-5)


def test_halo_loader_is_targets_plus_complete_halo_induced():
    ei, n = undirected_graph(70, 150, seed=8)
    data = Data(edge_index=ei, num_nodes=n)
    hops = 2
    loader = HaloLoader(data, num_hops=hops, batch_size=5, shuffle=True, prefetch=0)
    norm_ei, norm_w = loader.data.edge_index, loader.data.edge_weight
    src, dst = norm_ei
    for batch in loader:
        k = batch.batch_size
        targets = set(batch.n_id[:k].tolist())
        expected = set(targets)
        frontier = set(targets)
        for _ in range(hops):
            frontier = {int(u) for u, v in zip(src.tolist(), dst.tolist()) if v in frontier}
            expected |= frontier
        assert set(batch.n_id.tolist()) == expected
        assert len(batch.n_id) == len(expected)
        node_set = set(batch.n_id.tolist())
        expected_edges = sorted(e for e in range(src.numel())
                                if int(src[e]) in node_set and int(dst[e]) in node_set)
        assert sorted(batch.e_id.tolist()) == expected_edges
        local = batch.n_id
        assert torch.equal(local[batch.edge_index[0]], src[batch.e_id])
        assert torch.equal(local[batch.edge_index[1]], dst[batch.e_id])
        torch.testing.assert_close(batch.edge_weight, norm_w[batch.e_id])


def test_halo_loader_batches_whole_clusters():
    data = make_graph(num_nodes=300, num_edges=1500, seed=9)
    cd = ClusterData(data, num_parts=10, log=False)
    with pytest.warns(UserWarning, match="edge attributes"):
        loader = HaloLoader(data, num_hops=1, cluster_data=cd, batch_size=3, shuffle=True,
                            prefetch=0)
    seen = []
    part = cd.partition.part
    for batch in loader:
        k = batch.batch_size
        clusters = part[batch.n_id[:k]].unique()
        assert clusters.numel() <= 3
        # The targets are exactly the nodes of their clusters.
        assert k == int(torch.isin(part, clusters).sum())
        seen += clusters.tolist()
    assert sorted(seen) == list(range(10))


def test_halo_loader_normalize_leaves_out_the_data_edge_attributes():
    """The normalized graph's self-loops have no value for data's edge attributes: the
    batches leave them out (they used to carry them whole, unsliced), with a warning
    naming them; data's own edge_weight gives way to the normalization's."""
    data = make_graph(num_nodes=300, num_edges=1500, seed=9)
    data.edge_weight = torch.rand(data.num_edges, generator=torch.Generator().manual_seed(2))
    cd = ClusterData(data, num_parts=10, log=False)
    for kwargs in ({"batch_size": 40}, {"cluster_data": cd, "batch_size": 3}):
        with pytest.warns(UserWarning) as record:
            loader = HaloLoader(data, num_hops=1, prefetch=0, **kwargs)
        assert len(record) == 1
        assert "['edge_attr', 'edge_weight', 'weight']" in str(record[0].message)
        assert record[0].filename == __file__  # points at the caller
        assert all(key in data for key in ("edge_attr", "weight", "edge_weight"))
        norm_ei, norm_w = normalized_adjacency(data.edge_index, data.num_nodes)
        assert torch.equal(loader.data.edge_index, norm_ei)
        for batch in loader:
            m = batch.edge_index.size(1)
            assert "edge_attr" not in batch and "weight" not in batch
            torch.testing.assert_close(batch.edge_weight, norm_w[batch.e_id])
            for key, value in batch.items():
                if isinstance(value, torch.Tensor) and key not in ("edge_index", "input_id"):
                    assert value.size(0) in (batch.num_nodes, m), key
    # Without normalization the edge attributes are sliced by e_id, silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loader = HaloLoader(data, num_hops=1, normalize=False, batch_size=40, prefetch=0)
        batch = next(iter(loader))
        HaloLoader(Data(edge_index=data.edge_index, num_nodes=data.num_nodes), num_hops=1)
    for key in ("edge_attr", "weight", "edge_weight"):
        assert torch.equal(batch[key], data[key][batch.e_id])


# ------------------------------------------------------------------ memory


def test_autograd_memory_does_not_grow_with_steps(graph):
    """The bytes autograd keeps for a step are the same for L = 1, 2, 4, 8. A deep
    GCN's propagation (a ReLU after each step) keeps one activation a step, so the
    measurement does see growth where there is some."""
    _, n, ei_norm, w, adj = graph
    x = torch.randn(n, 8)
    lazy, deep = [], []
    for steps in (1, 2, 4, 8):
        torch.manual_seed(0)
        model = LazyGNN(8, 16, 4, n, num_layers=2, steps=steps, pin=False)
        lazy.append(saved_bytes(lambda: model(x, ei_norm, w).sum().backward()))

        def deep_step():
            h = torch.randn(n, 4, requires_grad=True)
            out = h
            for _ in range(steps):
                out = torch.relu(adj @ out)
            out.sum().backward()

        deep.append(saved_bytes(deep_step))
    assert len(set(lazy)) == 1, lazy
    assert deep == sorted(deep) and deep[-1] > deep[0], deep


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("kwargs,match", [
    ({"alpha": 1.5}, "alpha"), ({"beta": -0.1}, "beta"), ({"gamma": 2}, "gamma"),
    ({"steps": 0}, "steps"), ({"eval_steps": 0}, "eval_steps"), ({"steps": 1.5}, "steps"),
])
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LazyPropagation(10, 2, pin=False, **kwargs)


def test_bad_call_arguments(graph):
    _, n, ei_norm, w, _ = graph
    prop = LazyPropagation(n, 3, pin=False)
    with pytest.raises(ValueError, match="x_in"):
        prop(torch.randn(n, 4), ei_norm, w)
    with pytest.raises(ValueError, match="edge_weight"):
        prop(torch.randn(n, 3), ei_norm, None)
    with pytest.raises(ValueError, match="n_id"):
        prop(torch.randn(5, 3), ei_norm[:, :0], w[:0], torch.tensor([0, 1, 2, 3, n]))
    with pytest.raises(ValueError, match="without n_id"):
        prop(torch.randn(5, 3), ei_norm[:, :0], w[:0])
    with pytest.raises(ValueError, match="num_targets"):
        prop(torch.randn(n, 3), ei_norm, w, torch.arange(n), 0)


def test_halo_loader_bad_arguments():
    data = make_graph(num_nodes=50, num_edges=200, seed=1)
    with pytest.raises(ValueError, match="num_hops"):
        HaloLoader(data, num_hops=0)
    with pytest.raises(ValueError, match="batch_size"):
        HaloLoader(data, batch_size=0)
    cd = ClusterData(data, num_parts=4, log=False)
    with pytest.raises(ValueError, match="not both"):
        HaloLoader(data, input_nodes=torch.arange(5), cluster_data=cd)
    graph = CSRGraph.from_data(data)
    with pytest.raises(ValueError, match="normalize=False"):
        HaloLoader(data, graph=graph)
    # Without normalization the given topology is used.
    assert HaloLoader(data, normalize=False, graph=graph).graph is graph


# ------------------------------------------------------------------ feature store writes


def test_feature_store_scatter_writes_rows(tmp_path):
    table = torch.zeros(20, 3)
    store = FeatureStore({"t": table}, pin=False)
    ids = torch.tensor([3, 7, 0])
    store.scatter_("t", ids, torch.arange(9.0).view(3, 3))
    assert torch.equal(table[ids], torch.arange(9.0).view(3, 3))
    assert not table[[i for i in range(20) if i not in (0, 3, 7)]].any()
    with pytest.raises(ValueError, match="shape"):
        store.scatter_("t", ids, torch.zeros(2, 3))
    path = tmp_path / "t.npy"
    np.save(path, np.zeros((20, 3), dtype=np.float32))
    mapped = FeatureStore({"m": str(path)}, pin=False)
    with pytest.raises(ValueError, match="read-only"):
        mapped.scatter_("m", ids, torch.zeros(3, 3))


def test_cached_operator_follows_in_place_changes(graph):
    """The normalized adjacency is cached across calls with the same tensors; changing
    them in place (or passing others) is seen."""
    _, n, ei_norm, w, adj = graph
    x_in = torch.randn(n, 3)
    prop = LazyPropagation(n, 3, pin=False).eval()
    first = prop(x_in, ei_norm, w)
    weight = w.clone()
    torch.testing.assert_close(prop(x_in, ei_norm, weight), first)
    weight.mul_(0.5)
    half = appnp_steps(x_in, x_in, sparse_operator(ei_norm, w * 0.5, n), 0.1, 7)
    torch.testing.assert_close(prop(x_in, ei_norm, weight), half)
    torch.testing.assert_close(prop(x_in, ei_norm, w), first)
    assert list(prop._cache[3]) == [False]  # evaluation builds no transpose
    prop.train()(x_in, ei_norm, w)
    assert sorted(prop._cache[3]) == [False, True]


def test_bad_model_and_state_sizes():
    from graphbatch.lazy import LazyState

    with pytest.raises(ValueError, match="num_layers"):
        LazyGNN(4, 8, 2, 10, num_layers=0, pin=False)
    with pytest.raises(ValueError, match="num_nodes"):
        LazyState(0, 3, pin=False)
    with pytest.raises(ValueError, match="num_channels"):
        LazyState(10, 0, pin=False)
    data = make_graph(num_nodes=50, num_edges=200, seed=1)
    with pytest.raises(TypeError, match="cluster_data"):
        HaloLoader(data, cluster_data=object())


@pytest.mark.parametrize("argv, match", [
    (["--eval-steps", "0"], "--eval-steps"),
    (["--eval-steps", "10", "-1"], "--eval-steps"),
    (["--steps", "0"], "--steps"),
    (["--beta", "0.5", "0.3", "0.7"], "as many values"),
])
def test_bench_lazy_rejects_bad_settings(argv, match, capsys):
    from graphbatch.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "lazy", *argv])
    assert exit_info.value.code == 2
    assert match in capsys.readouterr().err
