"""numba kernels of the GraphSAINT samplers. Pure functions of validated numpy arrays."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from graphbatch._intrinsics import prefetch
from graphbatch.sampling._rng import draw_alias, draw_cdf, randint, stream, uniform

#: How many walks ahead a walk step prefetches.
WALKS_AHEAD = 16
#: Walks per unit of parallel work.
WALK_CHUNK = 512


@njit(parallel=True, cache=True, nogil=True)
def draw_from_alias(prob, alias, key, out):
    """``out[i]``: draw ``i`` (with replacement) from the alias table ``(prob, alias)``."""
    for i in prange(out.shape[0]):
        out[i] = draw_alias(prob, alias, stream(key, 0, i), 0)


@njit(parallel=True, cache=True, nogil=True)
def draw_edges(prob, alias, indptr, indices, cum, key, out):
    """Edge draw ``i`` (with replacement): its target ``v`` from the alias table over the
    targets' total weights, then its CSC position in ``v``'s segment by inverse CDF on
    ``cum`` (weights' prefix sums restarted per segment). ``out[2i]``, ``out[2i + 1]``:
    the edge's source and target."""
    for i in prange(out.shape[0] // 2):
        state = stream(key, 0, i)
        v = draw_alias(prob, alias, state, 0)
        p = draw_cdf(cum, indptr[v], indptr[v + 1] - 1, uniform(state, 2))
        out[2 * i] = indices[p]
        out[2 * i + 1] = v


@njit(parallel=True, cache=True, nogil=True)
def random_walks(indptr, indices, roots, key, out):
    """``out[r]`` (``[walk_length + 1]``): a uniform random walk along incoming edges
    from a root drawn uniformly from ``roots`` (from all nodes where ``roots`` is empty:
    no table to read at random); a node without neighbors stays where it is. Walks go
    by chunks of :data:`WALK_CHUNK` (one parallel loop: each parallel loop of a kernel
    takes the GIL twice on the way, which prefetch threads then wait for)."""
    num_walks = out.shape[0]
    for c in prange((num_walks + WALK_CHUNK - 1) // WALK_CHUNK):
        _walk_chunk(indptr, indices, roots, key, out, c * WALK_CHUNK,
                    min(num_walks, (c + 1) * WALK_CHUNK))


@njit(cache=True, nogil=True)
def _walk_chunk(indptr, indices, roots, key, out, lo, hi):
    """Walks ``lo:hi`` of :func:`random_walks`. All of them take step ``s`` before any
    takes step ``s + 1``, in two passes (pick the position in ``indices``, then read
    it), each prefetching a few walks ahead: one walk's steps are a chain of cache
    misses, the walks of one pass are independent and their misses overlap."""
    num_roots = roots.shape[0] if roots.shape[0] > 0 else indptr.shape[0] - 1
    for r in range(lo, hi):
        out[r, 0] = randint(stream(key, 2, r), 0, num_roots)
    if roots.shape[0] > 0:
        for r in range(lo, hi):
            if r + WALKS_AHEAD < hi:
                prefetch(roots, out[r + WALKS_AHEAD, 0])
            out[r, 0] = roots[out[r, 0]]
    pos = np.empty(hi - lo, dtype=np.int64)
    for s in range(out.shape[1] - 1):
        for r in range(lo, hi):
            if r + WALKS_AHEAD < hi:
                prefetch(indptr, out[r + WALKS_AHEAD, s])
            v = out[r, s]
            start = indptr[v]
            deg = indptr[v + 1] - start
            # Where the step reads its next node, or -1 - v to stay at v.
            pos[r - lo] = start + randint(stream(key, 1, r), s, deg) if deg > 0 else -1 - v
        for r in range(lo, hi):
            if r + WALKS_AHEAD < hi and pos[r + WALKS_AHEAD - lo] >= 0:
                prefetch(indices, pos[r + WALKS_AHEAD - lo])
            p = pos[r - lo]
            out[r, s + 1] = indices[p] if p >= 0 else -1 - p
