"""numba kernels of the heterogeneous neighbor sampler. Pure functions of validated
numpy arrays.

Every node has one global id (its type's offset plus its id within the type), and the
incoming edges of all edge types live in one CSC whose columns are *segments*: node
``v`` of type ``t`` owns ``k_t`` consecutive segments, one per edge type ending in
``t`` (its *slots*), so segment ``seg_base[t] + (v - node_offset[t]) * k_t + s`` holds
``v``'s incoming edges of edge type ``in_rel[in_ptr[t] + s]``. A hop is then one
parallel pass over the frontier, whatever its node types: :func:`count_typed_picks`
(how many neighbors each frontier node gets, over all its edge types), a prefix sum,
and :func:`pick_typed` (which edges, their source ids, edge ids and dedup keys).
Each edge type ``r`` of frontier position ``i`` at hop ``h`` draws from its own
counter-based stream ``(h * R + r, i)``, so no thread count changes a batch; a segment
is counted, picked and expanded as the homogeneous sampler does a node
(:func:`~graphbatch.sampling._neighbor_kernels.num_picks`, ``pick_segment``,
``expand_segment``).

:func:`count_types`, :func:`destinations`, :func:`scatter_nodes` and
:func:`scatter_edges` then turn the sampled global ids back into ids per type: a stable
counting sort by type, in parallel over chunks.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from graphbatch.sampling._neighbor_kernels import expand_segment, num_picks, pick_segment
from graphbatch.sampling._rng import stream


@njit(inline="always", cache=True)
def type_of(offsets, v):
    """The type ``t`` of global id ``v``: ``offsets[t] <= v < offsets[t + 1]`` (types
    without ids, where ``offsets`` repeats, are skipped)."""
    lo = 0
    hi = offsets.shape[0] - 2
    while lo < hi:
        m = (lo + hi + 1) // 2
        if offsets[m] <= v:
            lo = m
        else:
            hi = m - 1
    return lo


@njit(inline="always", cache=True)
def _first_segment(node_offset, seg_base, in_ptr, v):
    """``(type, first segment, number of slots)`` of global node ``v``."""
    t = type_of(node_offset, v)
    k = in_ptr[t + 1] - in_ptr[t]
    return t, seg_base[t] + (v - node_offset[t]) * k, k


@njit(parallel=True, cache=True, nogil=True)
def count_typed_picks(segptr, node_offset, seg_base, in_ptr, in_rel, fanouts, hop, replace,
                      frontier, counts):
    """``counts[i]``: neighbors to pick for ``frontier[i]`` over all its edge types, edge
    type ``r`` taking ``fanouts[r, hop]``."""
    for i in prange(frontier.shape[0]):
        t, first, k = _first_segment(node_offset, seg_base, in_ptr, frontier[i])
        total = 0
        for s in range(k):
            total += num_picks(segptr[first + s + 1] - segptr[first + s],
                               fanouts[in_rel[in_ptr[t] + s], hop], replace)
        counts[i] = total


@njit(parallel=True, cache=True, nogil=True)
def pick_typed(segptr, indices, perm, node_offset, seg_base, in_ptr, in_rel, fanouts, hop,
               replace, key, frontier, offsets, frontier_first_local, tree, stride,
               out_pos, out_node, out_key, out_edge, out_dst):
    """The picks of ``frontier[i]`` at ``offsets[i]:offsets[i + 1]``, edge type by edge
    type in slot order: CSC position, source node id, dedup key, global edge id and
    local target (``frontier_first_local + i``). In disjoint mode ``tree`` holds each
    local node's tree and ``stride`` is the number of nodes; else ``stride`` is 0."""
    num_rel = fanouts.shape[0]
    for i in prange(frontier.shape[0]):
        t, first, k = _first_segment(node_offset, seg_base, in_ptr, frontier[i])
        dst = frontier_first_local + i
        base = tree[dst] * stride if stride else 0
        lo = offsets[i]
        for s in range(k):
            r = in_rel[in_ptr[t] + s]
            fanout = fanouts[r, hop]
            start = segptr[first + s]
            deg = segptr[first + s + 1] - start
            n = num_picks(deg, fanout, replace)
            if n == 0:
                continue
            pick_segment(start, deg, n, fanout, replace, stream(key, hop * num_rel + r, i),
                         out_pos, lo)
            expand_segment(out_pos, lo, lo + n, indices, perm, base, dst, out_node, out_key,
                           out_edge, out_dst)
            lo += n


