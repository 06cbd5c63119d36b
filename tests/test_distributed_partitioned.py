"""Partitioned graphs across ranks (issue 17, many machines): the partition and its
shards, sampling across partitions against the single-machine sampler, remote feature
rows against ``x[n_id]``, locality of METIS against random parts, and no hangs when a
rank fails. Each multi-process test spawns its ranks once (tests/dist_harness.py) and
checks many cases in them."""
from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch_geometric.data import Data

from conftest import incoming_reference, make_graph
from dist_harness import run_ranks, values
from graphbatch.distributed.exchange import Exchange, ExchangeError
from graphbatch.distributed.partition import (
    load_shard, make_shard, partition_graph, save_shards,
)
from graphbatch.distributed.partitioned_loader import DistNeighborLoader, split_inputs
from graphbatch.distributed.partitioned_sampler import PartitionedNeighborSampler
from graphbatch.distributed.remote_features import PartitionedFeatures, halo_frequency
from graphbatch.graph import CSCGraph
from graphbatch.loader.batches import SeededBatches
from graphbatch.ranks import RankShare
from graphbatch.sampling.neighbor import NeighborSampler

#: (fanouts, replace) of the equality checks.
PLANS = [([3, 2], False), ([3, 2], True), ([-1], False), ([2, -1, 1], False), ([0, 4], True)]
DEADLINE_S = 90.0


def small_graph() -> Data:
    return make_graph(num_nodes=300, num_edges=2000, seed=3)


def block_graph(num_blocks: int = 4, block: int = 150, p_in: float = 0.08,
                p_out: float = 0.002, seed: int = 0) -> Data:
    """A stochastic block graph (both directions of each pair), block labels as ``y``:
    a METIS partition should keep most edges inside parts; a random one cannot."""
    rng = np.random.default_rng(seed)
    n = num_blocks * block
    label = np.repeat(np.arange(num_blocks), block)
    p = np.where(label[:, None] == label[None, :], p_in, p_out)
    src, dst = np.nonzero(np.triu(rng.random((n, n)) < p, k=1))
    ei = torch.from_numpy(np.stack([np.r_[src, dst], np.r_[dst, src]]).astype(np.int64))
    gen = torch.Generator().manual_seed(seed)
    return Data(x=torch.randn(n, 6, generator=gen), y=torch.from_numpy(label),
                edge_index=ei, num_nodes=n)


# ---- one process -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["metis", "random"])
def test_shards_partition_the_nodes_and_slice_the_csc(method):
    data = small_graph()
    book = partition_graph(data, 3, method=method, seed=1)
    ref = incoming_reference(data.edge_index, data.num_nodes)
    owned = []
    for rank in range(3):
        shard = make_shard(data, book, rank)
        nodes = shard.nodes.tolist()
        assert nodes == sorted(nodes) and all(book.part[v] == rank for v in nodes)
        owned += nodes
        indptr, indices, perm = shard.indptr.tolist(), shard.indices.tolist(), shard.perm.tolist()
        for j, v in enumerate(nodes):  # the global in-edges, in the original edge order
            assert list(zip(indices[indptr[j]:indptr[j + 1]],
                            perm[indptr[j]:indptr[j + 1]])) == ref[v]
        assert torch.equal(shard.tables["x"], data.x[shard.nodes])
        assert torch.equal(shard.tables["y"], data.y[shard.nodes])
    assert sorted(owned) == list(range(data.num_nodes))  # every node owned exactly once


def test_saved_shards_load_as_made(tmp_path):
    data = small_graph()
    book = partition_graph(data, 2, method="random", seed=4)
    save_shards(data, book, tmp_path)
    for rank in range(2):
        made, loaded = make_shard(data, book, rank), load_shard(tmp_path, rank)
        assert loaded.rank == rank and loaded.book.method == "random"
        assert torch.equal(loaded.book.part, book.part)
        for name in ("nodes", "indptr", "indices", "perm"):
            assert torch.equal(getattr(loaded, name), getattr(made, name)), name
        assert loaded.tables.keys() == made.tables.keys()
        assert all(torch.equal(loaded.tables[k], made.tables[k]) for k in made.tables)
        assert loaded.num_edges == data.num_edges


