"""The synthetic graphs in named sizes: the scalable generator (coalescing against PyG's,
alias tables against their weights, classes and skew), the sizes' parameters (the big
ones built at reduced scale), and the on-disk cache (built once, then mapped; rebuilt
for other parameters or a corrupted file; never built to be listed)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

from graphbatch.cache import _checksum
from graphbatch.cli import datasets_cmd
from graphbatch.datasets import catalog, load, planted_classes, planted_graph, random_split
from graphbatch.datasets import sizes, store
from graphbatch.datasets._synthetic_kernels import segment_alias, undirected_coalesced

#: ogbn-products as PyG has it: nodes, directed edges (both directions), features, classes.
PRODUCTS = (2_449_029, 123_718_280, 100, 47)


def test_coalescing_matches_pyg():
    """Pairs with self-loops and duplicates in both directions: the kernel's result is
    PyG's to_undirected after remove_self_loops, exactly."""
    gen = torch.Generator().manual_seed(0)
    n = 300
    pairs = torch.randint(n, (2, 4000), generator=gen)
    pairs[:, :50] = pairs[0, :50]  # self-loops
    pairs = torch.cat([pairs, pairs[:, 100:200], pairs[:, 300:400].flip(0)], 1)
    expected = to_undirected(remove_self_loops(pairs)[0], num_nodes=n)
    for dtype in (torch.int32, torch.int64):
        p = pairs.to(dtype).numpy()
        got = torch.from_numpy(undirected_coalesced(p[0], p[1], n))
        assert got.dtype == torch.int64 and torch.equal(got, expected)


def test_alias_tables_give_each_slot_its_weight():
    """The distribution a table implies (kept with prob[i], or reached as another
    slot's alias) is the weights', segment by segment, empty segments included."""
    rng = np.random.default_rng(0)
    weight = rng.random(1000) ** -0.5
    starts = np.array([0, 10, 10, 400, 999])
    ends = np.array([10, 10, 400, 999, 1000])
    prob, alias = segment_alias(weight, starts, ends)
    for lo, hi in zip(starts, ends):
        if hi == lo:
            continue
        implied = prob[lo:hi].copy()
        np.add.at(implied, alias[lo:hi] - lo, 1.0 - prob[lo:hi])
        assert ((alias[lo:hi] >= lo) & (alias[lo:hi] < hi)).all()
        np.testing.assert_allclose(implied / (hi - lo), weight[lo:hi] / weight[lo:hi].sum(),
                                   rtol=1e-9)


def test_planted_graph_shape_classes_and_skew():
    n, avg, classes, features, h = 4000, 10.0, 4, 8, 0.6
    data = planted_graph(n, avg, classes, features, homophily=h, seed=3)
    x, y, ei = data.x, data.y, data.edge_index
    assert x.shape == (n, features) and x.dtype == torch.float32
    assert y.shape == (n,) and y.dtype == torch.int64 and set(y.tolist()) == set(range(classes))
    assert ei.dtype == torch.int64 and torch.equal(ei, coalesce(ei, num_nodes=n))
    assert torch.equal(ei, to_undirected(ei, num_nodes=n)) and not (ei[0] == ei[1]).any()
    assert 0.9 * n * avg < ei.size(1) <= n * avg
    deg = torch.bincount(ei[1], minlength=n).float()
    assert deg.max() > 8 * deg.median()  # Pareto activity: hubs
    # Same class: the homophilous pairs, plus a 1/classes share of the others.
    same = (y[ei[0]] == y[ei[1]]).float().mean().item()
    assert abs(same - (h + (1 - h) / classes)) < 0.05
    # Features carry the class: class means are apart by more than the noise allows.
    means = torch.stack([x[y == c].mean(0) for c in range(classes)])
    assert torch.cdist(means, means).fill_diagonal_(1e9).min() > 0.1


def test_planted_graph_is_seeded():
    a, b = planted_graph(500, 6.0, 3, 4, seed=1), planted_graph(500, 6.0, 3, 4, seed=1)
    c = planted_graph(500, 6.0, 3, 4, seed=2)
    assert all(torch.equal(a[k], b[k]) for k in ("x", "y", "edge_index"))
    assert not torch.equal(a.y, c.y)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_nodes=0), "num_nodes must be positive, got 0"),
    (dict(num_classes=2.5), "num_classes must be an int, got 2.5"),
    (dict(avg_degree=0), "avg_degree must be positive, got 0"),
    (dict(homophily=1.5), r"homophily must be in \[0, 1\], got 1.5"),
    (dict(feature_signal="high"), "feature_signal must be a number, got 'high'"),
])
def test_planted_graph_refuses_bad_arguments(kwargs, message):
    args = {**dict(num_nodes=100, avg_degree=4.0, num_classes=3, num_features=4), **kwargs}
    with pytest.raises((TypeError, ValueError), match=message):
        planted_graph(**args)


def test_named_sizes():
    table = sizes.SIZES
    assert list(table) == ["synthetic", "synthetic-small", "synthetic-1m", "synthetic-products"]
    small, one_m, products = (table[k] for k in list(table)[1:])
    assert 1000 <= small.num_nodes <= 10_000
    assert one_m.num_nodes == 1_000_000 and abs(one_m.nominal_edges() / 20e6 - 1) < 0.01
    n, e, f, c = PRODUCTS
    assert (products.num_nodes, products.num_features, products.num_classes) == (n, f, c)
    # The built graph has 0.05% fewer than nominal at this size (measured: 123,733,608
    # of 123,798,416).
    assert abs(products.nominal_edges() * 0.9995 / e - 1) < 0.002


