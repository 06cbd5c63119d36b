"""numba kernels behind :mod:`graphbatch.graph`. Inputs are validated by the caller."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _scatter_by_target(src, dst, indptr, indices, perm):
    cursor = indptr[:-1].copy()
    for e in range(dst.shape[0]):
        p = cursor[dst[e]]
        cursor[dst[e]] = p + 1
        indices[p] = src[e]
        perm[p] = e


def build_csc(src: np.ndarray, dst: np.ndarray, num_nodes: int):
    """Counting sort of the edges by target, stable in the original edge order.

    Args:
        src, dst: ``[E]`` int64 endpoints, already checked to lie in ``[0, num_nodes)``.

    Returns:
        ``(indptr [N + 1], indices [E], perm [E])``, all int64.
    """
    indptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=num_nodes), out=indptr[1:])
    indices = np.empty(src.shape[0], dtype=np.int64)
    perm = np.empty(src.shape[0], dtype=np.int64)
    _scatter_by_target(src, dst, indptr, indices, perm)
    return indptr, indices, perm
