"""numba kernels of the neighbor sampler. Pure functions of validated numpy arrays.

A hop runs in four steps: ``count_picks`` (how many neighbors each frontier node
gets), a prefix sum, ``pick_uniform``/``pick_weighted`` (which CSC positions), and
``expand_picks`` (their node ids, edge ids and dedup keys). Node table insertion
(:mod:`graphbatch.sampling._table_kernels`), which gives each new node the next local
id in order of first appearance, is the one sequential step. A dedup key is the node
id, or ``tree * num_nodes + node`` when each seed grows its own tree (disjoint mode).

:func:`num_picks`, :func:`pick_segment` and :func:`expand_segment` count, pick and
expand one node's neighbors; the heterogeneous kernels
(:mod:`graphbatch.sampling._hetero_kernels`) call them once per edge type, so both
samplers pick alike.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from graphbatch.sampling._rng import draw_cdf, randint, stream, uniform


@njit(parallel=True, cache=True, nogil=True)
def segment_cumsum(indptr, weight, out_cum, out_positive):
    """Inclusive prefix sums of ``weight`` restarted at each node's first edge (exact per
    node, whatever the other nodes' weights), and each node's count of positive weights."""
    for v in prange(indptr.shape[0] - 1):
        total = 0.0
        positive = 0
        for p in range(indptr[v], indptr[v + 1]):
            total += weight[p]
            out_cum[p] = total
            if weight[p] > 0:
                positive += 1
        out_positive[v] = positive


# The per-node helpers below are inlined (numba IR) into their callers here and in
# _hetero_kernels: as plain calls, the picks measured 10-30% slower. numba's cache keys
# a kernel on its own file's contents only: after editing them, delete the
# _hetero_kernels.* files in __pycache__, or its kernels keep the old helpers.
@njit(inline="always", cache=True, nogil=True)
def num_picks(candidates, fanout, replace):
    """Neighbors to pick (int64) from ``candidates`` (int64) with ``fanout``: every
    candidate when ``fanout`` is -1 or, without replacement, covers them all; else
    ``fanout`` (with replacement, none from no candidates)."""
    if fanout < 0 or (not replace and candidates <= fanout):
        return candidates
    if replace:
        return fanout if candidates > 0 else 0
    return fanout


@njit(inline="always", cache=True, nogil=True)
def pick_segment(start, deg, k, fanout, replace, state, out_pos, lo):
    """Writes ``k`` (from :func:`num_picks`) picked positions of the segment ``start ..
    start + deg - 1`` to ``out_pos[lo:lo + k]`` (int64): all of them, ``k`` uniform
    draws with replacement, or a uniform ``k``-subset. Its only randomness is draws
    ``0, 1, ...`` of stream ``state``: the stream fixes the picks, whichever kernel calls."""
    if fanout < 0 or (not replace and k == deg):
        for j in range(k):
            out_pos[lo + j] = start + j
    elif replace:
        for j in range(k):
            out_pos[lo + j] = start + randint(state, j, deg)
    elif k * k <= 4 * deg:
        # Floyd's algorithm: k draws, each a uniform k-subset step; O(k^2) checks.
        for n in range(k):
            j = deg - k + n
            t = start + randint(state, j, j + 1)
            for q in range(n):
                if out_pos[lo + q] == t:
                    t = start + j
                    break
            out_pos[lo + n] = t
    else:
        # Selection sampling (Knuth's algorithm S): one pass, O(deg).
        need = k
        n = 0
        for j in range(deg):
            if uniform(state, j) * (deg - j) < need:
                out_pos[lo + n] = start + j
                n += 1
                need -= 1
                if need == 0:
                    break


@njit(parallel=True, cache=True, nogil=True)
def count_picks(num_candidates, frontier, fanout, replace, counts):
    """``counts[i]``: neighbors to pick for ``frontier[i]``, given its candidate count."""
    for i in prange(frontier.shape[0]):
        counts[i] = num_picks(num_candidates[frontier[i]], fanout, replace)


@njit(parallel=True, cache=True, nogil=True)
def pick_uniform(indptr, frontier, offsets, fanout, replace, key, hop, out_pos):
    """Writes the picked CSC positions of ``frontier[i]`` to
    ``out_pos[offsets[i]:offsets[i+1]]``, drawn from stream ``(hop, i)``."""
    for i in prange(frontier.shape[0]):
        v = frontier[i]
        start = indptr[v]
        lo = offsets[i]
        k = offsets[i + 1] - lo
        if k == 0:
            continue
        pick_segment(start, indptr[v + 1] - start, k, fanout, replace, stream(key, hop, i),
                     out_pos, lo)


@njit(parallel=True, cache=True, nogil=True)
def pick_weighted(indptr, num_candidates, weight, cum_weight, frontier, offsets, fanout,
                  replace, key, hop, out_pos):
    """As :func:`pick_uniform`, with probability proportional to ``weight`` (CSC order).

    With replacement: inverse CDF on ``cum_weight`` (inclusive prefix sums per node).
    Without: Efraimidis-Spirakis, the ``k`` largest ``log(u) / w``. Zero weights are
    never picked.
    """
    for i in prange(frontier.shape[0]):
        v = frontier[i]
        start = indptr[v]
        deg = indptr[v + 1] - start
        lo = offsets[i]
        k = offsets[i + 1] - lo
        state = stream(key, hop, i)
        if k == 0:
            continue
        if fanout < 0 or (not replace and k == num_candidates[v]):
            n = 0
            for j in range(deg):
                if weight[start + j] > 0:
                    out_pos[lo + n] = start + j
                    n += 1
        elif replace:
            for j in range(k):
                out_pos[lo + j] = draw_cdf(cum_weight, start, start + deg - 1, uniform(state, j))
        else:
            keys = np.empty(deg, dtype=np.float64)
            for j in range(deg):
                w = weight[start + j]
                keys[j] = np.log(uniform(state, j)) / w if w > 0 else -np.inf
            order = np.argsort(keys)
            for j in range(k):
                out_pos[lo + j] = start + order[deg - 1 - j]


@njit(inline="always", cache=True, nogil=True)
def expand_segment(pos, lo, hi, indices, perm, base, dst, out_node, out_key, out_edge,
                   out_dst):
    """Expands picks ``lo .. hi - 1`` of one node, local id ``dst``: ``pos`` holds their
    CSC positions, and ``out_node``, ``out_key``, ``out_edge``, ``out_dst`` (int64, like
    ``pos``) get at the same places the source node id (``indices``), the dedup key
    (``base`` plus the node id), the original edge id (``perm``) and ``dst``."""
    for j in range(lo, hi):
        p = pos[j]
        u = indices[p]
        out_node[j] = u
        out_key[j] = base + u
        out_edge[j] = perm[p]
        out_dst[j] = dst


@njit(parallel=True, cache=True, nogil=True)
def expand_picks(pos, offsets, indices, perm, frontier_first_local, tree, stride,
                 out_node, out_key, out_edge, out_dst):
    """Node id, dedup key, original edge id and local target of every picked position.

    The frontier's local ids are ``frontier_first_local + i``. In disjoint mode ``tree``
    holds each local node's tree (seed index) and ``stride`` is ``num_nodes``; otherwise
    ``stride`` is 0 and ``tree`` is not read.
    """
    for i in prange(offsets.shape[0] - 1):
        dst = frontier_first_local + i
        expand_segment(pos, offsets[i], offsets[i + 1], indices, perm,
                       tree[dst] * stride if stride else 0, dst,
                       out_node, out_key, out_edge, out_dst)
