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

from graphbatch._intrinsics import LINE, popcount, prefetch, prefetch_range, trailing_zeros
from graphbatch.sampling._rng import mix64

EMPTY = -1
#: How many nodes ahead the induced-subgraph scan prefetches a node's filed edges.
PREFETCH_DISTANCE = 8
#: How many nodes ahead :func:`filed_offsets` prefetches a node's offsets.
NODES_AHEAD = 16
#: Local nodes per chunk of the member scan (a unit of parallel work).
MEMBER_CHUNK = 512
#: How many cache lines of one segment the scans prefetch.
_MAX_LINES = 4


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


@njit(inline="always", cache=True)
def _has_bit(bits, k):
    return (bits[k >> 6] >> np.uint64(k & 63)) & np.uint64(1) != 0


@njit(cache=True, nogil=True)
def set_bits(bits, keys, value):
    """Sets (``value`` True) or clears the bits of ``keys`` in the bitmap ``bits``."""
    for j in range(keys.shape[0]):
        k = keys[j]
        if value:
            bits[k >> 6] |= np.uint64(1) << np.uint64(k & 63)
        else:
            bits[k >> 6] &= ~(np.uint64(1) << np.uint64(k & 63))


@njit(cache=True, nogil=True)
def first_occurrences(bits, keys, out):
    """Copies each distinct key of ``keys`` once into ``out``, in order of first
    occurrence, setting its bit; returns how many. ``bits`` starts clear for ``keys``."""
    n = 0
    for j in range(keys.shape[0]):
        k = keys[j]
        if not _has_bit(bits, k):
            bits[k >> 6] |= np.uint64(1) << np.uint64(k & 63)
            out[n] = k
            n += 1
    return n


@njit(inline="always", cache=True)
def _is_member(table_keys, bits, dense, k):
    if dense:
        return _has_bit(bits, k)
    return table_keys[_slot(table_keys, k, dense)] != EMPTY


@njit(cache=True, nogil=True)
def filed_offsets(optr, nodes, out, begin):
    """``out[t]``: how many edges are filed under ``nodes[:t]`` (``out`` has
    ``len(nodes) + 1``); ``begin[t]``: where those of ``nodes[t]`` start. The scans then
    read these two sequential arrays instead of ``optr`` at random, which halves their
    time: their prefetches no longer wait on an ``optr`` miss. Serial, prefetching
    ahead: as fast as two threads on a GraphSAINT node set (0.03 ms for 8700 nodes of
    the 1M-node bench graph), and no parallel loop, whose start takes the GIL."""
    out[0] = 0
    n = nodes.shape[0]
    for t in range(n):
        if t + NODES_AHEAD < n:
            prefetch(optr, nodes[t + NODES_AHEAD])
        x = nodes[t]
        begin[t] = optr[x]
        out[t + 1] = out[t] + optr[x + 1] - optr[x]


