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


@njit(cache=True, nogil=True)
def _source_clusters(indptr, indices, node_perm, part, lo, hi, seen, out):
    """The distinct clusters of the sources of the in-edges of ``node_perm[lo:hi]``, into
    ``out`` (returns how many, unsorted); ``seen`` ([P] bool, all False) is left so."""
    k = 0
    for i in range(lo, hi):
        v = node_perm[i]
        for p in range(indptr[v], indptr[v + 1]):
            c = part[indices[p]]
            if not seen[c]:
                seen[c] = True
                out[k] = c
                k += 1
    for j in range(k):
        seen[out[j]] = False
    return k


@njit(cache=True, nogil=True)
def count_cluster_pairs(indptr, indices, node_perm, part, partptr, out_pair_ptr):
    """``out_pair_ptr`` ([P + 1]): offsets of each target cluster's source clusters."""
    num_parts = partptr.shape[0] - 1
    seen = np.zeros(num_parts, dtype=np.bool_)
    buf = np.empty(num_parts, dtype=np.int64)
    out_pair_ptr[0] = 0
    for c in range(num_parts):
        k = _source_clusters(indptr, indices, node_perm, part, partptr[c], partptr[c + 1],
                             seen, buf)
        out_pair_ptr[c + 1] = out_pair_ptr[c] + k


@njit(cache=True, nogil=True)
def fill_cluster_pairs(indptr, indices, perm, node_perm, part, partptr, rank, pair_ptr,
                       out_pair_part, out_pair_start, out_src_rank, out_dst_rank, out_edge):
    """Files every edge under (target cluster, source cluster): pair ``r`` (of target
    cluster ``c`` when ``pair_ptr[c] <= r < pair_ptr[c + 1]``, sources sorted by cluster)
    is source cluster ``out_pair_part[r]`` and holds the edges at
    ``out_pair_start[r]:out_pair_start[r + 1]``, ordered by target rank, then CSC order;
    an edge is its source's and target's rank within their clusters and its id."""
    num_parts = partptr.shape[0] - 1
    seen = np.zeros(num_parts, dtype=np.bool_)
    count = np.zeros(num_parts, dtype=np.int64)
    cursor = np.empty(num_parts, dtype=np.int64)
    start = 0
    for c in range(num_parts):
        lo, hi = partptr[c], partptr[c + 1]
        r0, r1 = pair_ptr[c], pair_ptr[c + 1]
        sources = out_pair_part[r0:r1]
        _source_clusters(indptr, indices, node_perm, part, lo, hi, seen, sources)
        sources.sort()
        for i in range(lo, hi):
            v = node_perm[i]
            for p in range(indptr[v], indptr[v + 1]):
                count[part[indices[p]]] += 1
        for r in range(r0, r1):
            out_pair_start[r] = start
            cursor[sources[r - r0]] = start
            start += count[sources[r - r0]]
            count[sources[r - r0]] = 0
        for i in range(lo, hi):
            v = node_perm[i]
            for p in range(indptr[v], indptr[v + 1]):
                u = indices[p]
                q = cursor[part[u]]
                cursor[part[u]] = q + 1
                out_src_rank[q] = rank[u]
                out_dst_rank[q] = i - lo
                out_edge[q] = perm[p]
    out_pair_start[pair_ptr[num_parts]] = start


@njit(parallel=True, cache=True, nogil=True)
def count_batch_edges(pair_ptr, pair_part, pair_start, clusters, slot, counts):
    """``counts[a]``: the edges into batch cluster ``clusters[a]`` from batch clusters
    (``slot[cluster] >= 0``)."""
    for a in prange(clusters.shape[0]):
        c = clusters[a]
        total = 0
        for r in range(pair_ptr[c], pair_ptr[c + 1]):
            if slot[pair_part[r]] >= 0:
                total += pair_start[r + 1] - pair_start[r]
        counts[a] = total


@njit(parallel=True, cache=True, nogil=True)
def fill_batch_edges(pair_ptr, pair_part, pair_start, src_rank, dst_rank, edge, clusters,
                     slot, first_local, offsets, out_src, out_dst, out_edge):
    """The edges :func:`count_batch_edges` counted, run by run: local source and target
    (their cluster's first local id plus their rank in it) and edge id."""
    for a in prange(clusters.shape[0]):
        c = clusters[a]
        j = offsets[a]
        for r in range(pair_ptr[c], pair_ptr[c + 1]):
            s = slot[pair_part[r]]
            if s < 0:
                continue
            for q in range(pair_start[r], pair_start[r + 1]):
                out_src[j] = first_local[s] + src_rank[q]
                out_dst[j] = first_local[a] + dst_rank[q]
                out_edge[j] = edge[q]
                j += 1
