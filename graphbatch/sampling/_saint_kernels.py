"""numba kernels of the GraphSAINT samplers. Pure functions of validated numpy arrays."""
from __future__ import annotations

from numba import njit, prange

from graphbatch.sampling._rng import draw_alias, draw_cdf, randint, stream, uniform


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
def random_walks(indptr, indices, roots, walk_length, key, out):
    """``out[r]`` (``[walk_length + 1]``): a uniform random walk from ``roots[r]`` along
    incoming edges; a node without neighbors stays where it is. All walks take step
    ``s`` before any takes step ``s + 1``: one walk's steps are a chain of cache misses,
    the walks of one step are independent and their misses overlap."""
    for r in prange(roots.shape[0]):
        out[r, 0] = roots[r]
    for s in range(walk_length):
        for r in prange(roots.shape[0]):
            v = out[r, s]
            start = indptr[v]
            deg = indptr[v + 1] - start
            if deg > 0:
                v = indices[start + randint(stream(key, 1, r), s, deg)]
            out[r, s + 1] = v


@njit(parallel=True, cache=True, nogil=True)
def uniform_ints(n, key, out):
    """``out[i]``: draw ``i`` of a uniform int in ``[0, n)``."""
    for i in prange(out.shape[0]):
        out[i] = randint(stream(key, 2, i), 0, n)
