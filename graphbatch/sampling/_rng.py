"""Counter-based randomness for the kernels.

Every draw is a pure function of ``(key, a, b, j)``: ``key`` mixes the loader's seed for
the epoch with the batch index, ``(a, b)`` name the stream (hop and position in the
frontier, say) and ``j`` counts draws within it. Which thread runs which position can
therefore never change a batch. The mixer is SplitMix64's finalizer.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@njit(inline="always", cache=True)
def mix64(z):
    z = np.uint64(z)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(inline="always", cache=True)
def stream(key, a, b):
    """The state of stream ``(a, b)`` under ``key`` (all non-negative ints)."""
    return mix64(np.uint64(key) ^ mix64(np.uint64(a) * _GOLDEN + np.uint64(b)))


@njit(inline="always", cache=True)
def uniform(state, j):
    """Draw ``j`` of a stream: a float64 strictly inside (0, 1)."""
    r = mix64(state + np.uint64(j) * _GOLDEN) >> np.uint64(11)
    return (np.float64(r) + 0.5) * _TO_UNIT


@njit(inline="always", cache=True)
def randint(state, j, n):
    """Draw ``j`` of a stream: an int in ``[0, n)`` for ``n >= 1``."""
    r = np.int64(uniform(state, j) * n)
    return r if r < n else n - 1


@njit(inline="always", cache=True)
def draw_cdf(cum, lo, hi, u):
    """An index in ``[lo, hi]`` by inverse CDF: ``cum[lo:hi + 1]`` are inclusive prefix
    sums of the weights (starting from the weight at ``lo``), ``u`` a uniform draw; index
    ``j`` comes with probability proportional to its weight, zero weights never."""
    target = u * cum[hi]
    a = lo
    b = hi
    while a < b:
        m = (a + b) // 2
        if cum[m] > target:
            b = m
        else:
            a = m + 1
    return a


def batch_key(seed: int, batch: int) -> int:
    """The kernel key of batch ``batch`` under the epoch's ``seed`` (Python side)."""
    mask = (1 << 64) - 1
    z = (seed * 0x9E3779B97F4A7C15 + batch + 1) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return (z ^ (z >> 31)) >> 1  # 63 bits, so it passes to numba as an int64


@njit(cache=True, nogil=True)
def alias_table(weight, out_prob, out_alias):
    """Walker's alias table of ``weight`` (non-negative, positive sum), by Vose's method:
    draw a column ``i`` uniformly, keep it with probability ``out_prob[i]``, else take
    ``out_alias[i]``. Zero weights get probability 0 and are never drawn."""
    n = weight.shape[0]
    scaled = weight * (n / weight.sum())
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    num_small = 0
    num_large = 0
    for i in range(n):
        out_alias[i] = i
        if scaled[i] < 1.0:
            small[num_small] = i
            num_small += 1
        else:
            large[num_large] = i
            num_large += 1
    while num_small > 0 and num_large > 0:
        num_small -= 1
        s = small[num_small]
        g = large[num_large - 1]
        out_prob[s] = scaled[s]
        out_alias[s] = g
        scaled[g] -= 1.0 - scaled[s]
        if scaled[g] < 1.0:
            num_large -= 1
            small[num_small] = g
            num_small += 1
    # Columns left over hold one column's worth of weight up to rounding (a zero
    # weight, a whole column short, is always paired above).
    for k in range(num_large):
        out_prob[large[k]] = 1.0
    for k in range(num_small):
        out_prob[small[k]] = 1.0


@njit(inline="always", cache=True)
def draw_alias(prob, alias, state, j):
    """Draws ``j`` and ``j + 1`` of a stream: an index from an :func:`alias_table`."""
    i = randint(state, j, prob.shape[0])
    return i if uniform(state, j + 1) < prob[i] else alias[i]
