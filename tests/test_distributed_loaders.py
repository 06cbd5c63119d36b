"""Data-parallel loading on one machine (``distributed=True``), over gloo on loopback.

The rank-share arithmetic is checked in this process; the rest runs on spawned ranks
(:mod:`dist_harness`): DDP on half batches equals one process on whole ones, ranks
given different inputs get the same clear error, a rank failing or killed mid-epoch
ends every rank with an error (never a hang), GraphSAINT's normalization and METIS
run on rank 0 only, and :func:`graphbatch.distributed.shared_graph` builds once.
"""
from __future__ import annotations

import os
import signal

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch_geometric.nn import SAGEConv

import graphbatch
from conftest import make_graph
from dist_harness import run_ranks, values
from graphbatch.ranks import RankShare, mix


# --- this process -------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 60), world_size=st.integers(1, 5), drop_last=st.booleans(),
       seed=st.integers(0, 2**31))
def test_shares_are_equal_disjoint_and_cover(n, world_size, drop_last, seed):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    shares = [RankShare(r, world_size, 0).take(order, drop_last) for r in range(world_size)]
    length = n // world_size if drop_last else -(-n // world_size)
    assert all(s.numel() == length for s in shares)
    dealt = torch.stack(shares, 1).reshape(-1) if length else torch.empty(0, dtype=torch.long)
    if drop_last:  # disjoint, the head of the order
        assert torch.equal(dealt, order[:length * world_size])
    else:  # every input, then the order again from its head to fill the last round
        assert torch.equal(dealt, order.repeat(world_size)[:length * world_size])


@given(n=st.integers(1, 200), world_size=st.integers(1, 4), batch_size=st.integers(1, 9),
       seed=st.integers(0, 2**31))
@settings(max_examples=100, deadline=None)
def test_batch_b_of_all_ranks_is_one_big_batch(n, world_size, batch_size, seed):
    """Rank r's batch b, over all r, is batch b of one process with batch_size * W."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    per_rank = [torch.split(RankShare(r, world_size, 0).take(order, True), batch_size)
                for r in range(world_size)]
    whole = torch.split(order[:(n // world_size) * world_size], batch_size * world_size)
    assert len({len(p) for p in per_rank}) == 1
    for b in range(len(per_rank[0])):
        union = torch.cat([p[b] for p in per_rank])
        assert sorted(union.tolist()) == sorted(whole[b].tolist())


def test_seeds_of_epochs_and_ranks_differ():
    share = RankShare(0, 2, base_seed=5)
    a, b = (torch.randperm(50, generator=share.generator(e)) for e in (0, 1))
    assert not torch.equal(a, b)
    assert torch.equal(a, torch.randperm(50, generator=RankShare(1, 2, 5).generator(0)))
    assert len({mix(7, r) for r in range(100)}) == 100
    assert RankShare(0, 2, 5).rank_seed(9) != RankShare(1, 2, 5).rank_seed(9)


def test_distributed_needs_an_initialized_process_group():
    data = make_graph(60, 300)
    with pytest.raises(RuntimeError, match="init_process_group"):
        graphbatch.NeighborLoader(data, [2], batch_size=4, distributed=True)


def test_distributed_refuses_a_sampler():
    data = make_graph(60, 300)
    with pytest.raises(ValueError, match="distributed=True .* sampler"):
        graphbatch.NeighborLoader(data, [2], batch_size=4, distributed=True, sampler=range(60))


# --- on spawned ranks ---------------------------------------------------------------

class SAGE(torch.nn.Module):
    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.conv1 = SAGEConv(channels, 16)
        self.conv2 = SAGEConv(16, classes)

    def forward(self, x, edge_index):
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


def _train(rank, world_size, batch_size, steps, shuffle):
    """DDP over ``steps`` batches with full fanouts: a seed's output then depends on its
    neighborhood only, not on which other seeds share its batch."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    data = make_graph(300, 1500, seed=3)
    torch.manual_seed(0)
    model = DDP(SAGE(8, 5))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    torch.manual_seed(1 + rank)  # the ranks' global generators differ: the shares must not
    loader = graphbatch.NeighborLoader(data, [-1, -1], input_nodes=torch.arange(0, 300, 2),
                                       batch_size=batch_size, shuffle=shuffle,
                                       distributed=True)
    seen = []
    for step, batch in enumerate(loader):
        if step == steps:
            break
        opt.zero_grad()
        out = model(batch.x, batch.edge_index)[:batch.batch_size]
        torch.nn.functional.cross_entropy(out, batch.y[:batch.batch_size]).backward()
        opt.step()
        seen.append(batch.n_id[:batch.batch_size].tolist())
    return {k: v.detach().clone() for k, v in model.module.state_dict().items()}, seen, len(loader)


