"""The CPU gather backend: rows copied by parallel numba kernels.

The rows are copied as machine words whatever the table's dtype (a row of 100 float32
is 50 uint64), so one compiled kernel per word size serves every dtype, half precision
and bool included. The kernels run on numba's thread pool, the one the samplers use:
a prefetch thread gathering while another samples shares the cores with it instead of
waking a second pool (torch's OpenMP threads spin after each gather, and on few cores
starved the sampling kernels of about a third of their time).
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange
from torch import Tensor

from graphbatch._intrinsics import prefetch_range
from graphbatch.features.buffers import numpy_dtype

#: How many rows ahead a gather prefetches a row.
_ROWS_AHEAD = 8


@njit(parallel=True, cache=True, nogil=True)
def gather_rows(table, index, out):
    """``out[i] = table[index[i]]`` for ``[rows, width]`` arrays of one dtype."""
    n = index.shape[0]
    width = table.shape[1]
    flat = table.reshape(-1)
    for i in prange(n):
        if i + _ROWS_AHEAD < n:
            start = index[i + _ROWS_AHEAD] * width
            prefetch_range(flat, start, start + width)
        row = index[i]
        for j in range(width):
            out[i, j] = table[row, j]


def _words(t: Tensor) -> np.ndarray:
    """``t`` (contiguous, ``[rows, ...]``) as a ``[rows, width]`` numpy array of the
    widest unsigned words that tile a row. Made with numpy where it has the dtype:
    torch operations release the GIL."""
    if numpy_dtype(t.dtype) is not None:
        array = t.numpy()
        raw = array.reshape(array.shape[0], -1).view(np.uint8)
    else:
        raw = t.reshape(t.shape[0], -1).view(torch.uint8).numpy()
    for dtype in (np.uint64, np.uint32, np.uint16):
        if raw.shape[1] % np.dtype(dtype).itemsize == 0:
            return raw.view(dtype)
    return raw


def gather_into(table: Tensor, index: Tensor, out: Tensor) -> Tensor:
    """Rows ``index`` (int64, validated) of the contiguous CPU ``table`` into ``out``
    (``[len(index), *table.shape[1:]]``, same dtype, contiguous); returns ``out``."""
    if out.numel() > 0:
        gather_rows(_words(table), index.numpy(), _words(out))
    return out
