"""GraphSAINT loaders: PyG-compatible constructors, batch fields, determinism, bad input,
the normalization cache, random-walk roots."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch_geometric.data import Data, HeteroData

from conftest import induced_reference, make_graph
from graphbatch import (
    GraphSAINTEdgeSampler, GraphSAINTNodeSampler, GraphSAINTRandomWalkSampler,
)
from graphbatch import cache
from graphbatch.sampling import saint_norm


@pytest.fixture(scope="module")
def data() -> Data:
    d = make_graph(num_nodes=150, num_edges=700, seed=4, num_isolated=5, num_self_loops=5,
                   num_duplicates=10)
    gen = torch.Generator().manual_seed(0)
    d.train_mask = torch.rand(d.num_nodes, generator=gen) < 0.6
    d.val_mask = ~d.train_mask
    d.graph_label = torch.tensor(3)  # a graph-level attribute, passed through
    return d


LOADERS = {
    "node": lambda d, **kw: GraphSAINTNodeSampler(d, 40, **kw),
    "edge": lambda d, **kw: GraphSAINTEdgeSampler(d, 30, **kw),
    "rw": lambda d, **kw: GraphSAINTRandomWalkSampler(d, 10, 3, **kw),
}


def collect(loader) -> list[Data]:
    return list(loader)


def check_batch(batch: Data, data: Data, loader, with_norm: bool) -> None:
    n_id, e_id, ei = batch.n_id, batch.e_id, batch.edge_index
    assert n_id.dtype == e_id.dtype == ei.dtype == torch.int64
    assert bool((n_id[1:] > n_id[:-1]).all()), "n_id not sorted and unique"
    assert batch.num_nodes == n_id.numel()
    assert ei.shape == (2, e_id.numel())
    assert torch.equal(batch.x, data.x[n_id])
    assert torch.equal(batch.y, data.y[n_id])
    assert torch.equal(batch.train_mask, data.train_mask[n_id])
    assert torch.equal(batch.val_mask, data.val_mask[n_id])
    assert torch.equal(batch.edge_attr, data.edge_attr[e_id])
    assert torch.equal(batch.weight, data.weight[e_id])
    assert torch.equal(batch.graph_label, data.graph_label)
    assert torch.equal(data.edge_index[:, e_id], n_id[ei])
    # The induced subgraph of n_id: every edge among the nodes, once.
    got = sorted(zip(ei[0].tolist(), ei[1].tolist(), e_id.tolist()))
    assert got == induced_reference(data.edge_index, n_id)
    if with_norm:
        assert batch.node_norm.dtype == batch.edge_norm.dtype == torch.float32
        assert torch.equal(batch.node_norm, loader.norm.node_norm[n_id])
        assert torch.equal(batch.edge_norm, loader.norm.edge_norm[e_id])
    else:
        assert "node_norm" not in batch and "edge_norm" not in batch


def fields(b: Data) -> dict:
    return {k: v for k, v in b.to_dict().items()}


def assert_same_batches(a: list[Data], b: list[Data], msg: str = "") -> None:
    assert len(a) == len(b), msg
    for i, (x, y) in enumerate(zip(a, b)):
        fx, fy = fields(x), fields(y)
        assert fx.keys() == fy.keys(), (msg, i)
        for k in fx:
            if isinstance(fx[k], torch.Tensor):
                assert torch.equal(fx[k], fy[k]), (msg, i, k)
            else:
                assert fx[k] == fy[k], (msg, i, k)


def differ(a: list[Data], b: list[Data]) -> bool:
    return any(not torch.equal(x.n_id, y.n_id) for x, y in zip(a, b))


# ------------------------------------------------------------------------ batches, PyG API


@pytest.mark.parametrize("kind", list(LOADERS))
def test_batches_without_norm(data, kind):
    torch.manual_seed(0)
    loader = LOADERS[kind](data, num_steps=6)
    assert loader.norm is None
    assert len(loader) == 6
    batches = collect(loader)
    assert len(batches) == 6
    for b in batches:
        check_batch(b, data, loader, with_norm=False)
    assert len({tuple(b.n_id.tolist()) for b in batches}) == 6


@pytest.mark.parametrize("kind", list(LOADERS))
def test_batches_with_norm(data, kind, tmp_path):
    torch.manual_seed(1)
    loader = LOADERS[kind](data, num_steps=5, sample_coverage=10, save_dir=str(tmp_path), log=False)
    assert loader.norm is not None
    assert loader.norm.node_norm.shape == (data.num_nodes,)
    assert loader.norm.edge_norm.shape == (data.num_edges,)
    assert len(loader) == 5
    batches = collect(loader)
    assert len(batches) == 5
    for b in batches:
        check_batch(b, data, loader, with_norm=True)


def test_pyg_positional_signatures(data, tmp_path):
    """PyG's argument order: (data, batch_size, [walk_length,] num_steps, sample_coverage,
    save_dir, log, **kwargs); shuffle is accepted and ignored."""
    torch.manual_seed(2)
    a = GraphSAINTNodeSampler(data, 20, 3, 5, str(tmp_path), False, shuffle=True)
    b = GraphSAINTEdgeSampler(data, 20, 4, 5, str(tmp_path), False, num_workers=0)
    c = GraphSAINTRandomWalkSampler(data, 8, 2, 2, 5, str(tmp_path), False, shuffle=False)
    assert (len(a), len(b), len(c)) == (3, 4, 2)
    assert c.saint_sampler.walk_length == 2 and c.saint_sampler.batch_size == 8
    assert a.saint_sampler.batch_size == b.saint_sampler.batch_size == 20
    for loader in (a, b, c):
        assert loader.norm is not None
        for batch in loader:
            check_batch(batch, data, loader, with_norm=True)


def test_epochs_differ(data):
    torch.manual_seed(3)
    loader = LOADERS["rw"](data, num_steps=4)
    e1, e2 = collect(loader), collect(loader)
    assert len(e1) == len(e2) == 4
    assert differ(e1, e2)


def test_generator_argument(data):
    runs = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        gen = torch.Generator().manual_seed(7)
        runs.append(collect(LOADERS["node"](data, num_steps=3, sample_coverage=3, log=False,
                                            generator=gen)))
    assert_same_batches(runs[0], runs[1], "same generator, different global seed")


def test_transform(data):
    def transform(batch):
        batch.tagged = batch.num_nodes
        return batch

    torch.manual_seed(0)
    for b in LOADERS["edge"](data, num_steps=2, transform=transform):
        assert b.tagged == b.n_id.numel()


# ----------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("kind", list(LOADERS))
def test_same_seed_same_batches_workers_and_prefetch(data, kind):
    """The in-process run comes first, so forked workers start after the parent ran the
    parallel kernels. Two epochs each."""
    runs = {}
    for nw, prefetch in ((0, 0), (0, 2), (2, 0), (2, 2)):
        torch.manual_seed(42)
        loader = LOADERS[kind](data, num_steps=5, sample_coverage=4, log=False, num_workers=nw,
                               prefetch=prefetch, persistent_workers=False)
        runs[(nw, prefetch)] = [collect(loader), collect(loader)]
    ref = runs[(0, 0)]
    for b in ref[0]:
        check_batch(b, data, loader, with_norm=True)
    assert differ(ref[0], ref[1])
    for cfg, epochs in runs.items():
        for e in range(2):
            assert_same_batches(ref[e], epochs[e], f"{cfg} epoch {e}")


def test_different_seed_different_batches(data):
    for make in LOADERS.values():
        runs = []
        for seed in (1, 2):
            torch.manual_seed(seed)
            runs.append(collect(make(data, num_steps=3)))
        assert differ(runs[0], runs[1])


def test_filter_per_worker_same_batches(data):
    runs = []
    for fpw in (False, True):
        torch.manual_seed(5)
        loader = LOADERS["edge"](data, num_steps=4, sample_coverage=3, log=False, num_workers=2,
                                 filter_per_worker=fpw)
        runs.append(collect(loader))
    assert_same_batches(runs[0], runs[1], "filter_per_worker")


# ------------------------------------------------------------------------------- bad input


def test_bad_num_steps(data):
    for make in LOADERS.values():
        with pytest.raises(ValueError, match="num_steps"):
            make(data, num_steps=0)
        with pytest.raises(ValueError, match="num_steps"):
            make(data, num_steps=-3)
        with pytest.raises(TypeError, match="num_steps"):
            make(data, num_steps=2.0)


def test_bad_batch_size(data):
    for cls in (GraphSAINTNodeSampler, GraphSAINTEdgeSampler):
        for bs in (0, -1):
            with pytest.raises(ValueError, match="batch_size"):
                cls(data, bs)
    with pytest.raises(ValueError, match="batch_size"):
        GraphSAINTRandomWalkSampler(data, 0, 2)
    with pytest.raises(ValueError, match="batch_size"):
        GraphSAINTNodeSampler(data, data.num_nodes + 1)
    with pytest.raises(ValueError, match="batch_size"):
        GraphSAINTEdgeSampler(data, data.num_edges + 1)


def test_bad_walk_length(data):
    for length in (0, -1):
        with pytest.raises(ValueError, match="walk_length"):
            GraphSAINTRandomWalkSampler(data, 4, length)


def test_bad_sample_coverage(data):
    for make in LOADERS.values():
        with pytest.raises(ValueError, match="sample_coverage"):
            make(data, sample_coverage=-1)
        with pytest.raises(TypeError, match="sample_coverage"):
            make(data, sample_coverage=1.5)


def test_hetero_data_not_implemented():
    h = HeteroData()
    h["paper"].x = torch.randn(4, 2)
    h["paper", "cites", "paper"].edge_index = torch.tensor([[0, 1], [1, 2]])
    for cls in (GraphSAINTNodeSampler, GraphSAINTEdgeSampler):
        with pytest.raises(NotImplementedError, match="Data"):
            cls(h, 2)
    with pytest.raises(NotImplementedError, match="Data"):
        GraphSAINTRandomWalkSampler(h, 2, 2)


def test_data_without_edges():
    empty = Data(x=torch.randn(5, 2), edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=5)
    for make in (lambda d: GraphSAINTNodeSampler(d, 2), lambda d: GraphSAINTEdgeSampler(d, 1),
                 lambda d: GraphSAINTRandomWalkSampler(d, 2, 2)):
        with pytest.raises(ValueError, match="edges"):
            make(empty)
    with pytest.raises(ValueError, match="edge_index"):
        GraphSAINTNodeSampler(Data(x=torch.randn(5, 2)), 2)


def test_bad_loader_arguments(data):
    with pytest.raises(TypeError, match="collate_fn"):
        GraphSAINTNodeSampler(data, 4, collate_fn=lambda x: x)
    with pytest.raises(ValueError, match="prefetch"):
        GraphSAINTNodeSampler(data, 4, prefetch=-1)


# ----------------------------------------------------------------------------------- cache


def cache_files(path):
    return sorted(p.name for p in path.iterdir())


def forbid_estimate(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the estimator ran although the cache should have been used")

    monkeypatch.setattr(saint_norm, "estimate", fail)


def count_estimates(monkeypatch) -> list:
    calls = []
    real = saint_norm.estimate

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(saint_norm, "estimate", counting)
    return calls


def assert_same_norm(a, b):
    assert torch.equal(a.node_norm, b.node_norm)
    assert torch.equal(a.edge_norm, b.edge_norm)
    assert a.num_samples == b.num_samples


@pytest.mark.parametrize("kind", list(LOADERS))
def test_cache_written_once_and_reused(data, kind, tmp_path, monkeypatch):
    save_dir = tmp_path / "cache" / "nested"  # created on demand
    torch.manual_seed(0)
    first = LOADERS[kind](data, num_steps=3, sample_coverage=5, save_dir=str(save_dir), log=False)
    files = cache_files(save_dir)
    assert len(files) == 1 and files[0].endswith(".pt"), files  # no temporary left behind
    batches_first = collect(first)
    forbid_estimate(monkeypatch)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = LOADERS[kind](data, num_steps=3, sample_coverage=5, save_dir=str(save_dir), log=False)
    assert_same_norm(first.norm, second.norm)
    assert cache_files(save_dir) == files
    # Loading consumes the same randomness as estimating: the batches are the same.
    assert_same_batches(batches_first, collect(second), "cache hit")


def test_no_cache_without_coverage(data, tmp_path):
    GraphSAINTNodeSampler(data, 10, sample_coverage=0, save_dir=str(tmp_path), log=False)
    assert cache_files(tmp_path) == []


def other_graph(data: Data) -> Data:
    """Same sizes, one edge moved: a different topology."""
    d = data.clone()
    ei = d.edge_index.clone()
    ei[1, 0] = (ei[1, 0] + 1) % d.num_nodes
    d.edge_index = ei
    return d


@pytest.mark.parametrize("change", [
    "batch_size", "sample_coverage", "graph", "edge_order", "sampler_kind",
])
def test_cache_not_reused_for_other_parameters(data, tmp_path, monkeypatch, change):
    base = dict(num_steps=1, sample_coverage=4, save_dir=str(tmp_path), log=False)
    torch.manual_seed(0)
    GraphSAINTEdgeSampler(data, 20, **base)
    assert len(cache_files(tmp_path)) == 1
    calls = count_estimates(monkeypatch)
    d, bs, kw, cls = data, 20, dict(base), GraphSAINTEdgeSampler
    if change == "batch_size":
        bs = 21
    elif change == "sample_coverage":
        kw["sample_coverage"] = 5
    elif change == "graph":
        d = other_graph(data)
    elif change == "edge_order":  # same edges, another order: edge_norm's order differs
        perm = torch.randperm(data.num_edges, generator=torch.Generator().manual_seed(1))
        d = data.clone()
        d.edge_index = data.edge_index[:, perm]
        d.edge_attr, d.weight = data.edge_attr[perm], data.weight[perm]
    elif change == "sampler_kind":
        cls = GraphSAINTNodeSampler
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a different key is a different file, not a warning
        loader = cls(d, bs, **kw)
    assert calls == [1]
    assert len(cache_files(tmp_path)) == 2
    assert loader.norm.edge_norm.shape == (d.num_edges,)


def test_cache_not_reused_for_other_walk_length(data, tmp_path, monkeypatch):
    base = dict(sample_coverage=4, save_dir=str(tmp_path), log=False)
    GraphSAINTRandomWalkSampler(data, 10, 2, **base)
    calls = count_estimates(monkeypatch)
    GraphSAINTRandomWalkSampler(data, 10, 3, **base)
    assert calls == [1]
    GraphSAINTRandomWalkSampler(data, 10, 2, roots=torch.arange(50), **base)  # fewer roots
    assert calls == [1, 1]
    assert len(cache_files(tmp_path)) == 3


def test_cache_not_reused_for_other_roots_of_same_size(data, tmp_path, monkeypatch):
    """Roots define the walk distribution, so two root sets of the same size must not
    share normalizations: walks from nodes 0..74 cover other nodes than from 75..149."""
    base = dict(sample_coverage=20, save_dir=str(tmp_path), log=False)
    first = GraphSAINTRandomWalkSampler(data, 10, 2, roots=torch.arange(0, 75), **base)
    calls = count_estimates(monkeypatch)
    second = GraphSAINTRandomWalkSampler(data, 10, 2, roots=torch.arange(75, 150), **base)
    assert calls == [1], "normalizations of other roots were reused from the cache"
    assert not torch.equal(first.norm.node_norm, second.norm.node_norm)


def corrupt_truncate(path):
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def corrupt_garbage(path):
    path.write_bytes(b"\x00not a torch file\xff" * 50)


def corrupt_empty(path):
    path.write_bytes(b"")


def corrupt_checksum(path):
    saved = torch.load(path, weights_only=True)
    saved["tensors"]["node_norm"] = saved["tensors"]["node_norm"] * 2  # stale checksum
    torch.save(saved, path)


def corrupt_key(path):
    saved = torch.load(path, weights_only=True)
    saved["key"] = saved["key"].replace('"batch_size": 20', '"batch_size": 21')
    assert '"batch_size": 21' in saved["key"]
    torch.save(saved, path)


def corrupt_missing_field(path):
    saved = torch.load(path, weights_only=True)
    del saved["checksum"]
    torch.save(saved, path)


def corrupt_wrong_shape(path):
    """A consistent file (checksum recomputed) whose norms have the wrong length."""
    saved = torch.load(path, weights_only=True)
    saved["tensors"]["node_norm"] = saved["tensors"]["node_norm"][:-1].clone()
    saved["checksum"] = cache._checksum(saved["tensors"])
    torch.save(saved, path)


@pytest.mark.parametrize("corrupt", [
    corrupt_truncate, corrupt_garbage, corrupt_empty, corrupt_checksum, corrupt_key,
    corrupt_missing_field, corrupt_wrong_shape,
], ids=lambda f: f.__name__)
def test_corrupted_cache_warns_and_is_rewritten(data, tmp_path, monkeypatch, corrupt):
    kw = dict(num_steps=1, sample_coverage=4, save_dir=str(tmp_path), log=False)
    torch.manual_seed(0)
    good = GraphSAINTEdgeSampler(data, 20, **kw).norm
    (path,) = tmp_path.iterdir()
    corrupt(path)
    calls = count_estimates(monkeypatch)
    torch.manual_seed(0)  # the same pre-sampling seed: the recomputed norms equal the first
    with pytest.warns(UserWarning, match="GraphSAINT cache"):
        again = GraphSAINTEdgeSampler(data, 20, **kw)
    assert calls == [1]
    assert_same_norm(again.norm, good)
    assert cache_files(tmp_path) == [path.name]
    # The file was rewritten intact: the next construction loads it silently.
    forbid_estimate(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = GraphSAINTEdgeSampler(data, 20, **kw)
    assert_same_norm(third.norm, good)


# ----------------------------------------------------------------------------------- roots


def sink_roots_data():
    """Nodes 0..9 have no incoming edges (only outgoing ones), so a walk rooted there
    stays put and the batch's nodes are exactly the roots drawn."""
    n = 30
    gen = torch.Generator().manual_seed(0)
    src = torch.randint(0, n, (120,), generator=gen)
    dst = torch.randint(10, n, (120,), generator=gen)
    ei = torch.stack([src, dst])
    return Data(x=torch.randn(n, 4, generator=gen), edge_index=ei, num_nodes=n)


