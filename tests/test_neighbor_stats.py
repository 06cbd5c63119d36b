"""Statistics of the samplers: fixed seeds, goodness-of-fit tests with a small p threshold.

Each test draws T independent samples of one star node (varying the ``batch``
argument, which the sampler documents as fixing the randomness together with ``seed``)
and compares the empirical frequencies with the exact distribution. ``ALPHA`` is the
p-value below which a test fails; with fixed seeds the outcome is deterministic, and
a correct sampler passes each test with probability ``1 - ALPHA``. The sample sizes
are chosen so that a modest bias (a few percent on one neighbor) fails the test.
"""
from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch
from scipy import stats

from graphbatch import CSRGraph, NeighborSampler

ALPHA = 1e-4


def star(d: int) -> tuple[torch.Tensor, CSRGraph]:
    """Leaves ``1..d`` all point to node 0; edge ``i`` is ``i + 1 -> 0``."""
    ei = torch.stack([torch.arange(1, d + 1), torch.zeros(d, dtype=torch.long)])
    return ei, CSRGraph(ei, d + 1)


def draws(sampler: NeighborSampler, T: int, seed: int = 12345, center: int = 0) -> list[list[int]]:
    """Edge ids picked for ``center`` in T samples, each in the order picked."""
    seeds = torch.tensor([center])
    return [sampler.sample(seeds, seed=seed, batch=b).edge.tolist() for b in range(T)]


def chisquare_p(observed: dict, expected_prob: dict, T: int) -> float:
    keys = sorted(expected_prob)
    assert set(observed) <= set(keys), f"impossible outcomes: {set(observed) - set(keys)}"
    f_obs = np.array([observed.get(k, 0) for k in keys], dtype=float)
    f_exp = np.array([expected_prob[k] for k in keys], dtype=float) * T
    assert abs(f_exp.sum() - f_obs.sum()) < 1e-6 * T
    assert f_exp.min() >= 5, "too few expected counts for a chi-square test"
    return float(stats.chisquare(f_obs, f_exp).pvalue)


# ----------------------------------------------------------- uniform, without replacement


@pytest.mark.parametrize(
    "d,k",
    [
        (8, 3),  # k*k <= 4*d: Floyd's algorithm
        (9, 2),  # Floyd's algorithm
        (8, 6),  # k*k > 4*d: selection sampling
        (7, 5),  # selection sampling
    ],
)
def test_uniform_subsets(d, k):
    """Without replacement, every k-subset of the d neighbors is equally likely."""
    path = "floyd" if k * k <= 4 * d else "selection"
    ei, g = star(d)
    s = NeighborSampler(g, [k])
    T = 40 * math.comb(d, k) * 4
    obs = Counter()
    for picked in draws(s, T, seed=d * 100 + k):
        assert len(picked) == k and len(set(picked)) == k
        obs[tuple(sorted(picked))] += 1
    subsets = {c: 1 / math.comb(d, k) for c in itertools.combinations(range(d), k)}
    p = chisquare_p(obs, subsets, T)
    assert p > ALPHA, f"{path}: k-subsets not uniform (p={p:.2e})"


@pytest.mark.parametrize("d,k", [(40, 5), (40, 12), (40, 13), (40, 30), (97, 3)])
def test_uniform_inclusion_per_neighbor(d, k):
    """Each neighbor is included with probability k/d: binomial test per neighbor, Bonferroni."""
    ei, g = star(d)
    s = NeighborSampler(g, [k])
    T = 6000
    counts = np.zeros(d, dtype=int)
    for picked in draws(s, T, seed=7 * d + k):
        assert len(set(picked)) == k
        counts[picked] += 1
    pvals = [stats.binomtest(int(c), T, k / d).pvalue for c in counts]
    worst = int(np.argmin(pvals))
    assert min(pvals) > ALPHA / d, (
        f"neighbor {worst}: {counts[worst]} of {T}, expected {T * k / d:.0f} (p={pvals[worst]:.2e})"
    )


def test_uniform_positions_not_biased_by_csc_order():
    """The first and last CSC positions are as likely as the middle ones (off-by-one checks)."""
    for d, k in ((10, 1), (10, 2), (10, 9), (5, 4)):
        ei, g = star(d)
        s = NeighborSampler(g, [k])
        T = 5000
        c = Counter(e for picked in draws(s, T, seed=d + 31 * k) for e in picked)
        pvals = [stats.binomtest(c[e], T, k / d).pvalue for e in range(d)]
        assert min(pvals) > ALPHA / d, (d, k, sorted(c.items()))


