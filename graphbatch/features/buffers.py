"""Host output buffers for gathered rows: huge-page backed, pinned when CUDA is present,
and reused once no batch holds them and no copy reads them.

A batch's node features are hundreds of MB on large graphs. An allocating
``index_select`` spends most of its time in page faults on the new memory (measured
here: 71 ms for 435k rows of 400 B, against 19 ms into a buffer already touched), so
buffers are kept and refilled. A buffer must never be overwritten while someone still
holds a batch in it (``list(loader)``, a loop keeping the previous batch): each buffer
is handed out through a fresh numpy view, which every tensor and view made from it keeps
alive, and is free again only once that view is gone.

A pinned buffer must also outlast the copies reading it: ``batch.to('cuda',
non_blocking=True)`` only queues the copy, and the batch may be dropped before it runs.
torch tracks that for the pinned memory it allocates itself, not for ours, so when a
buffer's last view goes its registration records a CUDA event on the current stream of
the current device (after any copy queued there), and the buffer is reused only once
that event has completed. Copies queued on another stream, or for another device, must
be waited for before the batch is dropped.
"""
from __future__ import annotations

import functools
import math
import mmap
import os
import threading
import weakref
from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor

_HUGE_PAGE = 2 << 20
#: Below this size a plain allocation is as fast (malloc reuses memory already
#: touched); above it, malloc maps fresh pages, whose faults cost as much as the gather
#: (a GraphSAINT batch: 3.5 MB of rows, 0.65 ms allocating against 0.44 ms pooled).
POOL_MIN_BYTES = 1 << 18


@functools.lru_cache(maxsize=None)
def element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


@functools.lru_cache(maxsize=None)
def numpy_dtype(dtype: torch.dtype) -> Optional[np.dtype]:
    """numpy's equivalent of ``dtype``, or None where numpy has none (bfloat16)."""
    try:
        return torch.empty(0, dtype=dtype).numpy().dtype
    except (TypeError, RuntimeError):
        return None


def mapped_bytes(nbytes: int, dontfork: bool = False) -> np.ndarray:
    """``nbytes`` (rounded up to 2 MiB) of fresh anonymous memory as a uint8 array,
    advised to use transparent huge pages, which cuts first-touch faults 512-fold.
    ``dontfork``: not mapped in forked children (pinned memory: the kernel would copy
    its pages into every forked worker)."""
    size = max(_HUGE_PAGE, -(-nbytes // _HUGE_PAGE) * _HUGE_PAGE)
    buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        buf.madvise(mmap.MADV_HUGEPAGE)
    if dontfork and hasattr(mmap, "MADV_DONTFORK"):
        buf.madvise(mmap.MADV_DONTFORK)
    return np.frombuffer(buf, dtype=np.uint8)


class BufferPool:
    """Up to ``capacity`` reusable host buffers.

    Args:
        capacity: buffers kept for reuse; more live batches than that get buffers of
            their own, freed as usual.
        register: called once on each new buffer (``[nbytes]`` uint8), e.g. to pin it
            in place for CUDA, in the process that made the pool only (CUDA cannot be
            used in a forked worker; workers' buffers stay plain). Its result is kept
            alive while the pool keeps the buffer or a tensor uses it; where it has
            ``fence()`` and ``idle()`` (a
            :class:`~graphbatch.features.cuda.PinnedRegistration`), ``fence()`` is
            called when a buffer's last view goes, and the buffer is reused once
            ``idle()``.
    """

    def __init__(self, capacity: int = 6, register: Optional[Callable[[np.ndarray], object]] = None,
                 _owner: Optional[int] = None):
        self.capacity = capacity
        self.register = register
        self._owner = os.getpid() if _owner is None else _owner
        self._pid = os.getpid()
        self._buffers: list[list] = []  # [raw uint8 array, registration, free]
        self.allocations = 0  # new buffers made, for tests and benchmarks
        # Prefetch threads gather concurrently. Reentrant: a garbage collection while
        # it is held may finalize a view, which frees its buffer under it.
        self._lock = threading.RLock()

    def __getstate__(self) -> dict:
        # Buffers are per process: a pickled pool (sent to a worker) starts empty.
        return {"capacity": self.capacity, "register": self.register, "owner": self._owner}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["capacity"], state["register"], state["owner"])

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """An uninitialised tensor on a buffer no live tensor uses."""
        nbytes = math.prod(shape) * element_size(dtype)
        if nbytes < POOL_MIN_BYTES:
            return torch.empty(shape, dtype=dtype)
        typed = numpy_dtype(dtype)
        with self._lock:
            slot = self._free_slot(nbytes)
            # A fresh ndarray object: its lifetime marks the use. Typed and shaped by
            # numpy where it can (torch operations release the GIL, letting other
            # prefetch threads in); numpy makes a view of a view refer to the memory's
            # owner, so the array tracked is the one the tensor holds.
            view = slot[0][:nbytes]
            if typed is not None:
                view = view.view(typed).reshape(shape)
            slot[2] = False
        # When the view goes, the copies queued from the buffer are fenced, and only
        # then is the buffer free; the registration lives as long as the view too, not
        # only as long as the pool (a batch may outlive its store).
        weakref.finalize(view, _last_view_gone, self._lock, slot).atexit = False
        tensor = torch.from_numpy(view)
        return tensor if typed is not None else tensor.view(dtype).view(shape)

    def _free_slot(self, nbytes: int) -> list:
        if os.getpid() != self._pid:
            # A forked worker: the parent's pinned buffers are not mapped here.
            self._buffers, self._pid = [], os.getpid()
        free = [s for s in self._buffers if s[2]]
        fitting = [s for s in free if s[0].nbytes >= nbytes]
        ready = [s for s in fitting if _idle(s[1])]
        if ready:
            return min(ready, key=lambda s: s[0].nbytes)
        if fitting and len(self._buffers) >= self.capacity:
            # Every fitting buffer is still read by a copy and the pool is full: wait
            # for one rather than pin a new buffer for every batch.
            slot = min(fitting, key=lambda s: s[0].nbytes)
            slot[1].wait()
            return slot
        self.allocations += 1
        pins = self.register is not None and os.getpid() == self._owner
        raw = mapped_bytes(nbytes + nbytes // 4, dontfork=pins)  # headroom: sizes vary
        slot = [raw, self.register(raw) if pins else None, True]
        if len(self._buffers) < self.capacity:
            self._buffers.append(slot)
        elif free:  # a free buffer too small for today's batches: replace it
            i = next(i for i, s in enumerate(self._buffers) if s is free[0])
            self._buffers[i] = slot
        return slot  # else a one-off buffer, freed with its last view


def _idle(registration: object) -> bool:
    idle = getattr(registration, "idle", None)
    return idle is None or idle()


def _last_view_gone(lock: threading.RLock, slot: list) -> None:
    fence = getattr(slot[1], "fence", None)
    if fence is not None:
        fence()
    with lock:
        slot[2] = True