@pytest.mark.parametrize("form", ["mask", "index", "index32"])
def test_random_walk_roots(form):
    d = sink_roots_data()
    allowed = torch.tensor([1, 4, 6, 9])
    if form == "mask":
        roots = torch.zeros(d.num_nodes, dtype=torch.bool)
        roots[allowed] = True
    else:
        roots = allowed.to(torch.int32 if form == "index32" else torch.int64)
    torch.manual_seed(0)
    loader = GraphSAINTRandomWalkSampler(d, 3, 4, num_steps=30, roots=roots)
    assert loader.saint_sampler.roots.tolist() == allowed.tolist()
    seen = set()
    for b in loader:
        assert set(b.n_id.tolist()) <= set(allowed.tolist())
        assert torch.equal(b.x, d.x[b.n_id])
        seen.update(b.n_id.tolist())
    assert seen == set(allowed.tolist())
    # Without roots every node can be a root.
    torch.manual_seed(0)
    seen = set()
    for b in GraphSAINTRandomWalkSampler(d, 3, 4, num_steps=30):
        seen.update(b.n_id.tolist())
    assert seen & set(range(10)) - set(allowed.tolist())


def test_random_walk_bad_roots_name_the_argument(data):
    n = data.num_nodes
    with pytest.raises(ValueError, match="roots"):
        GraphSAINTRandomWalkSampler(data, 4, 2, roots=torch.tensor([0, n]))
    with pytest.raises(ValueError, match="roots"):
        GraphSAINTRandomWalkSampler(data, 4, 2, roots=torch.zeros(n, dtype=torch.bool))
    with pytest.raises(ValueError, match="roots"):
        GraphSAINTRandomWalkSampler(data, 4, 2, roots=torch.ones(n - 1, dtype=torch.bool))


