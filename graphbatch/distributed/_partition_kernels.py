"""numba kernels of the partitioned neighbor sampler. Pure functions of validated arrays.

They reuse the single-machine sampler's per-node helpers
(:func:`~graphbatch.sampling._neighbor_kernels.pick_segment`), inlined here: numba's
cache keys a kernel on its own file's contents only, so after editing those helpers,
delete this module's files in ``__pycache__`` too.
"""
from __future__ import annotations

from numba import njit, prange

from graphbatch.sampling._neighbor_kernels import pick_segment
from graphbatch.sampling._rng import stream


@njit(parallel=True, cache=True, nogil=True)
def pick_requests(indptr, local, offsets, fanout, replace, keys, positions, hop, out_pos):
    """As :func:`~graphbatch.sampling._neighbor_kernels.pick_uniform` for requests from
    other ranks: request ``i`` is owned node ``local[i]`` (a row of ``indptr``), at
    position ``positions[i]`` of the frontier of a batch with key ``keys[i]``, and draws
    from stream ``(hop, positions[i])`` under ``keys[i]``, as the single-machine sampler
    does for that frontier position. Writes the picked positions (of the shard's CSC)
    to ``out_pos[offsets[i]:offsets[i + 1]]``."""
    for i in prange(local.shape[0]):
        v = local[i]
        start = indptr[v]
        lo = offsets[i]
        k = offsets[i + 1] - lo
        if k == 0:
            continue
        pick_segment(start, indptr[v + 1] - start, k, fanout, replace,
                     stream(keys[i], hop, positions[i]), out_pos, lo)


@njit(parallel=True, cache=True, nogil=True)
def scatter_segments(nbr, edge, src_offsets, target, dst_offsets, out_nbr, out_edge):
    """Moves segment ``j`` of ``nbr`` and ``edge`` (``src_offsets[j]:src_offsets[j + 1]``)
    to segment ``target[j]`` of ``out_nbr`` and ``out_edge`` (from
    ``dst_offsets[target[j]]``): the picks received grouped by owner, put back in
    frontier order."""
    for j in prange(target.shape[0]):
        d = dst_offsets[target[j]] - src_offsets[j]
        for p in range(src_offsets[j], src_offsets[j + 1]):
            out_nbr[p + d] = nbr[p]
            out_edge[p + d] = edge[p]
