"""The tables and numba kernels behind :func:`graphbatch.datasets.synthetic.planted_graph`.

Pairs are drawn by alias tables, O(1) a draw (``searchsorted`` over the cumulative
activity of 1M nodes misses the cache at each of its ~20 steps: 8 s for 10M draws,
against 3 s here for 10M pairs, two draws each), then made undirected and coalesced in
O(pairs) memory beyond the result, where a sort of ``2 x pairs`` int64 keys
(``to_undirected``) needs several times that."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from graphbatch.sampling._rng import alias_table


def segment_alias(weight: np.ndarray, starts: np.ndarray,
                  ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias tables, one per segment ``[starts[k], ends[k])`` of ``weight``
    ([N] positive float64), side by side: ``prob`` [N] float64 and ``alias`` [N] int64
    (absolute positions, inside the slot's segment). A draw from a segment picks slot
    ``i`` uniformly, then keeps it with probability ``prob[i]`` or takes ``alias[i]``."""
    prob = np.ones(weight.shape[0])
    alias = np.arange(weight.shape[0], dtype=np.int64)
    for lo, hi in zip(starts.tolist(), ends.tolist()):
        if hi > lo:
            alias_table(weight[lo:hi], prob[lo:hi], alias[lo:hi])
            alias[lo:hi] += lo
    return prob, alias


@njit(cache=True, nogil=True, inline="always")
def _pick(lo, hi, u, prob, alias):
    """A slot of segment ``[lo, hi)`` by its alias table, from one uniform ``u``: its
    integer part picks the slot, its fraction decides slot or alias."""
    x = u * (hi - lo)
    i = min(int(x), hi - lo - 1)
    i += lo
    return i if x - int(x) < prob[i] else alias[i]


@njit(parallel=True, cache=True, nogil=True)
def draw_pairs(u_src, u_same, u_dst, homophily, order, y, starts, ends, prob_all,
               alias_all, prob_class, alias_class, src, dst):
    """Pair ``i``: a source by activity among all nodes, and a destination by activity
    among the source's class when ``u_same[i] < homophily``, else among all nodes.
    Tables index positions of ``order`` (nodes sorted by class), whose class ``c`` is
    ``[starts[c], ends[c])``."""
    n = order.shape[0]
    for i in prange(u_src.shape[0]):
        s = order[_pick(0, n, u_src[i], prob_all, alias_all)]
        if u_same[i] < homophily:
            c = y[s]
            d = _pick(starts[c], ends[c], u_dst[i], prob_class, alias_class)
        else:
            d = _pick(0, n, u_dst[i], prob_all, alias_all)
        src[i] = s
        dst[i] = order[d]


@njit(cache=True, nogil=True)
def count_both_ways(src, dst, indptr):
    """``indptr`` [N + 1] (zeros on entry): offsets of every non-loop pair filed under
    both of its endpoints."""
    for e in range(src.shape[0]):
        if src[e] != dst[e]:
            indptr[src[e] + 1] += 1
            indptr[dst[e] + 1] += 1
    for v in range(indptr.shape[0] - 1):
        indptr[v + 1] += indptr[v]


@njit(cache=True, nogil=True)
def fill_both_ways(src, dst, indptr, col):
    """``col[indptr[v]:indptr[v + 1]]``: the other endpoint of each of ``v``'s pairs."""
    cursor = indptr[:-1].copy()
    for e in range(src.shape[0]):
        s, d = src[e], dst[e]
        if s != d:
            col[cursor[s]] = d
            cursor[s] += 1
            col[cursor[d]] = s
            cursor[d] += 1


@njit(parallel=True, cache=True, nogil=True)
def sort_unique_rows(indptr, col, counts):
    """Sorts each row of ``col`` in place and moves its distinct values to the row's
    front; ``counts[v]``: how many there are."""
    for v in prange(indptr.shape[0] - 1):
        lo, hi = indptr[v], indptr[v + 1]
        if hi == lo:
            counts[v] = 0
            continue
        row = col[lo:hi]
        row.sort()
        k = 1
        for j in range(1, hi - lo):
            if row[j] != row[k - 1]:
                row[k] = row[j]
                k += 1
        counts[v] = k


@njit(parallel=True, cache=True, nogil=True)
def emit_rows(indptr, col, out_ptr, out):
    """``out`` [2, E] int64: row ``v``'s distinct neighbors (the front ``out_ptr[v + 1] -
    out_ptr[v]`` of its ``col`` row) as edges ``(v, u)``, in row order."""
    for v in prange(indptr.shape[0] - 1):
        o, lo = out_ptr[v], indptr[v]
        for j in range(out_ptr[v + 1] - o):
            out[0, o + j] = v
            out[1, o + j] = col[lo + j]


def undirected_coalesced(src: np.ndarray, dst: np.ndarray, num_nodes: int) -> np.ndarray:
    """The pairs ``(src[i], dst[i])`` as PyG's ``to_undirected`` gives them after
    ``remove_self_loops``: both directions, sorted by (row, column), duplicates merged.

    Args:
        src, dst: ``[P]`` int32 or int64 node ids in ``[0, num_nodes)`` (unchecked).

    Returns:
        ``[2, E]`` int64 edge index.
    """
    indptr = np.zeros(num_nodes + 1, dtype=np.int64)
    count_both_ways(src, dst, indptr)
    col = np.empty(indptr[-1], dtype=src.dtype)
    fill_both_ways(src, dst, indptr, col)
    counts = np.empty(num_nodes, dtype=np.int64)
    sort_unique_rows(indptr, col, counts)
    out_ptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(counts, out=out_ptr[1:])
    out = np.empty((2, out_ptr[-1]), dtype=np.int64)
    emit_rows(indptr, col, out_ptr, out)
    return out
