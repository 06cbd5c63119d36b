"""Seeded synthetic graphs with skewed degrees, for demos, tests and benchmarks."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

from graphbatch._validate import as_int, check_positive_int
from graphbatch.datasets._synthetic_kernels import (
    draw_pairs, segment_alias, undirected_coalesced,
)
from graphbatch.datasets.splits import random_split


def planted_classes(
    num_nodes: int = 100_000,
    num_classes: int = 10,
    avg_degree: float = 12.0,
    num_features: int = 64,
    homophily: float = 0.5,
    feature_signal: float = 0.15,
    seed: int = 0,
) -> Data:
    """An undirected graph whose classes are planted in both edges and features.

    Node activity follows a Pareto law (tail index 2), so degrees are skewed; an edge
    joins two nodes of the same class with probability ``homophily``; features are the
    class mean scaled by ``feature_signal`` plus unit Gaussian noise, so they carry the
    class but a model does better by also reading the neighbors.

    Returns:
        ``Data`` with ``x`` [N, F] float32, ``y`` [N] int64, ``edge_index`` [2, E] int64
        (both directions, coalesced, no self-loops) and 60/20/20 ``train_mask``,
        ``val_mask``, ``test_mask``.
    """
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(num_classes, (num_nodes,), generator=gen)
    activity = torch.rand(num_nodes, generator=gen, dtype=torch.float64).pow(-0.5)
    num_pairs = int(num_nodes * avg_degree / 2)
    src = torch.multinomial(activity, num_pairs, replacement=True, generator=gen)

    # Destination by inverse CDF over activity, restricted to the source's class for
    # homophilous pairs: nodes sorted by class make each class a contiguous range.
    order = torch.argsort(y, stable=True)
    cum = torch.cumsum(activity[order], 0)
    bounds = torch.cat([cum.new_zeros(1), cum[torch.bincount(y, minlength=num_classes).cumsum(0) - 1]])
    same = torch.rand(num_pairs, generator=gen) < homophily
    lo = torch.where(same, bounds[y[src]], torch.zeros(()).double())
    hi = torch.where(same, bounds[y[src] + 1], cum[-1])
    target = lo + torch.rand(num_pairs, generator=gen, dtype=torch.float64) * (hi - lo)
    dst = order[torch.searchsorted(cum, target).clamp_(max=num_nodes - 1)]

    edge_index, _ = remove_self_loops(torch.stack([src, dst]))
    edge_index = to_undirected(edge_index, num_nodes=num_nodes)
    means = torch.randn(num_classes, num_features, generator=gen)
    x = feature_signal * means[y] + torch.randn(num_nodes, num_features, generator=gen)
    train, val, test = random_split(num_nodes, generator=gen)
    return Data(x=x, y=y, edge_index=edge_index, train_mask=train, val_mask=val, test_mask=test)


#: Pairs drawn per step by :func:`planted_graph`: bounds its temporaries (24 bytes a
#: pair) and is part of what the graph is (the draws are made step by step).
PAIR_CHUNK = 1 << 22


def _check_planted(num_nodes: int, num_classes: int, avg_degree: float, num_features: int,
                   homophily: float, feature_signal: float, seed: int) -> None:
    for name, value in (("num_nodes", num_nodes), ("num_classes", num_classes),
                        ("num_features", num_features)):
        check_positive_int(value, name)
    as_int(seed, "seed")
    for name, value in (("avg_degree", avg_degree), ("homophily", homophily),
                        ("feature_signal", feature_signal)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, got {value!r}")
    if not avg_degree > 0:
        raise ValueError(f"avg_degree must be positive, got {avg_degree}")
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"homophily must be in [0, 1], got {homophily}")


def planted_graph(
    num_nodes: int,
    avg_degree: float,
    num_classes: int,
    num_features: int,
    homophily: float = 0.5,
    feature_signal: float = 0.15,
    seed: int = 0,
) -> Data:
    """:func:`planted_classes`' model at any size: built in steps with numpy and numba, it
    needs 16 bytes a drawn pair (its endpoints, then the pairs grouped by node, int32)
    and 40 a node beyond the result, freed before the features are drawn: 3.5 GB at
    most for ogbn-products' size, whose result is 3.0 GB (``planted_classes`` sorts
    int64 keys of every edge, several times the result).

    ``num_nodes * avg_degree / 2`` pairs are drawn: a source by node activity (Pareto,
    tail index 2, so degrees are skewed), a destination by activity too, among the
    source's class with probability ``homophily`` and among all nodes otherwise. Pairs
    are made undirected, self-loops dropped and duplicates merged, so the graph has a
    little under ``num_nodes * avg_degree`` directed edges (duplicates gather at the
    hubs). Features are the class mean scaled by ``feature_signal`` plus unit Gaussian
    noise. The same arguments give the same graph; it is not the graph
    ``planted_classes`` draws with them (another generator, drawing in steps).

    Returns:
        ``Data`` with ``x`` [N, num_features] float32, ``y`` [N] int64 and
        ``edge_index`` [2, E] int64 (both directions, sorted by row then column, no
        self-loops or duplicates); no masks (the catalog draws them per split).
    """
    _check_planted(num_nodes, num_classes, avg_degree, num_features, homophily,
                   feature_signal, seed)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, size=num_nodes, dtype=np.int64)
    activity = (1.0 - rng.random(num_nodes)) ** -0.5  # 1 - U lies in (0, 1]: no 0 ** -0.5
    means = rng.standard_normal((num_classes, num_features), dtype=np.float32)

    # Nodes sorted by class make each class one contiguous segment of the tables.
    order = np.argsort(y, kind="stable")
    weight = activity[order]
    del activity
    ends = np.cumsum(np.bincount(y, minlength=num_classes))
    starts = ends - np.bincount(y, minlength=num_classes)
    prob_all, alias_all = segment_alias(weight, np.zeros(1, np.int64), np.full(1, num_nodes))
    prob_class, alias_class = segment_alias(weight, starts, ends)
    del weight

    num_pairs = int(round(num_nodes * avg_degree / 2))
    index_dtype = np.int32 if num_nodes < 2**31 else np.int64
    src = np.empty(num_pairs, dtype=index_dtype)
    dst = np.empty(num_pairs, dtype=index_dtype)
    for lo in range(0, num_pairs, PAIR_CHUNK):
        hi = min(lo + PAIR_CHUNK, num_pairs)
        u = rng.random((3, hi - lo))
        draw_pairs(u[0], u[1], u[2], float(homophily), order, y, starts, ends, prob_all,
                   alias_all, prob_class, alias_class, src[lo:hi], dst[lo:hi])
    del order, prob_all, alias_all, prob_class, alias_class
    edge_index = undirected_coalesced(src, dst, num_nodes)
    del src, dst

    x = np.empty((num_nodes, num_features), dtype=np.float32)
    rows = max(1, PAIR_CHUNK // num_features)
    for lo in range(0, num_nodes, rows):
        hi = min(lo + rows, num_nodes)
        rng.standard_normal((hi - lo, num_features), dtype=np.float32, out=x[lo:hi])
        x[lo:hi] += np.float32(feature_signal) * means[y[lo:hi]]
    return Data(x=torch.from_numpy(x), y=torch.from_numpy(y),
                edge_index=torch.from_numpy(edge_index), num_nodes=num_nodes)


def skewed_pairs(
    num_nodes: int = 1_000_000,
    num_pairs: int = 10_000_000,
    num_features: int = 100,
    seed: int = 0,
) -> Data:
    """The sampler benchmark's graph: ``src = randint(N)``, ``dst = (rand**3 * N)``, made
    undirected and coalesced (about 2.1 x ``num_pairs`` directed edges at the defaults),
    with ``x`` [N, num_features] float32 standard normal.
    """
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(num_nodes, (num_pairs,), generator=gen)
    dst = (torch.rand(num_pairs, generator=gen) ** 3 * num_nodes).long()
    edge_index = coalesce(torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1),
                          num_nodes=num_nodes)
    x = torch.randn(num_nodes, num_features, generator=gen)
    return Data(x=x, edge_index=edge_index, num_nodes=num_nodes)


def degree_summary(edge_index: Tensor, num_nodes: int) -> str:
    deg = torch.bincount(edge_index[1], minlength=num_nodes).double()
    # A fixed subsample (torch.quantile takes at most 2^24 values): the same graph
    # always prints the same summary, and the global generator is left alone.
    sample = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(0))[:100_000]
    q = torch.quantile(deg[sample], torch.tensor([0.5, 0.99]).double())
    return (f"{num_nodes:,} nodes, {edge_index.size(1):,} edges, in-degree median "
            f"{q[0]:.0f}, p99 {q[1]:.0f}, max {int(deg.max()):,}")
