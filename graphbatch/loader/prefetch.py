"""Background threads that make batches while the training step runs.

``threads`` producer threads each take the next item of the source (under a lock) and
make its whole batch: sampling ids where the source hands out plans, gathering
features, and, on a CUDA device, doing so on the thread's side stream; the consumer's
stream waits on an event recorded after each batch, and the batch's tensors are marked
as used by the consumer's stream for the caching allocator. Results come out in the
order of the source, whichever thread made them.

Batches are made whole and in parallel, rather than each kernel split across the
cores, because a batch's kernels are short and memory-bound (on 2 cores,
``graphbatch bench saint``: 812 random-walk subgraphs/s with two threads of 1-way
kernels, 677 with one thread of 2-way kernels). The numba kernels release the GIL, so
the threads and the training loop overlap; each producer runs its kernels on
``cores // threads`` threads of numba's pool (a thread-local setting).

The GIL is what the producers wait for: each parallel loop of a numba kernel takes it
twice on the way (numba's launch code), and every torch operation releases it, letting
another thread in, so the code that makes a batch keeps both few (one parallel loop per
kernel, numpy rather than torch for views).
"""
from __future__ import annotations

import atexit
import gc
import os
import threading
import time
from typing import Any, Callable, Collection, Iterator, Optional

import numba
import torch

#: Producer threads of a prefetcher when the loader does not say.
DEFAULT_THREADS = 2
#: Bytes of batches made ahead, at most, when the loader does not say; one batch is
#: always made ahead, whatever its size. Large batches (hundreds of MB and up) are thus
#: made one ahead, keeping peak memory within one batch of making them on demand.
DEFAULT_MAX_BYTES = 128 << 20
_END = object()
_POLL_S = 0.1
#: Producer threads that may still run, by the state they share, whoever still holds
#: their prefetcher: one abandoned mid-epoch (``break``, ``next(iter(loader))``, an
#: exception or Ctrl-C in the loop body) is stopped by its finalizer, and any left at
#: interpreter exit are stopped and joined then. A producer still running when the
#: interpreter finalizes dies inside libtorch and aborts the process.
_RUNNING: dict["_Shared", list[threading.Thread]] = {}
#: Reentrant: a collection run while it is held may finalize a prefetcher.
_RUNNING_LOCK = threading.RLock()
#: Whether a garbage collection is running (in some thread). A prefetcher finalized by
#: one is only stopped, not joined: the collection may run in any thread, holding any
#: lock (one its producers wait for), or in one of its producers.
_COLLECTING = False


def _note_collection(phase: str, info: dict) -> None:
    global _COLLECTING
    _COLLECTING = phase == "start"


gc.callbacks.append(_note_collection)


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Shared:
    """What the producers and the consumer share. It holds no reference to the
    :class:`Prefetcher`, so dropping the iterator mid-epoch frees it, whose finalizer
    stops the producers."""

    def __init__(self, source: Iterator, limit: int, max_bytes: Optional[int]) -> None:
        self.source = source
        self.limit = limit  # items taken but not yet consumed, at most
        self.max_bytes = max_bytes  # their bytes, at most (None: no bound)
        self.sizes: dict[int, int] = {}  # bytes of each batch made and not consumed
        self.largest: Optional[int] = None  # bytes of the largest batch made so far
        self.cond = threading.Condition()
        self.source_lock = threading.Lock()
        self.stop = threading.Event()
        self.taken = 0  # items taken from the source so far
        self.consumed = 0
        self.end: Optional[int] = None  # index of the end (or of a failure)
        self.results: dict[int, Any] = {}
        #: Set when a lockstep prefetcher stops: items before it are still made.
        self.drain_to: Optional[int] = None

    def drain(self) -> None:
        """Stops after the items the consumer could have had made ahead, however far
        the producers got: ``consumed + limit``. Ranks that consume alike thus make
        the same items, and the collectives in them all find their peers."""
        with self.cond:
            if self.drain_to is None:
                self.drain_to = self.consumed + self.limit
            self.cond.notify_all()

    def _room(self) -> bool:
        """Whether another item may be taken: fewer than ``limit`` in flight (taken, not
        consumed), and their bytes within ``max_bytes`` with one more, each batch still
        being made counted as the largest made so far. Nothing in flight always leaves
        room; until a batch's size is known, one is made at a time."""
        in_flight = self.taken - self.consumed
        if in_flight == 0:
            return True
        if in_flight >= self.limit:
            return False
        if self.max_bytes is None:
            return True
        if self.largest is None:
            return False
        being_made = in_flight - len(self.results)
        made = sum(self.sizes.values())
        return made + (being_made + 1) * self.largest <= self.max_bytes

    def one_at_a_time(self) -> bool:
        """Whether the byte bound has batches made one at a time (their size unknown
        yet, or two of the largest above ``max_bytes``): the one being made may then
        use every core."""
        return self.max_bytes is not None and (
            self.largest is None or 2 * self.largest > self.max_bytes)

    def take(self) -> tuple[int, Any]:
        """The next item and its index, or ``(-1, None)`` once there are no more. Waits
        while there is no room for it (:meth:`_room`). ``source`` is advanced under a
        lock of its own, so the consumer is not held up while it blocks (on worker
        processes, say)."""
        with self.source_lock:
            with self.cond:
                while (not self.stop.is_set() and self.end is None and self.drain_to is None
                       and not self._room()):
                    self.cond.wait(_POLL_S)
                if self.end is not None:
                    return -1, None
                if (self.taken >= self.drain_to if self.drain_to is not None
                        else self.stop.is_set()):
                    return -1, None
                index = self.taken
            try:
                item = next(self.source)
            except StopIteration:
                self.put(index, _END)
                return -1, None
            except BaseException as exc:  # handed to the consumer, raised there
                self.put(index, _Failure(exc))
                return -1, None
            with self.cond:
                self.taken += 1
            return index, item

    def put(self, index: int, value: Any, nbytes: int = 0) -> None:
        """Hands over item ``index``'s value: a batch of ``nbytes`` bytes, a
        :class:`_Failure` (nothing after it is delivered) or ``_END``."""
        with self.cond:
            if value is _END:
                self.end = index
            else:
                self.results[index] = value
                self.sizes[index] = nbytes
                if not isinstance(value, _Failure):
                    self.largest = max(self.largest or 0, nbytes)
                if isinstance(value, _Failure) and (self.end is None or self.end > index + 1):
                    self.end = index + 1
            self.cond.notify_all()


