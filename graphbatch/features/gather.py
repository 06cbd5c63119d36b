"""CPU row gathering into freshly mapped, huge-page-backed buffers.

A batch's node features are hundreds of MB on large graphs. An allocating
``index_select`` spends most of its time in page faults on the new buffer (measured
here: 71 ms for 435k rows of 400 B, against 19 ms into a buffer already touched).
Mapping the output with ``MADV_HUGEPAGE`` cuts the faults 512-fold (29 ms) while every
batch still owns its memory, so nothing a caller holds is ever overwritten.
"""
from __future__ import annotations

import mmap

import numpy as np
import torch
from torch import Tensor

#: Outputs below this size use a plain allocation; mapping them would not pay.
HUGE_PAGE_MIN_BYTES = 4 << 20
_HUGE_PAGE = 2 << 20


def _mapped_empty(shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """An uninitialised CPU tensor on its own anonymous mapping, advised to use huge pages.

    The mapping is released when the last tensor or view on it is freed.
    """
    nbytes = int(np.prod(shape)) * torch.empty((), dtype=dtype).element_size()
    size = -(-nbytes // _HUGE_PAGE) * _HUGE_PAGE
    buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        buf.madvise(mmap.MADV_HUGEPAGE)
    flat = torch.frombuffer(buf, dtype=torch.uint8, count=nbytes)
    return flat.view(dtype).view(shape)


def gather_rows(src: Tensor, index: Tensor, dim: int = 0) -> Tensor:
    """``src.index_select(dim, index)`` for CPU tensors, faster for large outputs.

    Args:
        src: any CPU tensor.
        index: ``[n]`` int64 ids along ``dim``, already validated by the caller.

    Returns:
        a new tensor, ``src`` with ``n`` slices along ``dim``.
    """
    shape = list(src.shape)
    shape[dim] = index.numel()
    nbytes = int(np.prod(shape)) * src.element_size()
    if src.device.type != "cpu" or nbytes < HUGE_PAGE_MIN_BYTES or src.requires_grad:
        return src.index_select(dim, index)
    out = _mapped_empty(tuple(shape), src.dtype)
    return torch.index_select(src, dim, index, out=out)