@pytest.mark.parametrize("name, degree", [("synthetic-1m", 20.0),
                                          ("synthetic-products", PRODUCTS[1] / PRODUCTS[0])])
def test_big_sizes_at_reduced_scale(name, degree):
    """The big sizes' generator and parameters on 20k nodes: their features, classes and
    average degree (duplicates at the hubs cost more on a small graph: within 4%)."""
    size = sizes.SIZES[name].scaled(20_000)
    tensors = size.build()
    assert size.check(tensors)
    assert tensors["x"].shape == (20_000, size.num_features)
    assert int(tensors["y"].max()) + 1 == size.num_classes
    assert 0.96 < tensors["edge_index"].size(1) / 20_000 / degree <= 1.0


def test_synthetic_keeps_planted_classes_content(tmp_path):
    """`make demo`'s graph: built through the cache or read from it, it is
    planted_classes()'s, masks included."""
    reference = planted_classes()
    for _ in range(2):
        data = load("synthetic", root=tmp_path)
        for k in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask"):
            assert torch.equal(data[k], reference[k]), k
    assert (tmp_path / "synthetic" / "synthetic.pt").is_file()


@pytest.fixture
def small(tmp_path):
    """synthetic-small built once in a fresh root: (root, the tensors it built)."""
    data = load("synthetic-small", root=tmp_path)
    return tmp_path, {k: data[k].clone() for k in ("x", "y", "edge_index")}


def _same(data, tensors) -> bool:
    return all(torch.equal(data[k], v) for k, v in tensors.items())


def test_small_is_built_once_then_mapped(small, monkeypatch):
    root, built = small
    path = root / "synthetic" / "synthetic-small.pt"
    assert path.is_file()

    def no_build(self):
        raise AssertionError("rebuilt a valid cached graph")

    monkeypatch.setattr(sizes.Size, "build", no_build)
    for split in (0, 2):
        data = load("synthetic-small", root=root, split=split)
        assert _same(data, built)
        n = data.num_nodes
        for ours, expected in zip((data.train_mask, data.val_mask, data.test_mask),
                                  random_split(n, seed=split)):
            assert ours.dtype == torch.bool and ours.shape == (n,) and torch.equal(ours, expected)
        assert int(data.train_mask.sum()) == int(0.6 * n)
    maps = Path("/proc/self/maps")
    if maps.exists():  # Linux: the file is mapped, not read into memory
        assert str(path) in maps.read_text()
    # Mapped copy-on-write: a caller's writes stay in its process.
    data.x[0] = 1e6
    assert _same(load("synthetic-small", root=root), built)


def test_changed_parameters_rebuild(small, monkeypatch):
    root, built = small
    changed = sizes.Size("synthetic-small", "planted_graph",
                         {**sizes.SIZES["synthetic-small"].params, "seed": 7})
    monkeypatch.setitem(sizes.SIZES, "synthetic-small", changed)
    with pytest.warns(UserWarning, match="does not match"):
        data = load("synthetic-small", root=root)
    assert not torch.equal(data.y, built["y"])
    assert torch.equal(data.edge_index, changed.build()["edge_index"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt file is now the valid one
        assert torch.equal(load("synthetic-small", root=root).y, data.y)


def test_corrupted_file_rebuilds(small):
    root, built = small
    path = root / "synthetic" / "synthetic-small.pt"
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2  # inside x's bytes: the file still opens, the checksum fails
    raw[middle:middle + 8] = bytes(8)
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="synthetic graph 'synthetic-small'"):
        assert _same(load("synthetic-small", root=root), built)
    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable"):
        assert _same(load("synthetic-small", root=root), built)


def test_store_digest_is_the_cache_modules():
    """Files written by graphbatch.cache.cached are verified by store with its digest."""
    tensors = {"x": torch.randn(5, 3), "m": torch.tensor([True, False]),
               "e": torch.arange(6).view(2, 3)}
    assert store.checksum(tensors) == _checksum(tensors)


def test_listing_never_builds(tmp_path, monkeypatch, small):
    """Nominal counts until built (from the parameters), then exact ones (from the
    file's index); cached says which."""
    root, built = small
    monkeypatch.setenv("GRAPHBATCH_DATA_ROOT", str(root))

    def no_build(self):
        raise AssertionError("built a graph to list it")

    monkeypatch.setattr(sizes.Size, "build", no_build)
    products = datasets_cmd.row("synthetic-products")
    n, _, f, c = PRODUCTS
    assert (products["nodes"], products["features"], products["classes"]) == (n, f, c)
    assert products["edges"] == f"~{sizes.SIZES['synthetic-products'].nominal_edges()}"
    assert products["present"] == "yes" and products["cached"] == "no"
    row = datasets_cmd.row("synthetic-small")
    assert row["cached"] == "yes" and row["edges"] == built["edge_index"].size(1)
    assert row["split"] == "random 60/20/20" and row["metric"] == "accuracy"


@pytest.mark.parametrize("name, split, error", [
    ("synthetic-small", -1, "split must be >= 0 for 'synthetic-small'"),
    ("synthetic", 1, "split must be 0 for 'synthetic'"),
])
def test_split_checked_before_building(tmp_path, name, split, error):
    with pytest.raises(ValueError, match=error):
        load(name, root=tmp_path, split=split)
    assert not (tmp_path / "synthetic").exists()


def test_entries():
    for name in sizes.SIZES:
        e = catalog.entry(name)
        assert (e.source, e.metric, e.split) == (catalog.GENERATED, "accuracy", catalog.RANDOM)
    assert catalog.entry("synthetic").num_splits == 1
    assert catalog.entry("synthetic-1m").num_splits is None
