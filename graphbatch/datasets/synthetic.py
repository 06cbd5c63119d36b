"""Seeded synthetic graphs with skewed degrees, for demos, tests and benchmarks."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

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