def test_independent_across_batches_and_trees():
    """Picks for different batch values, and for different trees of a disjoint batch,
    are independent: the joint distribution of two picks is uniform over d*d pairs."""
    d = 6
    ei, g = star(d)
    T = 36 * 150
    s = NeighborSampler(g, [1])
    seeds = torch.tensor([0])
    pairs = Counter(
        (s.sample(seeds, seed=99, batch=2 * b).edge.item(), s.sample(seeds, seed=99, batch=2 * b + 1).edge.item())
        for b in range(T)
    )
    uniform_pairs = {(a, b): 1 / d**2 for a in range(d) for b in range(d)}
    assert chisquare_p(pairs, uniform_pairs, T) > ALPHA, "consecutive batches correlated"

    s = NeighborSampler(g, [1], disjoint=True)
    two = torch.tensor([0, 0])
    pairs = Counter()
    for b in range(T):
        out = s.sample(two, seed=5, batch=b)
        assert out.batch[out.col].tolist() == [0, 1]
        pairs[tuple(out.edge.tolist())] += 1
    assert chisquare_p(pairs, uniform_pairs, T) > ALPHA, "trees of one batch correlated"

    # And across the epoch seed with the batch index fixed.
    pairs = Counter(
        (s.sample(two[:1], seed=2 * b, batch=0).edge.item(), s.sample(two[:1], seed=2 * b + 1, batch=0).edge.item())
        for b in range(T)
    )
    assert chisquare_p(pairs, uniform_pairs, T) > ALPHA, "consecutive seeds correlated"


# ------------------------------------------------------------------ uniform, with replacement


def test_with_replacement_draws_are_iid_uniform():
    """Each of the k draws is uniform and independent of the others: (first, second)
    pairs are uniform over d*d cells, and the marginal over all draws is uniform."""
    d, k = 6, 2
    ei, g = star(d)
    s = NeighborSampler(g, [k], replace=True)
    T = 36 * 150
    picks = draws(s, T, seed=4)
    assert all(len(p) == k for p in picks)
    pairs = Counter(tuple(p) for p in picks)
    assert chisquare_p(pairs, {(a, b): 1 / d**2 for a in range(d) for b in range(d)}, T) > ALPHA


@pytest.mark.parametrize("d,k", [(50, 3), (4, 10)])
def test_with_replacement_marginal(d, k):
    ei, g = star(d)
    s = NeighborSampler(g, [k], replace=True)
    T = 8000
    c = Counter(e for p in draws(s, T, seed=d * k) for e in p)
    assert sum(c.values()) == T * k
    assert chisquare_p(c, {e: 1 / d for e in range(d)}, T * k) > ALPHA
    if k > d:
        # More draws than neighbors: repeats must happen (about all of the time here).
        assert any(len(set(p)) < len(p) for p in draws(s, 20, seed=1))


# ------------------------------------------------------------------------------- weighted


def weighted_star(weights):
    d = len(weights)
    ei, g = star(d)
    return ei, g, torch.tensor(weights, dtype=torch.float64)


@pytest.mark.parametrize("weights", [[1.0, 2.0, 3.0, 4.0], [0.5, 0.0, 5.0, 1.0, 0.0, 2.5]])
def test_weighted_with_replacement(weights):
    ei, g, w = weighted_star(weights)
    k = 3
    s = NeighborSampler(g, [k], replace=True, edge_weight=w)
    T = 8000
    c = Counter(e for p in draws(s, T, seed=17) for e in p)
    total = sum(weights)
    for e, x in enumerate(weights):
        if x == 0:
            assert c[e] == 0, f"zero-weight edge {e} sampled {c[e]} times"
    expected = {e: x / total for e, x in enumerate(weights) if x > 0}
    p = chisquare_p(c, expected, T * k)
    assert p > ALPHA, (sorted(c.items()), p)


