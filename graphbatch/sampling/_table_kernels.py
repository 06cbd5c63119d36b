"""numba kernels of the node table: dedup keys -> local ids, and induced subgraphs.

The node table has two layouts behind one set of kernels, told apart by ``dense``:
an open-addressing hash table (``table_keys`` holds keys, ``table_vals`` local ids), or,
when keys are node ids, a dense array indexed by node id; then ``table_keys`` and
``table_vals`` are the same array, so writing the key and then the local id leaves the
local id, and one memory access replaces hashing and probing.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from graphbatch.sampling._rng import mix64

EMPTY = -1


@njit(inline="always", cache=True)
def _slot(table_keys, k, dense):
    if dense:
        return k
    mask = table_keys.shape[0] - 1
    h = np.int64(mix64(k) & np.uint64(mask))
    while table_keys[h] != EMPTY and table_keys[h] != k:
        h = (h + 1) & mask
    return h


@njit(cache=True, nogil=True)
def table_insert(table_keys, table_vals, dense, keys, next_local, out_local, out_new):
    """Maps each key to its local id, giving unseen keys ``next_local, next_local + 1, ...``.

    Returns how many keys were new; their positions in ``keys`` go to ``out_new``.
    """
    num_new = 0
    for j in range(keys.shape[0]):
        h = _slot(table_keys, keys[j], dense)
        if table_keys[h] == EMPTY:
            table_keys[h] = keys[j]
            table_vals[h] = next_local + num_new
            out_new[num_new] = j
            num_new += 1
        out_local[j] = table_vals[h]
    return num_new


@njit(cache=True, nogil=True)
def table_insert_rows(table_keys, table_vals, dense, keys):
    """Inserts ``keys[j]`` with local id ``j`` unless already present (first wins)."""
    for j in range(keys.shape[0]):
        h = _slot(table_keys, keys[j], dense)
        if table_keys[h] == EMPTY:
            table_keys[h] = keys[j]
            table_vals[h] = j


@njit(parallel=True, cache=True, nogil=True)
def count_induced(indptr, indices, nodes, tree, stride, table_keys, dense, counts):
    """``counts[t]``: incoming edges of local node ``t`` whose source is a sampled node."""
    for t in prange(nodes.shape[0]):
        v = nodes[t]
        base = tree[t] * stride if stride else 0
        c = 0
        for p in range(indptr[v], indptr[v + 1]):
            if table_keys[_slot(table_keys, base + indices[p], dense)] != EMPTY:
                c += 1
        counts[t] = c


@njit(parallel=True, cache=True, nogil=True)
def fill_induced(indptr, indices, perm, nodes, tree, stride, table_keys, table_vals, dense,
                 offsets, out_src, out_dst, out_edge):
    """The edges :func:`count_induced` counted: local source, local target, edge id."""
    for t in prange(nodes.shape[0]):
        v = nodes[t]
        base = tree[t] * stride if stride else 0
        j = offsets[t]
        for p in range(indptr[v], indptr[v + 1]):
            h = _slot(table_keys, base + indices[p], dense)
            if table_keys[h] != EMPTY:
                out_src[j] = table_vals[h]
                out_dst[j] = t
                out_edge[j] = perm[p]
                j += 1


@njit(parallel=True, cache=True, nogil=True)
def clear_dense(table, nodes):
    """Empties the dense table's entries of ``nodes``, ready for the next batch."""
    for i in prange(nodes.shape[0]):
        table[nodes[i]] = EMPTY