def _produce_loop(shared: _Shared, produce: Callable[[Any], Any],
                  nbytes_of: Callable[[Any], int], device: Optional[torch.device],
                  kernel_threads: int) -> None:
    assemble = _Assemble(produce, device)
    current = 0
    while True:
        index, item = shared.take()
        if index < 0:
            return
        try:
            wanted = (numba.config.NUMBA_NUM_THREADS if shared.one_at_a_time()
                      else kernel_threads)
            if wanted != current:  # a ctypes call: it hands the GIL over, so only on change
                numba.set_num_threads(wanted)
                current = wanted
            value = assemble(item)
            nbytes = 0 if shared.max_bytes is None else nbytes_of(value[0])
        except BaseException as exc:  # handed to the consumer, raised there
            value, nbytes = _Failure(exc), 0
        shared.put(index, value, nbytes)
        # Held while waiting to take the next item, the batch would outlive the
        # consumer's use of it (by a batch, with two producers).
        del value, item


class _Assemble:
    """``produce(item)`` with its CUDA event, on a side stream of the calling thread."""

    def __init__(self, produce: Callable[[Any], Any], device: Optional[torch.device]) -> None:
        self.produce = produce
        self.stream = torch.cuda.Stream(device) if device is not None else None

    def __call__(self, item):
        if self.stream is None:
            return self.produce(item), None
        with torch.cuda.stream(self.stream):
            batch = self.produce(item)
            event = torch.cuda.Event()
            event.record(self.stream)
        return batch, event