def subset_probabilities(weights, k):
    """Exact probability of each k-subset under successive sampling without replacement
    (draw one neighbor with probability w / sum of the remaining weights, repeat)."""
    pos = [e for e, x in enumerate(weights) if x > 0]
    total = sum(weights)
    probs = {}
    for subset in itertools.combinations(pos, k):
        p = 0.0
        for order in itertools.permutations(subset):
            left, q = total, 1.0
            for e in order:
                q *= weights[e] / left
                left -= weights[e]
            p += q
        probs[subset] = p
    assert abs(sum(probs.values()) - 1) < 1e-12
    return probs


@pytest.mark.parametrize(
    "weights,k",
    [
        ([1.0, 2.0, 3.0, 4.0], 2),
        ([1.0, 1.0, 6.0, 2.0], 2),
        ([3.0, 0.0, 1.0, 0.5, 2.0], 2),  # a zero weight among them
        ([1.0, 2.0, 3.0, 4.0, 5.0], 3),
    ],
)
def test_weighted_without_replacement_subsets(weights, k):
    """Efraimidis-Spirakis picks each k-subset with its successive-sampling probability."""
    ei, g, w = weighted_star(weights)
    s = NeighborSampler(g, [k], edge_weight=w)
    probs = subset_probabilities(weights, k)
    T = 12000
    obs = Counter()
    for picked in draws(s, T, seed=len(weights) * 10 + k):
        assert len(picked) == k and len(set(picked)) == k
        assert all(weights[e] > 0 for e in picked), f"zero-weight edge in {picked}"
        obs[tuple(sorted(picked))] += 1
    p = chisquare_p(obs, probs, T)
    assert p > ALPHA, (sorted(obs.items()), p)


def test_weighted_fanout_at_least_positive_count_takes_all_positive():
    ei, g, w = weighted_star([0.0, 2.0, 0.0, 1.0, 3.0])
    for replace, fanout in ((False, 3), (False, 4), (False, -1), (True, -1)):
        s = NeighborSampler(g, [fanout], replace=replace, edge_weight=w)
        for picked in draws(s, 50, seed=fanout):
            assert sorted(picked) == [1, 3, 4], (replace, fanout, picked)


def test_zero_weight_edges_never_sampled_on_a_random_graph():
    rng = np.random.default_rng(21)
    n, m = 300, 3000
    ei = torch.from_numpy(rng.integers(0, n, size=(2, m)))
    g = CSRGraph(ei, n)
    w = torch.from_numpy(rng.choice([0.0, 1.0, 10.0], size=m))
    zero = set(torch.nonzero(w == 0).view(-1).tolist())
    for replace in (False, True):
        s = NeighborSampler(g, [3, 3], replace=replace, edge_weight=w)
        for b in range(20):
            out = s.sample(torch.arange(0, n, 7), seed=3, batch=b)
            assert not zero & set(out.edge.tolist())


def test_weighted_probabilities_depend_only_on_own_edges():
    """A node's pick probabilities follow its own edges' weights, whatever the weights
    elsewhere. Here node 0 (first in CSC order) has an edge of weight 1e12 and node 4
    has two edges of weights 1e-4 and 3e-4 (and a zero-weight edge): 1/4, 3/4 and 0."""
    ei = torch.tensor([[3, 1, 2, 3], [0, 4, 4, 4]])
    w = torch.tensor([1e12, 1e-4, 3e-4, 0.0], dtype=torch.float64)
    g = CSRGraph(ei, 5)
    T = 4000
    for replace in (False, True):
        s = NeighborSampler(g, [1], replace=replace, edge_weight=w)
        c = Counter(e for p in draws(s, T, seed=2, center=4) for e in p)
        assert c[3] == 0, f"replace={replace}: zero-weight edge sampled {c[3]} times"
        p = chisquare_p(c, {1: 0.25, 2: 0.75}, T)
        assert p > ALPHA, f"replace={replace}: {sorted(c.items())}, want 1/4 and 3/4 (p={p:.2e})"


def test_weighted_huge_weight_elsewhere_cannot_enable_zero_weight_edge():
    """Node 4 has one edge of weight 1 and one of weight 0; only the first may be picked,
    also when an earlier node's edge weighs 2**53."""
    ei = torch.tensor([[3, 1, 2], [0, 4, 4]])
    w = torch.tensor([2.0**53, 1.0, 0.0], dtype=torch.float64)
    s = NeighborSampler(CSRGraph(ei, 5), [2], replace=True, edge_weight=w)
    picked = [e for p in draws(s, 200, seed=1, center=4) for e in p]
    assert set(picked) == {1}, Counter(picked)
