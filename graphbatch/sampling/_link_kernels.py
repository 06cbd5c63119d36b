"""numba kernels of the link sampler. Pure functions of validated numpy arrays.

Negatives are drawn one per output slot ``q``, from the counter-based stream
``(key, NEG_STREAM, q)`` of :mod:`graphbatch.sampling._rng`, so which thread draws
which slot never changes a batch. Node draws are uniform over ``[0, n)`` (``prob``
empty) or by an alias table of node weights; each takes two draws of the stream.

"True edge" tests read the sources of each target sorted (:func:`sort_segments`, a
sorted copy of the CSC's ``indices``, which keep the original edge order) and a
sorted array of extra pair keys ``target * n + source`` (the loader's positive
pairs): edge ``s -> d`` is true if ``s`` is among ``d``'s sources or ``d * n + s`` is
a key.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from graphbatch.sampling._rng import draw_alias, randint, stream

#: The stream name of negative draws (hops of the neighbor sampler use 0, 1, ...).
NEG_STREAM = 0x6E656761  # "nega"


@njit(parallel=True, cache=True, nogil=True)
def sort_segments(indptr, indices, out):
    """``out``: ``indices`` with each target's sources sorted."""
    for v in prange(indptr.shape[0] - 1):
        lo, hi = indptr[v], indptr[v + 1]
        out[lo:hi] = np.sort(indices[lo:hi])


@njit(inline="always", cache=True)
def _in_sorted(a, lo, hi, x):
    """Whether ``x`` is in the sorted ``a[lo:hi]``."""
    end = hi
    while lo < hi:
        m = (lo + hi) >> 1
        if a[m] < x:
            lo = m + 1
        else:
            hi = m
    return lo < end and a[lo] == x


@njit(inline="always", cache=True)
def _is_edge(indptr, sorted_src, pair_keys, n, s, d):
    return (_in_sorted(sorted_src, indptr[d], indptr[d + 1], s)
            or _in_sorted(pair_keys, 0, pair_keys.shape[0], d * n + s))


@njit(inline="always", cache=True)
def _draw_node(prob, alias, n, state, j):
    """Draws ``j`` and ``j + 1`` of a stream: a node, uniform or by the alias table."""
    if prob.shape[0] == 0:
        return randint(state, j, n)
    return draw_alias(prob, alias, state, j)


@njit(inline="always", cache=True)
def _allowed(weight, v):
    return weight.shape[0] == 0 or weight[v] > 0


@njit(cache=True, nogil=True)
def _scan_dst(indptr, sorted_src, pair_keys, n, dst_weight, s, d0):
    """The first node from ``d0`` on (cyclically) of positive weight that ``s`` has no
    edge to, or -1."""
    for k in range(n):
        d = d0 + k
        if d >= n:
            d -= n
        if _allowed(dst_weight, d) and not _is_edge(indptr, sorted_src, pair_keys, n, s, d):
            return d
    return -1


@njit(parallel=True, cache=True, nogil=True)
def binary_negatives(key, n, src_prob, src_alias, src_weight, dst_prob, dst_alias, dst_weight,
                     reject, max_tries, indptr, sorted_src, pair_keys, out_src, out_dst):
    """Random pairs ``(out_src[q], out_dst[q])``. With ``reject``, pairs that are true
    edges are drawn again, both ends, up to ``max_tries`` draws; past that, the first
    non-edge in cyclic id order from the last draw is taken (-1, -1 where none)."""
    for q in prange(out_src.shape[0]):
        state = stream(key, NEG_STREAM, q)
        s = _draw_node(src_prob, src_alias, n, state, 0)
        d = _draw_node(dst_prob, dst_alias, n, state, 2)
        if reject:
            t = 1
            while t < max_tries and _is_edge(indptr, sorted_src, pair_keys, n, s, d):
                s = _draw_node(src_prob, src_alias, n, state, 4 * t)
                d = _draw_node(dst_prob, dst_alias, n, state, 4 * t + 2)
                t += 1
            if _is_edge(indptr, sorted_src, pair_keys, n, s, d):
                found = -1
                for i in range(n):
                    u = s + i
                    if u >= n:
                        u -= n
                    if _allowed(src_weight, u):
                        found = _scan_dst(indptr, sorted_src, pair_keys, n, dst_weight, u, d)
                        if found >= 0:
                            s = u
                            break
                d = found
                if found < 0:
                    s = -1
        out_src[q] = s
        out_dst[q] = d


@njit(parallel=True, cache=True, nogil=True)
def triplet_negatives(key, src, amount, by_column, n, dst_prob, dst_alias, dst_weight, reject,
                      max_tries, indptr, sorted_src, pair_keys, out_dst):
    """``amount`` random destinations per source ``src[i]``: slot ``q`` belongs to
    source ``q % len(src)`` if ``by_column``, else ``q // amount``. With ``reject``,
    a destination the source has an edge to is drawn again, up to ``max_tries`` draws;
    past that, the first non-edge in cyclic id order is taken (-1 where none)."""
    num_src = src.shape[0]
    for q in prange(out_dst.shape[0]):
        state = stream(key, NEG_STREAM, q)
        d = _draw_node(dst_prob, dst_alias, n, state, 0)
        if reject:
            s = src[q % num_src] if by_column else src[q // amount]
            t = 1
            while t < max_tries and _is_edge(indptr, sorted_src, pair_keys, n, s, d):
                d = _draw_node(dst_prob, dst_alias, n, state, 2 * t)
                t += 1
            if _is_edge(indptr, sorted_src, pair_keys, n, s, d):
                d = _scan_dst(indptr, sorted_src, pair_keys, n, dst_weight, s, d)
        out_dst[q] = d


@njit(parallel=True, cache=True, nogil=True)
def keep_unpaired(node, row, col, pair_keys, n, keep):
    """``keep[e]``: edge ``e`` (local ``row[e] -> col[e]``) joins no pair of
    ``pair_keys`` (sorted ``a * n + b``, both orders of each pair present)."""
    for e in prange(row.shape[0]):
        keep[e] = not _in_sorted(pair_keys, 0, pair_keys.shape[0], node[row[e]] * n + node[col[e]])