@pytest.mark.parametrize("shuffle", [False, True])
def test_two_ranks_on_half_batches_equal_one_on_whole(shuffle):
    (one, one_seen, one_len), = values(run_ranks(_train, 1, (16, 5, shuffle)))
    two = values(run_ranks(_train, 2, (8, 5, shuffle)))
    assert two[0][2] == two[1][2] == -(-75 // 8)  # 150 seeds: 75 each, equal counts
    for (params, seen, _) in two:
        for key in one:
            torch.testing.assert_close(params[key], one[key], rtol=1e-4, atol=1e-5)
    for step in range(5):
        halves = [set(seen[step]) for _, seen, _ in two]
        assert not halves[0] & halves[1]
        assert halves[0] | halves[1] == set(one_seen[step])


def _uneven_inputs(rank, world_size):
    data = make_graph(100, 500)
    graphbatch.NeighborLoader(data, [3], input_nodes=torch.arange(40 + rank), batch_size=8,
                              distributed=True)


def test_ranks_given_different_inputs_all_get_a_clear_error():
    results = run_ranks(_uneven_inputs, 2, deadline_s=60)
    assert not any(r.hung for r in results)
    for r in results:
        assert r.error_type == "ValueError", r.error
        assert "num_inputs: rank 0: 40, rank 1: 41" in r.error


def _odd_epoch(rank, world_size):
    """101 seeds over 3 ranks: equal batch counts, so a DDP epoch ends on every rank."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    data = make_graph(150, 700)
    model = DDP(SAGE(8, 5))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    args = dict(input_nodes=torch.arange(101), batch_size=10, shuffle=True, distributed=True)
    loader = graphbatch.NeighborLoader(data, [4, 2], generator=torch.Generator().manual_seed(7),
                                       **args)
    sizes = []
    for epoch in range(2):
        for batch in loader:
            opt.zero_grad()
            out = model(batch.x, batch.edge_index)[:batch.batch_size]
            torch.nn.functional.cross_entropy(out, batch.y[:batch.batch_size]).backward()
            opt.step()
            sizes.append(batch.batch_size)
    loader.sampler.set_epoch(0)
    again = [b.n_id for b in loader]
    workers = graphbatch.NeighborLoader(data, [4, 2], num_workers=1,
                                        generator=torch.Generator().manual_seed(7), **args)
    return sizes, [b.n_id for b in workers], again


def test_an_uneven_number_of_seeds_gives_equal_batch_counts():
    out = values(run_ranks(_odd_epoch, 3, deadline_s=120))
    sizes = [s for s, _, _ in out]
    assert sizes[0] == [10, 10, 10, 4] * 2  # ceil(101 / 3) = 34 seeds per rank
    assert sizes[0] == sizes[1] == sizes[2]
    for _, a, b in out:  # set_epoch replays epoch 0, which a worker process samples alike
        assert len(a) == len(b) == 4 and all(torch.equal(x, y) for x, y in zip(a, b))


def _fail_mid_epoch(rank, world_size, how):
    from torch.nn.parallel import DistributedDataParallel as DDP

    data = make_graph(200, 1000)
    model = DDP(SAGE(8, 5))
    loader = graphbatch.NeighborLoader(data, [5, 5], batch_size=10, shuffle=True,
                                       distributed=True)
    for step, batch in enumerate(loader):
        if rank == 1 and step == 3:
            if how == "raise":
                raise KeyError("a bug in rank 1's training step")
            os.kill(os.getpid(), signal.SIGKILL)
        model(batch.x, batch.edge_index).sum().backward()
    return "finished"


@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_rank_failing_mid_epoch_ends_every_rank(how):
    results = run_ranks(_fail_mid_epoch, 3, (how,), deadline_s=90, collective_timeout_s=30)
    assert not any(r.hung for r in results), [(r.rank, r.error) for r in results]
    if how == "raise":
        assert results[1].error_type == "KeyError"
    else:
        assert results[1].exitcode == -signal.SIGKILL
    for r in (results[0], results[2]):
        assert r.error_type == "RuntimeError", r.error  # gloo: the peer closed its connection


def _once_per_job(rank, world_size, tmp):
    """GraphSAINT's normalization and METIS run on rank 0 only; every rank gets them."""
    from graphbatch.loader import cluster_loader, saint_loader

    calls = {"norm": 0, "metis": 0, "build": 0}

    def counted(fn, key):
        def wrapper(*args, **kwargs):
            calls[key] += 1
            return fn(*args, **kwargs)
        return wrapper

    saint_loader.normalization = counted(saint_loader.normalization, "norm")
    cluster_loader.metis_partition = counted(cluster_loader.metis_partition, "metis")
    data = make_graph(300, 1500)
    torch.manual_seed(rank)
    saint = graphbatch.GraphSAINTNodeSampler(data, batch_size=50, num_steps=5,
                                             sample_coverage=5, log=False, distributed=True)
    clusters = graphbatch.ClusterData(data, num_parts=6, log=False, distributed=True)
    loader = graphbatch.ClusterLoader(clusters, batch_size=2, shuffle=True, distributed=True)
    links = graphbatch.LinkNeighborLoader(data, [3], batch_size=64, shuffle=True,
                                          distributed=True)
    link_ids = torch.cat([b.input_id for b in links])
    shared = graphbatch.distributed.shared_graph(counted(lambda: data, "build"), tmp)
    same = []
    for source, args in ((shared.data, shared.loader_args()), (data, {})):
        torch.manual_seed(0)
        same.append(list(graphbatch.NeighborLoader(source, [3, 2], batch_size=50, **args)))
    fields = ("x", "y", "edge_attr", "n_id", "e_id", "edge_index")
    equal = [all(torch.equal(a[k], b[k]) for k in fields) for a, b in zip(*same)]
    return (calls, saint.norm.node_norm, saint.norm.edge_norm, clusters.partition.part,
            len(saint), len(loader), shared.graph._directory, equal, link_ids)


def test_work_one_rank_suffices_for_is_done_once(tmp_path):
    out = values(run_ranks(_once_per_job, 2, (str(tmp_path / "graph"),), deadline_s=150))
    assert out[0][0] == {"norm": 1, "metis": 1, "build": 1}
    assert out[1][0] == {"norm": 0, "metis": 0, "build": 0}
    for i in (1, 2, 3):
        assert torch.equal(out[0][i], out[1][i])
    assert out[0][4] == out[1][4] == 3  # 5 steps: 3 each, the first repeated
    assert out[0][5] == out[1][5] == 2  # 6 clusters, 2 a batch: 3 each, one batch of 2
    assert out[0][6] == out[1][6] == str(tmp_path / "graph" / "csc")  # mapped from the files
    assert out[0][7] == out[1][7] == [True] * 6
    # The 1555 seed edges, dealt out: 778 each, rank 1's last one repeating rank 0's first.
    links = [o[8].tolist() for o in out]
    assert len(links[0]) == len(links[1]) == 778 and links[1][-1] in links[0]
    assert set(links[0]) | set(links[1]) == set(range(1555))


def _build_fails_on_rank_zero(rank, world_size, tmp):
    def build():
        raise OSError("dataset missing")
    graphbatch.distributed.shared_graph(build, tmp)


def test_shared_graph_build_error_reaches_every_rank(tmp_path):
    results = run_ranks(_build_fails_on_rank_zero, 2, (str(tmp_path / "g"),), deadline_s=60)
    assert results[0].error_type == "OSError"
    assert results[1].error_type == "RuntimeError" and "dataset missing" in results[1].error


def _mapping_fails_on_rank_one(rank, world_size, tmp):
    """As on a second machine where LOCAL_RANK says 1: nothing written there to map."""
    os.environ["LOCAL_RANK"] = str(rank)
    graphbatch.distributed.shared_graph(lambda: make_graph(50, 200), f"{tmp}/{rank}")


def test_shared_graph_mapping_error_reaches_every_rank(tmp_path):
    results = run_ranks(_mapping_fails_on_rank_one, 2, (str(tmp_path),), deadline_s=60)
    assert results[1].error_type == "ValueError" and "holds no saved graph" in results[1].error
    assert results[0].error_type == "RuntimeError"
    assert "mapping the graph's files failed on rank 1" in results[0].error


def _unpicklable_on_rank_zero(rank, world_size):
    from graphbatch.ranks import on_rank_zero
    on_rank_zero(lambda: (lambda: None))  # a lambda does not pickle


def test_a_result_rank_zero_cannot_send_fails_every_rank():
    results = run_ranks(_unpicklable_on_rank_zero, 2, deadline_s=60)
    assert not any(r.hung for r in results)
    assert results[0].error_type in ("PicklingError", "AttributeError"), results[0].error
    assert results[1].error_type == "RuntimeError" and "rank 0 failed" in results[1].error


def _reuse(rank, world_size, tmp):
    data = make_graph(50, 200)
    first = graphbatch.distributed.shared_graph(lambda: data, tmp)

    def build():
        raise AssertionError("reuse=True must not build")

    again = graphbatch.distributed.shared_graph(build, tmp, reuse=True)
    return torch.equal(first.data.x, again.data.x) and torch.equal(again.data.x, data.x)


def test_shared_graph_reuses_a_saved_graph_without_building(tmp_path):
    assert values(run_ranks(_reuse, 1, (str(tmp_path / "g"),), deadline_s=60)) == [True]
