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


@njit(cache=True, nogil=True)
def _lower_endpoints(indptr, indices, rank, out_low):
    """``out_low[p]``: the lower-ranked endpoint of the edge at CSC position ``p``."""
    for v in range(indptr.shape[0] - 1):
        for p in range(indptr[v], indptr[v + 1]):
            u = indices[p]
            out_low[p] = u if rank[u] <= rank[v] else v


@njit(cache=True, nogil=True)
def _scatter_by_lower(indptr, indices, perm, low, optr, code, edge):
    cursor = optr[:-1].copy()
    for v in range(indptr.shape[0] - 1):
        for p in range(indptr[v], indptr[v + 1]):
            u = indices[p]
            x = low[p]
            q = cursor[x]
            cursor[x] = q + 1
            # The other endpoint, and whether x is the edge's source.
            code[q] = (v << 1) | 1 if x == u else u << 1
            edge[q] = perm[p]


def compact_dtype(bound: int) -> np.dtype:
    """int32 if every value in ``[0, bound)`` fits it, else int64."""
    return np.dtype(np.int32 if bound - 1 <= np.iinfo(np.int32).max else np.int64)


def build_oriented(indptr: np.ndarray, indices: np.ndarray, perm: np.ndarray):
    """Each edge filed once, under its endpoint of lower total degree (ties: lower id).

    Args:
        indptr, indices, perm: the CSC of :func:`build_csc`.

    Returns:
        ``(optr [N + 1] int64, code [E], edge [E])``: the edges filed under node ``x``
        are at ``optr[x]:optr[x + 1]``, in CSC order; ``code >> 1`` is the other
        endpoint, ``code & 1`` is 1 where ``x`` is the source; ``edge`` the edge id.
        ``code`` and ``edge`` are int32 where their values fit (int64 otherwise): the
        induced-subgraph scan reads ``code`` at random, so half the bytes is half the
        cache lines.
    """
    num_nodes = indptr.shape[0] - 1
    degree = np.diff(indptr) + np.bincount(indices, minlength=num_nodes)
    rank = np.empty(num_nodes, dtype=np.int64)
    rank[np.argsort(degree, kind="stable")] = np.arange(num_nodes)
    low = np.empty(indices.shape[0], dtype=np.int64)
    _lower_endpoints(indptr, indices, rank, low)
    optr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(low, minlength=num_nodes), out=optr[1:])
    del rank
    code = np.empty(low.shape[0], dtype=compact_dtype(2 * num_nodes))
    edge = np.empty(low.shape[0], dtype=compact_dtype(indices.shape[0]))
    _scatter_by_lower(indptr, indices, perm, low, optr, code, edge)
    return optr, code, edge