class Prefetcher:
    """Iterates ``produce(item)`` for the items of ``source``, in order, made by
    ``threads`` background threads; ``depth`` batches are kept ready beyond the ones
    being made, as long as the batches made ahead hold at most ``max_bytes`` (None: no
    bound; one batch is made ahead whatever its size), as ``nbytes_of(batch)`` counts
    them (by default every tensor of the batch).

    An iterator dropped before its end stops its producers (each after its current
    batch) and waits for them, unless a garbage collection drops it: then they are
    stopped, and joined by :func:`join_stopped` or at exit. With ``lockstep``, where
    making a batch is a collective of several processes, they first make every batch
    the consumer could have had made ahead (:meth:`_Shared.drain`), so that processes
    stopping after the same batch have all made the same ones.

    Attributes:
        wait_s: seconds the consumer spent blocked waiting for batches so far.
    """

    def __init__(self, source: Iterator, produce: Callable[[Any], Any], depth: int,
                 device: Optional[torch.device] = None, length: Optional[int] = None,
                 threads: int = 1, max_bytes: Optional[int] = None,
                 nbytes_of: Optional[Callable[[Any], int]] = None,
                 lockstep: bool = False) -> None:
        self._device = device if device is not None and device.type == "cuda" else None
        self._lockstep = lockstep
        self._length = length
        self.wait_s = 0.0
        self._done = False
        self._shared = _Shared(source, depth + threads - 1, max_bytes)
        kernel_threads = max(1, numba.config.NUMBA_NUM_THREADS // threads)
        self._threads = [
            threading.Thread(target=_produce_loop, name=f"graphbatch-prefetch-{i}", daemon=True,
                             args=(self._shared, produce, nbytes_of or batch_nbytes,
                                   self._device, kernel_threads))
            for i in range(threads)
        ]
        with _RUNNING_LOCK:
            _RUNNING[self._shared] = self._threads
        for thread in self._threads:
            thread.start()

    def __iter__(self) -> "Prefetcher":
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        shared = self._shared
        start = time.perf_counter()
        with shared.cond:
            index = shared.consumed
            while index not in shared.results and (shared.end is None or index < shared.end):
                shared.cond.wait(_POLL_S)
            value = shared.results.pop(index, _END)
            shared.sizes.pop(index, None)
            if value is not _END:
                shared.consumed += 1
                shared.cond.notify_all()
        self.wait_s += time.perf_counter() - start
        if value is _END or isinstance(value, _Failure):
            # No producer outlives the iteration: one still finishing (closing worker
            # processes, say) when the interpreter exits is killed in C++ code, which
            # aborts the process (seen with the OpenMP layer and workers).
            self.close()
            if value is _END:
                raise StopIteration
            raise value.exc
        batch, event = value
        if event is not None:
            consumer = torch.cuda.current_stream(self._device)
            consumer.wait_event(event)
            for tensor in _cuda_tensors(batch):
                tensor.record_stream(consumer)
        return batch

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError("length unknown")
        return self._length

    def close(self) -> None:
        """Stops the threads (each after its current batch) and waits for them; batches
        not yet consumed are dropped, and the source (worker processes) is let go."""
        self._done = True
        if self._lockstep:
            self._shared.drain()
        _stop(self._shared, self._threads)

    def __del__(self) -> None:
        # An iterator dropped mid-epoch: its producers must not outlive it.
        if not hasattr(self, "_threads"):
            return
        if self._lockstep:
            self._shared.drain()
        if _COLLECTING or threading.current_thread() in self._threads:
            self._shared.stop.set()
        else:
            _stop(self._shared, self._threads)


def _tensors(batch) -> list[torch.Tensor]:
    """The tensors of a ``Data`` batch, or the batch itself if it is a tensor."""
    stores = getattr(batch, "stores", None)
    values = [v for s in stores for v in s.values()] if stores is not None else [batch]
    return [v for v in values if isinstance(v, torch.Tensor)]


def batch_nbytes(batch, skip: Collection[int] = ()) -> int:
    """Bytes of a batch's tensors, but those whose ``id`` is in ``skip`` (``nbytes`` is
    read without a torch operation, which would hand the GIL over)."""
    return sum(v.nbytes for v in _tensors(batch) if id(v) not in skip)


def _cuda_tensors(batch) -> list[torch.Tensor]:
    return [v for v in _tensors(batch) if v.is_cuda]


def _stop(shared: _Shared, threads: list[threading.Thread]) -> None:
    """Stops and joins ``threads``, then drops what they shared; safe to call again,
    and from one of the threads itself (which is then not joined)."""
    shared.stop.set()
    current = threading.current_thread()
    for thread in threads:
        if thread is not current and thread.ident is not None:
            thread.join()
            _wait_exited(thread)
    with _RUNNING_LOCK:
        _RUNNING.pop(shared, None)
    with shared.cond:
        shared.results.clear()
        shared.sizes.clear()
    shared.source = iter(())


def _wait_exited(thread: threading.Thread, timeout_s: float = 1.0) -> None:
    """Waits until the OS thread of a joined ``thread`` is gone (Linux).

    ``join`` returns before the thread's native exit, where TBB lets go of it; a
    DataLoader forking its workers in that window finds TBB still in use by it, cannot
    stop TBB's pool for the fork, and warns (``Unable to join threads to shut down
    before fork()``).
    """
    task = f"/proc/self/task/{thread.native_id}"
    deadline = time.monotonic() + timeout_s
    while os.path.exists(task) and time.monotonic() < deadline:
        time.sleep(0.0005)


def join_stopped() -> None:
    """Joins the producers of prefetchers stopped without being joined (dropped by a
    garbage collection). Loaders call it before forking their workers, whom TBB in use
    by a producer would leave in an invalid state."""
    with _RUNNING_LOCK:
        running = list(_RUNNING.items())
    for shared, threads in running:
        if shared.stop.is_set():
            _stop(shared, threads)


@atexit.register
def _stop_all() -> None:
    with _RUNNING_LOCK:
        running = list(_RUNNING.items())
    for shared, threads in running:
        _stop(shared, threads)