@njit(inline="always", cache=True)
def _prefetch_filed(array, begin, filed, t):
    """Prefetches the entries of ``array`` (``code`` or ``edge``) of the edges filed
    under local node ``t``."""
    if t < begin.shape[0]:
        prefetch_range(array, begin[t], min(begin[t] + filed[t + 1] - filed[t],
                                            begin[t] + _MAX_LINES * LINE // array.itemsize))


@njit(parallel=True, cache=True, nogil=True)
def scan_induced(code, tree, stride, table_keys, bits, dense, begin, filed, hits, counts):
    """One pass over the edges filed under the sampled nodes (an oriented adjacency,
    see :func:`graphbatch.graph_kernels.build_oriented`; ``begin`` and ``filed`` from
    :func:`filed_offsets`). ``counts[t]``: those of local
    node ``t`` whose other endpoint is sampled (in ``t``'s tree, in disjoint mode);
    their positions go to ``hits[filed[t]:]``. Dense tables test membership in ``bits``
    (one bit a node stays in cache where the ids table would not); hash tables probe."""
    for t in prange(begin.shape[0]):
        _prefetch_filed(code, begin, filed, t + PREFETCH_DISTANCE)
        base = tree[t] * stride if stride else 0
        j = filed[t]
        c = 0
        for q in range(begin[t], begin[t] + filed[t + 1] - j):
            if _is_member(table_keys, bits, dense, base + (code[q] >> 1)):
                hits[j + c] = q
                c += 1
        counts[t] = c


@njit(inline="always", cache=True)
def _put_edge(out_src, out_dst, out_edge, j, t, other, code, edge_id):
    """Output edge ``j``: between local nodes ``t`` and ``other``, from ``t`` where the
    oriented ``code``'s low bit says ``t`` is the source."""
    if code & 1:
        out_src[j] = t
        out_dst[j] = other
    else:
        out_src[j] = other
        out_dst[j] = t
    out_edge[j] = edge_id


@njit(parallel=True, cache=True, nogil=True)
def emit_induced(code, edge, tree, stride, table_keys, table_vals, dense, filed, hits,
                 offsets, out_src, out_dst, out_edge):
    """The edges :func:`scan_induced` found: local source, local target, edge id."""
    n = offsets.shape[0] - 1
    for t in prange(n):
        ahead = t + PREFETCH_DISTANCE
        if ahead < n and offsets[ahead + 1] > offsets[ahead]:
            q = hits[filed[ahead]]
            prefetch(edge, q)
            if dense:
                prefetch(table_vals, code[q] >> 1)
        base = tree[t] * stride if stride else 0
        first = filed[t]
        for i in range(offsets[t + 1] - offsets[t]):
            q = hits[first + i]
            j = offsets[t] + i
            other = table_vals[_slot(table_keys, base + (code[q] >> 1), dense)]
            _put_edge(out_src, out_dst, out_edge, j, t, other, code[q], edge[q])


@njit(cache=True, nogil=True)
def clear_dense(table, nodes):
    """Empties the dense table's entries of ``nodes``, ready for the next batch."""
    for i in range(nodes.shape[0]):
        table[nodes[i]] = EMPTY


# Node sets as a bitmap with per-word ranks: for a sorted node set, a member's local id
# (its position) is ``rank[k >> 6]`` plus the set bits below it in its word. Both
# arrays stay in cache (1 bit and 1/8 word a node), so an induced subgraph's local ids
# cost no random access to a per-node table, and the set needs no table to fill or
# empty.


@njit(cache=True, nogil=True)
def sorted_members(bits, rank, keys, out):
    """Sets the bits of ``keys`` (node ids, repeats allowed) in ``bits`` (clear before)
    and writes the distinct ones, sorted, to ``out[:n]``; returns ``n``. ``rank[w]``
    becomes the number of members below word ``w``, for every word holding a member.
    Sorted by scanning the bitmap where it is short, else by sorting the distinct keys."""
    n = first_occurrences(bits, keys, out)
    if bits.shape[0] <= 8 * n:
        n = 0
        for w in range(bits.shape[0]):
            rank[w] = n
            word = bits[w]
            while word:
                out[n] = (w << 6) + np.int64(trailing_zeros(word))
                n += 1
                word &= word - np.uint64(1)
        return n
    out[:n].sort()
    for t in range(n):
        w = out[t] >> 6
        if t == 0 or out[t - 1] >> 6 != w:
            rank[w] = t
    return n


@njit(cache=True, nogil=True)
def clear_members(bits, nodes):
    """Clears the words of ``nodes`` in ``bits``, ready for the next set."""
    for t in range(nodes.shape[0]):
        bits[nodes[t] >> 6] = 0


@njit(parallel=True, cache=True, nogil=True)
def member_edges(code, edge, bits, rank, begin, filed, chunks, src, dst, out_edge, found):
    """The edges among a sorted node set of :func:`sorted_members`, in one pass over the
    edges filed under its nodes (``begin`` and ``filed`` from :func:`filed_offsets`), by
    chunks of local nodes (``chunks[c]:chunks[c + 1]``). A hit's local source, local
    target and edge id go to ``src``, ``dst`` and ``out_edge`` from ``filed[chunks[c]]``
    on (the chunk's filed edges bound its hits); ``found[c]``: how many. ``edge`` is
    prefetched with ``code``, so a hit reads its id from cache."""
    for c in prange(chunks.shape[0] - 1):
        h = filed[chunks[c]]
        for t in range(chunks[c], chunks[c + 1]):
            _prefetch_filed(code, begin, filed, t + PREFETCH_DISTANCE)
            _prefetch_filed(edge, begin, filed, t + PREFETCH_DISTANCE)
            for q in range(begin[t], begin[t] + filed[t + 1] - filed[t]):
                k = code[q] >> 1
                w = k >> 6
                word = bits[w]
                below = np.uint64(1) << np.uint64(k & 63)
                if word & below:
                    local = rank[w] + np.int64(popcount(word & (below - np.uint64(1))))
                    _put_edge(src, dst, out_edge, h, t, local, code[q], edge[q])
                    h += 1
        found[c] = h - filed[chunks[c]]


@njit(cache=True, nogil=True)
def member_subgraph(optr, code, edge_ids, bits, rank, draws, nodes):
    """The subgraph induced by the distinct values of ``draws`` (node ids, repeats
    allowed), in one call: fewer GIL hand-offs between prefetch threads than one call
    a stage (numba takes the GIL twice for each parallel loop; there is one). ``bits``
    and ``rank`` are the thread's node set (clear before, and again after); ``nodes``
    (``[len(draws)]``) receives the sorted nodes. Returns ``(n, edge_index, edge)``:
    ``nodes[:n]`` are the nodes, ``edge_index`` ``[2, m]`` the local sources over the
    local targets, ``edge`` ``[m]`` the edge ids."""
    n = sorted_members(bits, rank, draws, nodes)
    begin = np.empty(n, dtype=np.int64)
    filed = np.empty(n + 1, dtype=np.int64)
    filed_offsets(optr, nodes[:n], filed, begin)
    chunks = np.append(np.arange(0, n, MEMBER_CHUNK), n)
    found = np.empty(chunks.shape[0] - 1, dtype=np.int64)
    spread = np.empty((2, filed[n]), dtype=np.int64)
    spread_edge = np.empty(filed[n], dtype=np.int64)
    member_edges(code, edge_ids, bits, rank, begin, filed, chunks, spread[0], spread[1],
                 spread_edge, found)
    clear_members(bits, draws)
    # Each chunk's edges, packed.
    edge_index = np.empty((2, found.sum()), dtype=np.int64)
    edge = np.empty(edge_index.shape[1], dtype=np.int64)
    j = 0
    for c in range(found.shape[0]):
        h = filed[chunks[c]]
        edge_index[:, j:j + found[c]] = spread[:, h:h + found[c]]
        edge[j:j + found[c]] = spread_edge[h:h + found[c]]
        j += found[c]
    return n, edge_index, edge