def test_partition_bad_inputs(tmp_path):
    data = small_graph()
    with pytest.raises(ValueError, match="method must be one of"):
        partition_graph(data, 2, method="kmeans")
    for bad in (0, data.num_nodes + 1):
        with pytest.raises(ValueError, match=f"num_parts must be between 1 .* got {bad}"):
            partition_graph(data, bad)
    book = partition_graph(data, 2, method="random")
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\).* got 2"):
        make_shard(data, book, 2)
    with pytest.raises(FileNotFoundError, match="partition.json is missing"):
        load_shard(tmp_path, 0)


@pytest.mark.parametrize("n,world", [(10, 3), (1000, 4), (7, 7), (5, 2), (3, 5)])
def test_split_inputs_is_even_disjoint_and_prefers_own(n, world):
    rng = np.random.default_rng(n)
    part = torch.from_numpy(rng.integers(0, world, 2000))
    inputs = torch.from_numpy(rng.choice(2000, n, replace=False))
    shares = [split_inputs(inputs, part, r, world) for r in range(world)]
    size = -(-n // world)
    assert all(s.numel() == size for s in shares)  # equal batch counts
    padded = [r for r in range(world) if r >= n % world and n % world]
    for r in padded:  # the short ranks repeat their first input
        assert shares[r][-1] == shares[r][0]
    dealt = [s[:-1] if r in padded else s for r, s in enumerate(shares)]
    everything = torch.cat(dealt).sort().values
    assert torch.equal(everything, torch.arange(n))  # disjoint, covering
    for r, s in enumerate(dealt):
        own = int((part[inputs] == r).sum())
        assert int((part[inputs[s]] == r).sum()) == min(own, s.numel())


def test_halo_frequency_counts_remote_in_edges():
    data = small_graph()
    book = partition_graph(data, 2, method="random", seed=2)
    shard = make_shard(data, book, 0)
    src, dst = data.edge_index.tolist()
    count: dict[int, int] = {}
    for s, d in zip(src, dst):
        if book.part[d] == 0 and book.part[s] != 0:
            count[s] = count.get(s, 0) + 1
    nodes, edges = halo_frequency(shard)
    assert dict(zip(nodes.tolist(), edges.tolist())) == count
    assert (np.diff(edges) <= 0).all()  # most edges first


# ---- several processes -----------------------------------------------------------


def _same(out, ref) -> bool:
    same_sets = (set(out.node.tolist()) == set(ref.node.tolist())
                 and set(zip(out.node[out.row].tolist(), out.node[out.col].tolist(),
                             out.edge.tolist()))
                 == set(zip(ref.node[ref.row].tolist(), ref.node[ref.col].tolist(),
                            ref.edge.tolist())))
    exact = (torch.equal(out.node, ref.node) and torch.equal(out.row, ref.row)
             and torch.equal(out.col, ref.col) and torch.equal(out.edge, ref.edge)
             and out.num_sampled_nodes == ref.num_sampled_nodes
             and out.num_sampled_edges == ref.num_sampled_edges)
    return same_sets and exact


def _sampling_and_features(rank: int, world: int) -> dict:
    """Every (method, plan): batches equal NeighborSampler's on the whole graph, for
    seeds of every owner; gathers equal ``x[ids]`` with and without a cache."""
    data = small_graph()
    graph = CSCGraph.from_data(data)
    exchange = Exchange()
    rng = np.random.default_rng(100 + rank)
    checked = 0
    stats = []
    for method in ("metis", "random"):
        shard = make_shard(data, partition_graph(data, world, method=method, graph=graph),
                           rank, graph)
        for fanouts, replace in PLANS:
            dist_sampler = PartitionedNeighborSampler(shard, fanouts, exchange, replace)
            single = NeighborSampler(graph, fanouts, replace=replace)
            for batch in range(3):
                # Different sizes per rank: the exchanges must not assume equal ones.
                seeds = torch.from_numpy(rng.choice(300, 5 + 3 * rank + batch, replace=False))
                out = dist_sampler.sample(seeds, seed=7, batch=batch)
                assert _same(out, single.sample(seeds, seed=7, batch=batch)), \
                    (method, fanouts, replace, batch)
                checked += 1
        for cache_rows in (0, 40):
            store = PartitionedFeatures(shard, exchange, cache_rows)
            ids = torch.from_numpy(rng.choice(300, 60 + 10 * rank, replace=False))
            rows = store.gather_all(ids)
            assert torch.equal(rows["x"], data.x[ids]) and torch.equal(rows["y"], data.y[ids])
            assert torch.equal(store.gather("x", ids[:5]), data.x[ids[:5]])
            s = store.last_stats  # of the gather of 5
            assert s.local + s.cached + s.fetched == s.nodes == 5
            stats.append((method, cache_rows, store.cache_nodes.shape[0]))
        only_x = PartitionedFeatures(shard, exchange, 10, names=["x"])
        ids = torch.arange(rank, 300, 7)
        rows = only_x.gather_all(ids)
        assert list(rows) == ["x"] and torch.equal(rows["x"], data.x[ids])
        assert only_x.last_stats.bytes == only_x.last_stats.fetched * 8 * 4  # x: 8 float32
        with pytest.raises(KeyError, match="names: no table 'z'"):
            PartitionedFeatures(shard, exchange, names=["z"])
    return {"checked": checked, "stats": stats}


def test_sampling_and_features_equal_single_machine_2_ranks():
    results = values(run_ranks(_sampling_and_features, 2, deadline_s=DEADLINE_S))
    assert all(r["checked"] == 2 * len(PLANS) * 3 for r in results)
    # The cache holds what was asked for, where the halo is large enough.
    assert all(c == min(rows, c) for r in results for _, rows, c in r["stats"])
    assert any(c == 40 for r in results for _, _, c in r["stats"])


def _loader_epoch(rank: int, world: int, method: str, cache_rows: int,
                 prefetch: int = 2) -> dict:
    """One epoch of a DistNeighborLoader, each batch compared with the single-machine
    sampler's for the same plan (so the same seed gives the same batches) and with the
    whole graph's rows."""
    data = block_graph()
    graph = CSCGraph.from_data(data)
    shard = make_shard(data, partition_graph(data, world, method=method, graph=graph),
                       rank, graph)
    train = torch.zeros(data.num_nodes, dtype=torch.bool)
    train[::3] = True
    loader = DistNeighborLoader(shard, [5, 3], input_nodes=train, batch_size=16,
                                shuffle=True, drop_last=True, cache_rows=cache_rows,
                                generator=torch.Generator().manual_seed(11),
                                prefetch=prefetch)
    # The epochs' seed, drawn from rank 0's generator; each rank's epoch seed mixes in
    # its rank.
    base = int(torch.randint(0, 2**62, (), generator=torch.Generator().manual_seed(11)))
    plans = SeededBatches(loader.input_nodes.numel(), batch_size=16, shuffle=True,
                          drop_last=True, inputs=loader.input_nodes,
                          share=RankShare(rank, world, base, deal=False))
    plans.new_epoch()
    single = NeighborSampler(graph, [5, 3])
    seeds = []
    for batch, plan in zip(loader, plans):
        ref = single.sample(plan)
        assert torch.equal(batch.n_id, ref.node) and torch.equal(batch.e_id, ref.edge)
        assert torch.equal(batch.edge_index, torch.stack([ref.row, ref.col]))
        assert torch.equal(batch.x, data.x[batch.n_id]) and torch.equal(batch.y, data.y[batch.n_id])
        assert torch.equal(data.edge_index[:, batch.e_id], batch.n_id[batch.edge_index])
        assert batch.num_sampled_nodes == ref.num_sampled_nodes
        assert batch.batch_size == 16 and torch.equal(batch.input_id, batch.n_id[:16])
        seeds.append(batch.input_id)
    assert len(loader.stats) == len(loader) == len(seeds)
    for s in loader.stats:
        assert s.fetch.local + s.fetch.cached + s.fetch.fetched == s.fetch.nodes
        assert s.fetch.bytes == s.fetch.fetched * (6 * 4 + 8)  # x float32 [6], y int64
    return {"seeds": torch.cat(seeds).tolist(), "locality": loader.locality(),
            "own": float((shard.book.part[torch.cat(seeds)] == rank).float().mean())}


def _loaders(rank: int, world: int) -> dict:
    """Loader epochs (METIS, random; with a cache) and the loaders' argument checks."""
    out = {m: _loader_epoch(rank, world, m, 0) for m in ("metis", "random")}
    out["cached"] = _loader_epoch(rank, world, "metis", 100, prefetch=0)  # no thread
    data = small_graph()
    book = partition_graph(data, world, method="random")
    shard = make_shard(data, book, rank)
    with pytest.raises(ValueError, match="num_workers=2: worker processes"):
        DistNeighborLoader(shard, [2], num_workers=2)
    with pytest.raises(ValueError, match="prefetch_threads must be 1, got 2"):
        DistNeighborLoader(shard, [2], prefetch_threads=2)
    with pytest.raises(NotImplementedError, match="subgraph_type='induced'"):
        DistNeighborLoader(shard, [2], subgraph_type="induced")
    with pytest.raises(ValueError, match=f"rank {rank} holds the shard of part {1 - rank}"):
        DistNeighborLoader(make_shard(data, book, 1 - rank), [2])
    # 201 inputs: shares of 101 each (rank 1 repeats one), 2 batches of 100 each.
    assert len(DistNeighborLoader(shard, [2], input_nodes=torch.arange(201),
                                  batch_size=100)) == 2
    with pytest.raises(ValueError, match="batches: rank 0: 2, rank 1: 1; batch_size: "
                                         "rank 0: 100, rank 1: 101"):
        DistNeighborLoader(shard, [2], input_nodes=torch.arange(201), batch_size=100 + rank)
    with pytest.raises(ValueError, match=r"num_neighbors: rank 0: \[2\], rank 1: \[3\]"):
        DistNeighborLoader(shard, [2 + rank])
    with pytest.raises(TypeError, match="timeout must be a datetime.timedelta, got int"):
        DistNeighborLoader(shard, [2], timeout=30)
    with pytest.raises(ValueError, match="give group or timeout"):
        DistNeighborLoader(shard, [2], group=dist.group.WORLD, timeout=timedelta(seconds=5))
    # Rows of every table travel packed together: the ranks must agree on their layout.
    with pytest.raises(ValueError, match="node_tables: rank 0: .*'x'.*'y'.*rank 1: .*'y'.*'x'"):
        DistNeighborLoader(shard, [2], node_tables=["x", "y"][::1 - 2 * rank])
    return out


def test_loader_batches_equal_single_machine_and_metis_is_more_local():
    results = values(run_ranks(_loaders, 2, deadline_s=DEADLINE_S))
    for key in ("metis", "random", "cached"):
        # 200 training nodes, 100 a rank, 6 batches of 16 each (drop_last): disjoint.
        seeds = [s for r in results for s in r[key]["seeds"]]
        assert len(seeds) == len(set(seeds)) == 2 * 96 and all(s % 3 == 0 for s in seeds)
    metis = [r["metis"]["locality"] for r in results]
    random = [r["random"]["locality"] for r in results]
    cached = [r["cached"]["locality"] for r in results]
    for m, rnd, c in zip(metis, random, cached):
        # Block graph: METIS keeps nearly all of a batch in its part, random half of it.
        assert m["local_share"] > 0.8 and rnd["local_share"] < 0.65, (m, rnd)
        assert m["fetched_bytes_per_batch"] < 0.5 * rnd["fetched_bytes_per_batch"]
        assert m["sample_remote_share"] < rnd["sample_remote_share"]
        assert c["cached_share"] > 0 and c["fetched_share"] < m["fetched_share"]
        assert c["local_share"] == m["local_share"]  # the same batches
    # The seeds of a rank are mostly its own with METIS (own first).
    assert all(r["metis"]["own"] > 0.9 for r in results)


def _stop_early_and_replay(rank: int, world: int) -> dict:
    """Every rank leaves epochs early, alike (``break``; ``next(iter(...))``) with the
    prefetch thread ahead; whole epochs still follow, and ``set_epoch`` replays one."""
    data = small_graph()
    shard = make_shard(data, partition_graph(data, world, method="random"), rank)
    loader = DistNeighborLoader(shard, [4, 4], batch_size=10, shuffle=True, prefetch=2)
    for i, _ in enumerate(loader):
        # Rank 0 consumes slowly, so its prefetch thread is as far ahead as it goes,
        # while rank 1's is in the middle of the next batch's exchanges when it breaks.
        time.sleep(0.5 if rank == 0 else 0.0)
        if i == 1:
            break
    next(iter(loader))
    loader.sampler.set_epoch(7)
    first = [b.n_id for b in loader]
    loader.sampler.set_epoch(7)
    again = [b.n_id for b in loader]
    return {"batches": len(first), "replayed": all(map(torch.equal, first, again)),
            "epoch_seed": loader.batches._epoch[0].epoch_seed}


def test_ranks_may_stop_an_epoch_early_alike():
    out = values(run_ranks(_stop_early_and_replay, 2, deadline_s=DEADLINE_S,
                           collective_timeout_s=15.0))
    assert [o["batches"] for o in out] == [15, 15] and all(o["replayed"] for o in out)
    assert out[0]["epoch_seed"] != out[1]["epoch_seed"]  # ranks sample independently


def _out_of_step(rank: int, world: int) -> None:
    data = small_graph()
    shard = make_shard(data, partition_graph(data, world, method="random"), rank)
    sampler = PartitionedNeighborSampler(shard, [3], Exchange())
    sampler.sample(torch.arange(5), seed=1, batch=rank)


def test_ranks_out_of_step_are_caught():
    for r in run_ranks(_out_of_step, 2, deadline_s=DEADLINE_S):
        assert r.error_type == "ExchangeError" and "out of lockstep" in r.error, r


def _three_ranks(rank: int, world: int) -> int:
    data = small_graph()
    graph = CSCGraph.from_data(data)
    exchange = Exchange()
    checked = 0
    for method in ("metis", "random"):
        shard = make_shard(data, partition_graph(data, world, method=method, graph=graph),
                           rank, graph)
        for fanouts, replace in PLANS[:4]:
            sampler = PartitionedNeighborSampler(shard, fanouts, exchange, replace)
            single = NeighborSampler(graph, fanouts, replace=replace)
            for batch in range(2):
                seeds = torch.arange(rank * 40 + batch, 300, 37)
                assert _same(sampler.sample(seeds, 5, batch), single.sample(seeds, 5, batch))
                checked += 1
    return checked


def test_sampling_equals_single_machine_3_ranks():
    assert values(run_ranks(_three_ranks, 3, deadline_s=DEADLINE_S)) == [16] * 3


def _fail_mid_epoch(rank: int, world: int, how: str) -> int:
    """An epoch (15 batches a rank, prefetch thread on) in which rank 1, after its
    third batch, raises or is killed (SIGKILL)."""
    data = small_graph()
    shard = make_shard(data, partition_graph(data, world, method="random"), rank)
    loader = DistNeighborLoader(shard, [4, 4], batch_size=10, prefetch=2)
    done = 0
    for _ in loader:
        done += 1
        if rank == 1 and done == 3:
            if how == "raise":
                raise RuntimeError("rank 1 fails on purpose")
            os.kill(os.getpid(), signal.SIGKILL)
    return done


@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_failing_rank_ends_every_rank_with_an_error(how):
    start = time.monotonic()
    results = run_ranks(_fail_mid_epoch, 2, args=(how,), deadline_s=60.0,
                        collective_timeout_s=15.0)
    elapsed = time.monotonic() - start
    assert not any(r.hung for r in results), results
    assert results[0].error_type == "ExchangeError", results[0]
    assert "rank 0 of 2" in results[0].error and "a peer rank died" in results[0].error
    if how == "raise":
        assert results[1].error_type == "RuntimeError" and "on purpose" in results[1].error
    else:
        assert results[1].error_type == "Died" and results[1].exitcode == -signal.SIGKILL
    assert elapsed < 45.0, elapsed
