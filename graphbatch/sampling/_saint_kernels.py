"""numba kernels of the GraphSAINT samplers. Pure functions of validated numpy arrays."""
from __future__ import annotations

from numba import njit, prange

from graphbatch.sampling._rng import draw_cdf, randint, stream, uniform


@njit(parallel=True, cache=True, nogil=True)
def draw_from_cdf(cum, key, out):
    """``out[i]``: draw ``i`` (with replacement) of an index ``j`` with probability
    ``(cum[j] - cum[j - 1]) / cum[-1]``; ``cum`` is an inclusive prefix sum."""
    for i in prange(out.shape[0]):
        out[i] = draw_cdf(cum, 0, cum.shape[0] - 1, uniform(stream(key, 0, i), 0))


@njit(parallel=True, cache=True, nogil=True)
def random_walks(indptr, indices, roots, walk_length, key, out):
    """``out[r]`` (``[walk_length + 1]``): a uniform random walk from ``roots[r]`` along
    incoming edges; a node without neighbors stays where it is."""
    for r in prange(roots.shape[0]):
        state = stream(key, 1, r)
        v = roots[r]
        out[r, 0] = v
        for s in range(walk_length):
            start = indptr[v]
            deg = indptr[v + 1] - start
            if deg > 0:
                v = indices[start + randint(state, s, deg)]
            out[r, s + 1] = v


@njit(parallel=True, cache=True, nogil=True)
def uniform_ints(n, key, out):
    """``out[i]``: draw ``i`` of a uniform int in ``[0, n)``."""
    for i in prange(out.shape[0]):
        out[i] = randint(stream(key, 2, i), 0, n)
