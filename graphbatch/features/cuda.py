"""Zero-copy reads of pinned host tables from a CUDA device, over unified addressing.

A host table is pinned in place (``cuMemHostRegister``, portable and mapped: no copy,
where ``Tensor.pin_memory`` would copy and round the allocation up to a power of two)
and exposed to torch as a CUDA tensor at the table's device address, so
``index_select`` on the device reads exactly the rows it needs over PCIe/NVLink: no CPU
gather and no staging copy.

The rules this module keeps, from CUDA's documentation:

- Pinning works on whole pages, and a page can be registered once: registrations are
  kept in a map of page ranges, shared and counted, so two tables on one page (small
  labels and masks), a view and its base, or two stores over one tensor never register
  a page twice. Memory pinned by someone else (``Tensor.pin_memory()``) is used as is.
- Memory is unpinned only after the work that reads it: every use through a
  registration leaves a :meth:`PinnedRegistration.fence` (a CUDA event), and
  unregistering waits for them.
- The device address of pinned memory is the host address only where the device says
  so (``CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM``); elsewhere it is asked for.
- The alias is made on the device asked for, at that address, never copied there.

No GPU was available where this was written: the rules are checked on the CPU with a
fake driver and fake events (``tests/test_cuda_mocked.py``) and on a GPU by
``tests/test_cuda_zero_copy.py``.
"""
from __future__ import annotations

import collections
import mmap
import os
import threading
import warnings
import weakref
from typing import Optional

import torch
from torch import Tensor

from graphbatch.features import cuda_driver
from graphbatch.features.cuda_driver import driver

PAGE = mmap.PAGESIZE


def cuda_available() -> bool:
    return torch.cuda.is_available()


def ordinal_of(device: Optional[torch.device]) -> int:
    """The CUDA device index ``device`` names (the current device for ``'cuda'``)."""
    if device is not None and device.index is not None:
        return device.index
    return torch.cuda.current_device()


class _Range:
    """A registered page range ``[start, end)``: how many registrations hold it, and
    the device whose context registered it (unregistered there too)."""

    __slots__ = ("start", "end", "count", "ordinal")

    def __init__(self, start: int, end: int, ordinal: int) -> None:
        self.start, self.end, self.count, self.ordinal = start, end, 0, ordinal


#: Registered page ranges, disjoint, in address order.
_RANGES: list[_Range] = []
_LOCK = threading.Lock()


def registered_ranges() -> list[tuple[int, int, int]]:
    """``(start, end, count)`` of every page range pinned by this module (for tests)."""
    with _LOCK:
        for message in _drain_deferred():
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        return [(r.start, r.end, r.count) for r in _RANGES]