def test_batch_edge_index_is_the_samplers_array(data):
    """The sampler writes row over col in one [2, m] array; the batch takes it as is."""
    from graphbatch.loader.assemble import assemble
    from graphbatch.sampling.subgraph import SampledSubgraph

    loader = GraphSAINTNodeSampler(data, 40, num_steps=1, log=False)
    out = loader.saint_sampler.sample(0, 0)
    assert out.edge_index is not None
    assert out.row.data_ptr() == out.edge_index.data_ptr()
    assert out.col.data_ptr() == out.edge_index[1].data_ptr()
    batch = assemble(data, out, loader.node_store, loader.edge_store)
    assert batch.edge_index.data_ptr() == out.edge_index.data_ptr()
    # Without one, row and col are stacked.
    alone = SampledSubgraph(node=out.node, row=out.row.clone(), col=out.col.clone(), edge=out.edge)
    batch = assemble(data, alone, loader.node_store, loader.edge_store)
    assert torch.equal(batch.edge_index, torch.stack([out.row, out.col]))


def _bench_args(*argv: str):
    import argparse

    from graphbatch.cli import saint_bench

    parser = argparse.ArgumentParser()
    saint_bench.add_arguments(parser)
    return saint_bench, parser.parse_args([
        "--num-nodes", "3000", "--num-pairs", "15000", "--num-features", "4",
        "--node-budget", "200", "--edge-budget", "100", "--roots", "50", "--batches", "3",
        "--sample-coverage", "1", *argv])


def test_bench_saint_reports_every_sampler(capsys):
    saint_bench, args = _bench_args("--rounds", "2")
    rows = saint_bench.run(args)
    assert [r["sampler"] for r in rows] == ["node", "edge", "random walk"]
    assert all(r["subgraphs_per_s"] > 0 for r in rows)
    assert "medians of 2 rounds of 3 subgraphs" in capsys.readouterr().out


@pytest.mark.parametrize("argv, match", [
    (["--batches", "0"], "--batches"),
    (["--rounds", "0"], "--rounds"),
])
def test_bench_saint_rejects_bad_settings(argv, match, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _bench_args(*argv)
    assert exit_info.value.code == 2
    assert match in capsys.readouterr().err
