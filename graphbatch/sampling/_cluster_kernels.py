"""numba kernels of Cluster-GCN batch assembly. Pure functions of validated arrays."""
from __future__ import annotations

from numba import njit, prange


@njit(parallel=True, cache=True, nogil=True)
def gather_ranges(values, starts, ends, offsets, out):
    """``out[offsets[i]:offsets[i + 1]] = values[starts[i]:ends[i]]`` for every range ``i``."""
    for i in prange(starts.shape[0]):
        o = offsets[i]
        for j in range(starts[i], ends[i]):
            out[o + j - starts[i]] = values[j]