def _pages(ptr: int, nbytes: int) -> tuple[int, int]:
    return ptr - ptr % PAGE, -(-(ptr + nbytes) // PAGE) * PAGE


def _pin(start: int, end: int, ordinal: int, name: str) -> list[_Range]:
    """Pins the pages ``[start, end)``: parts no range covers are registered now, and
    every range covering a part is counted once more. Returns the ranges held. Under
    ``_LOCK``."""
    held = [r for r in _RANGES if r.start < end and start < r.end]
    gaps, cursor = [], start
    for r in held:
        if r.start > cursor:
            gaps.append((cursor, r.start))
        cursor = max(cursor, r.end)
    if cursor < end:
        gaps.append((cursor, end))
    new: list[_Range] = []
    if gaps:
        drv = driver()
        with drv.context(ordinal):
            for a, b in gaps:
                err = drv.host_register(
                    a, b - a, cuda_driver.REGISTER_PORTABLE | cuda_driver.REGISTER_DEVICEMAP)
                if err != cuda_driver.SUCCESS:
                    for r in new:
                        drv.host_unregister(r.start)
                    hint = (" (part of it is already pinned by someone else, "
                            "Tensor.pin_memory() say: pin the whole table or none of it)"
                            if err == cuda_driver.ALREADY_REGISTERED else "")
                    raise RuntimeError(
                        f"pinning {name} ({end - start} bytes at {start:#x}) failed: "
                        f"cuMemHostRegister: {drv.error_string(err)}{hint}")
                new.append(_Range(a, b, ordinal))
    _RANGES.extend(new)
    _RANGES.sort(key=lambda r: r.start)
    held = sorted(held + new, key=lambda r: r.start)
    for r in held:
        r.count += 1
    return held


class Fences:
    """The last CUDA event recorded on each stream after a use of some memory: the
    memory may be reused, rewritten or unpinned once they have completed. Thread-safe:
    prefetch threads fence while another thread waits."""

    def __init__(self) -> None:
        self._events: dict = {}  # stream -> event (a stream runs in order: its last suffices)
        self._lock = threading.Lock()

    def add(self, stream, event) -> None:
        with self._lock:
            self._events[stream] = event

    def _done(self, stream, event) -> None:
        with self._lock:
            if self._events.get(stream) is event:  # not a newer one recorded meanwhile
                del self._events[stream]

    def idle(self) -> bool:
        """Whether every use fenced so far is done."""
        with self._lock:
            pending = list(self._events.items())
        for stream, event in pending:
            if not event.query():
                return False
            self._done(stream, event)
        return True

    def wait(self) -> None:
        """Blocks until every use fenced so far is done."""
        with self._lock:
            pending = list(self._events.items())
        for stream, event in pending:
            event.synchronize()
            self._done(stream, event)

    def order_after(self, stream) -> None:
        """Makes ``stream``'s next work wait for the uses fenced on other streams."""
        with self._lock:
            pending = [e for s, e in self._events.items() if s != stream]
        for event in pending:
            stream.wait_event(event)


#: Releases a finalizer could not make at once (``_LOCK`` was held, maybe by the very
#: code that set off the garbage collection running the finalizer): made by the next
#: holder of the lock.
_DEFERRED: collections.deque = collections.deque()


def _unpin(ranges: list[_Range], fences: Fences, name: str, strict: bool, pid: int) -> None:
    """Waits for ``fences`` (the uses of a registration), then lets go of its
    ``ranges``, unregistering those no registration holds any more. A failed
    unregister raises (``strict``) or warns. Nothing happens outside process ``pid``,
    which registered them. Run by a finalizer (not ``strict``), it never waits for
    ``_LOCK``: a collection may run it in a thread holding the lock."""
    if os.getpid() != pid:
        return
    fences.wait()
    if not _LOCK.acquire(blocking=strict):
        _DEFERRED.append((ranges, name))
        return
    try:
        errors = _let_go(ranges, name)
        errors += _drain_deferred()
    finally:
        _LOCK.release()
    if errors:
        message = "; ".join(errors)
        if strict:
            raise RuntimeError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)


def _let_go(ranges: list[_Range], name: str) -> list[str]:
    """Lets go of ``ranges``, unregistering those no one holds any more; returns the
    failures. Under ``_LOCK``."""
    done = []
    for r in ranges:
        r.count -= 1
        if r.count == 0:
            _RANGES.remove(r)
            done.append(r)
    ranges.clear()
    errors = []
    if done:
        drv = driver()
        for r in done:
            with drv.context(r.ordinal):
                err = drv.host_unregister(r.start)
            if err != cuda_driver.SUCCESS:
                errors.append(f"unpinning {name} failed: cuMemHostUnregister: "
                              f"{r.end - r.start} bytes at {r.start:#x}: {drv.error_string(err)}")
    return errors


def _drain_deferred() -> list[str]:
    """Makes the releases finalizers deferred. Under ``_LOCK``."""
    errors = []
    while _DEFERRED:
        ranges, name = _DEFERRED.popleft()
        errors += _let_go(ranges, name)
    return errors


class PinnedRegistration:
    """Pins ``nbytes`` at ``ptr`` in place (whole pages) until :meth:`release` or until
    this object is freed, keeping ``owner`` (the tensor or array owning the memory)
    alive meanwhile. Memory pinned by someone else is used as it is.

    Args:
        owner: what owns the memory.
        ptr, nbytes: the bytes to pin.
        name: what the memory is, for error messages (``"table 'x'"``).
        ordinal: the device whose context registers it (the current one by default).
        pinned_elsewhere: whether the memory reads as pinned (``Tensor.is_pinned()``):
            where no range of this module overlaps it, someone else pinned it (torch's
            ``pin_memory()``, say), and it is used as it is.
    """

    def __init__(self, owner: object, ptr: int, nbytes: int, name: str = "host memory",
                 ordinal: Optional[int] = None, pinned_elsewhere: bool = False) -> None:
        self.owner = owner
        self.ptr = ptr
        self.nbytes = nbytes
        self.name = name
        self.fences = Fences()
        self._ranges: list[_Range] = []
        # A forked worker inherits this object but not the CUDA context: there it
        # does nothing (the memory is the worker's private copy; the parent unpins).
        self._pid = os.getpid()
        if nbytes == 0:
            return
        start, end = _pages(ptr, nbytes)
        with _LOCK:
            ours = any(r.start < end and start < r.end for r in _RANGES)
            if ours or not pinned_elsewhere:
                self._ranges = _pin(start, end, ordinal_of(None) if ordinal is None
                                    else ordinal, name)
            errors = _drain_deferred()
        for message in errors:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        self._finalizer = weakref.finalize(self, _unpin, self._ranges, self.fences, name,
                                           False, self._pid)
        self._finalizer.atexit = False  # the process's end unpins everything anyway

    @property
    def single_range(self) -> bool:
        """Whether one registration holds all of the memory (its device addresses are
        then contiguous wherever they differ from the host's)."""
        return len(self._ranges) <= 1

    def fence(self, stream=None):
        """Marks a use of the memory by the work queued so far on ``stream`` (default:
        the current stream of the current device): it is not unpinned (or reused)
        before that work is done. Returns the event recorded (None in a worker)."""
        if os.getpid() != self._pid:
            return None
        if stream is None:
            stream = torch.cuda.current_stream()
        event = torch.cuda.Event()
        event.record(stream)
        self.fences.add(stream, event)
        return event

    def idle(self) -> bool:
        """Whether every use fenced so far is done."""
        return os.getpid() != self._pid or self.fences.idle()

    def wait(self) -> None:
        """Blocks until every use fenced so far is done."""
        if os.getpid() == self._pid:
            self.fences.wait()

    def release(self) -> None:
        """Waits for the fenced uses, then unpins (idempotent); raises if CUDA refuses."""
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None and finalizer.detach() is not None:
            _unpin(self._ranges, self.fences, self.name, True, self._pid)


