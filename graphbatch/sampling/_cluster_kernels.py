"""numba kernels of Cluster-GCN batch assembly. Pure functions of validated arrays."""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True, nogil=True)
def gather_ranges(values, starts, ends, offsets, out):
    """``out[offsets[i]:offsets[i + 1]] = values[starts[i]:ends[i]]`` for every range ``i``."""
    for i in prange(starts.shape[0]):
        o = offsets[i]
        for j in range(starts[i], ends[i]):
            out[o + j - starts[i]] = values[j]


@njit(cache=True, nogil=True)
def by_source(indptr, indices, out_ptr, out_target, out_pos):
    """The edges grouped by source (counting sort; ``out_ptr`` holds the offsets):
    ``out_target`` their targets, ``out_pos`` their CSC positions."""
    cursor = out_ptr[:-1].copy()
    for v in range(indptr.shape[0] - 1):
        for p in range(indptr[v], indptr[v + 1]):
            k = cursor[indices[p]]
            cursor[indices[p]] = k + 1
            out_target[k] = v
            out_pos[k] = p


@njit(parallel=True, cache=True, nogil=True)
def symmetric_neighbors(indptr, indices, out_ptr, out_target, out_pos, weight, weighted,
                        out_nbr, out_weight, counts):
    """Node ``v``'s neighbors in the symmetrized graph without self-loops, sorted and
    distinct, written at ``out_nbr[indptr[v] + out_ptr[v]:]`` (room for all of ``v``'s
    in- and out-edges); with ``weighted``, ``out_weight`` sums ``weight`` (per CSC
    position) over the edges joining the pair, both directions. ``counts[v]``: how many."""
    for v in prange(indptr.shape[0] - 1):
        lo = indptr[v] + out_ptr[v]
        k = lo
        for p in range(indptr[v], indptr[v + 1]):
            if indices[p] != v:
                out_nbr[k] = indices[p]
                out_weight[k] = weight[p] if weighted else 0
                k += 1
        for j in range(out_ptr[v], out_ptr[v + 1]):
            if out_target[j] != v:
                out_nbr[k] = out_target[j]
                out_weight[k] = weight[out_pos[j]] if weighted else 0
                k += 1
        if k == lo:
            counts[v] = 0
            continue
        if weighted:
            order = np.argsort(out_nbr[lo:k], kind="mergesort")
            nbr = out_nbr[lo:k][order]
            w = out_weight[lo:k][order]
        else:
            out_nbr[lo:k].sort()
            nbr = out_nbr[lo:k]
            w = out_weight[lo:k]
        c = 0
        for i in range(k - lo):
            if c > 0 and nbr[i] == out_nbr[lo + c - 1]:
                out_weight[lo + c - 1] += w[i]
            else:
                out_nbr[lo + c] = nbr[i]
                out_weight[lo + c] = w[i]
                c += 1
        counts[v] = c