@njit(parallel=True, cache=True, nogil=True)
def count_types(ids, offsets, hop_ends, chunk, out_type, out_counts):
    """``out_type[j]``: the type of global id ``ids[j]`` (node or edge ids, ``offsets``
    as in :func:`type_of`); ``out_counts[c, t, h]`` (zeroed before): the ids of type
    ``t`` and hop ``h`` in chunk ``c`` (``ids[c * chunk:(c + 1) * chunk]``), where hop
    ``h``'s ids end at ``hop_ends[h]``."""
    n = ids.shape[0]
    for c in prange(out_counts.shape[0]):
        lo = c * chunk
        h = np.searchsorted(hop_ends, lo, side="right")
        for j in range(lo, min(lo + chunk, n)):
            while j >= hop_ends[h]:
                h += 1
            t = type_of(offsets, ids[j])
            out_type[j] = t
            out_counts[c, t, h] += 1


@njit(parallel=True, cache=True, nogil=True)
def destinations(types, base, chunk, out):
    """``out[j]``: where item ``j`` (of type ``types[j]``) goes when items are grouped by
    type, each type in item order; ``base[c, t]``: where chunk ``c``'s items of type
    ``t`` start."""
    n = types.shape[0]
    for c in prange(base.shape[0]):
        cursor = base[c].copy()
        for j in range(c * chunk, min((c + 1) * chunk, n)):
            t = types[j]
            out[j] = cursor[t]
            cursor[t] += 1


@njit(parallel=True, cache=True, nogil=True)
def scatter_nodes(nodes, tree, types, dest, node_offset, type_start, out_local, out_ids,
                  out_tree):
    """Sampled nodes grouped by type (``dest`` from :func:`destinations`): ``out_ids``
    their ids within the type, type ``t``'s at ``type_start[t]:type_start[t + 1]``
    (``out_tree`` likewise for ``tree``, when not empty); ``out_local[j]``: node
    ``j``'s position among its type's."""
    for j in prange(nodes.shape[0]):
        t = types[j]
        q = dest[j]
        out_local[j] = q - type_start[t]
        out_ids[q] = nodes[j] - node_offset[t]
        if tree.shape[0]:
            out_tree[q] = tree[j]


@njit(parallel=True, cache=True, nogil=True)
def scatter_edges(src, dst, edge, types, dest, edge_offset, type_start, local, out_index,
                  out_eid):
    """Sampled edges (endpoints ``src``, ``dst`` in sampled order, global ids ``edge``)
    grouped by edge type (``dest`` from :func:`destinations`): edge type ``r`` gets
    ``out_eid[type_start[r]:type_start[r + 1]]`` (ids within the type) and the
    ``2 * m_r`` entries of ``out_index`` from ``2 * type_start[r]``: its local sources,
    then its local targets (``local`` gives them), a contiguous ``[2, m_r]`` block."""
    for j in prange(edge.shape[0]):
        r = types[j]
        q = dest[j]
        k = q - type_start[r]
        block = 2 * type_start[r]
        out_index[block + k] = local[src[j]]
        out_index[block + type_start[r + 1] - type_start[r] + k] = local[dst[j]]
        out_eid[q] = edge[j] - edge_offset[r]


@njit(cache=True, nogil=True)
def node_starts(segptr, node_offset, seg_base, in_ptr, out):
    """``out[v]``: where global node ``v``'s incoming edges (all its segments) start;
    ``out[N]`` the edge count: a node-level CSC over the same ``indices``."""
    n = out.shape[0] - 1
    for t in range(node_offset.shape[0] - 1):
        k = in_ptr[t + 1] - in_ptr[t]
        for v in range(node_offset[t], node_offset[t + 1]):
            out[v] = segptr[seg_base[t] + (v - node_offset[t]) * k]
    out[n] = segptr[segptr.shape[0] - 1]