def register_array(raw) -> PinnedRegistration:
    """Pins a numpy array's memory (a :class:`~graphbatch.features.buffers.BufferPool`
    hook): a batch buffer."""
    return PinnedRegistration(raw, raw.ctypes.data, raw.nbytes, "a batch buffer")


def alias_at(address: int, device: torch.device, table: Tensor) -> Tensor:
    """A tensor on ``device`` with ``table``'s shape, strides and dtype over the memory
    at ``address``, owning nothing (the caller keeps the memory alive and pinned)."""
    nbytes = table.numel() * table.element_size()
    storage = torch._C._construct_storage_from_data_pointer(address, device, nbytes)
    alias = torch.empty(0, dtype=table.dtype, device=device)
    return alias.set_(storage, 0, table.shape, table.stride())


def device_alias(table: Tensor, device: torch.device, registration: PinnedRegistration,
                 name: str) -> Tensor:
    """A CUDA tensor on ``device`` reading the pinned host ``table`` in place (same
    shape, strides and dtype), at the device address of the memory."""
    ordinal = ordinal_of(device)
    drv = driver()
    ptr = table.data_ptr()
    with drv.context(ordinal):
        if drv.attribute(cuda_driver.ATTR_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM, ordinal):
            address = ptr
        else:
            err, address = drv.device_pointer(ptr)
            if err != cuda_driver.SUCCESS:
                raise RuntimeError(f"{name}: its pinned memory has no address on cuda:{ordinal} "
                                   f"(cuMemHostGetDevicePointer: {drv.error_string(err)})")
            if not registration.single_range:
                raise RuntimeError(
                    f"{name}: pinned in several registrations (it shares pages with other "
                    f"pinned memory) and cuda:{ordinal} does not map them at the host "
                    "addresses; give the store pin=False there")
    return alias_at(address, torch.device("cuda", ordinal), table)


class DeviceIndex:
    """The ids of one batch on a device, sorted once for every table gathered by them:
    consecutive threads then read neighbouring rows (DGL measured 19 against 4.4 GB/s).

    Attributes:
        device: the CUDA device.
        sorted: ``[n]`` int64, the ids in ascending order, on the device.
        inverse: ``[n]`` int64 with ``sorted[inverse]`` equal to the ids in request order.
    """

    def __init__(self, index: Tensor, device: torch.device) -> None:
        self.device = device
        ids = index.to(device, non_blocking=True)
        self.sorted, order = torch.sort(ids)
        self.inverse = torch.empty_like(order)
        self.inverse[order] = torch.arange(order.numel(), device=order.device)


def gather_on_device(alias: Tensor, index: DeviceIndex) -> Tensor:
    """``alias[ids]``, computed by the GPU on the current stream: the rows are read from
    host memory in address order, then put in request order on the device."""
    return alias.index_select(0, index.sorted).index_select(0, index.inverse)


def scatter_on_device(alias: Tensor, index: Tensor, values: Tensor) -> None:
    """``alias[index] = values`` by the GPU on the current stream (``index`` on the host,
    ``values`` on the alias's device and dtype): host rows written in place."""
    alias.index_copy_(0, index.to(alias.device, non_blocking=True), values)


def copy_to(tensor: Tensor, device: torch.device) -> Tensor:
    """``tensor`` copied to ``device``, queued on its current stream."""
    return tensor.to(device, non_blocking=True)
