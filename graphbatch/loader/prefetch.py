"""Background threads that keep batches ready while the training step runs.

A two-stage pipeline: one thread advances the DataLoader iterator (sampling ids, in
this thread or in worker processes), a second assembles each batch (gathering
features) and, on a CUDA device, does so on a side stream; the consumer's stream waits
on an event recorded after each batch, and the batch's tensors are marked as used by
the consumer's stream for the caching allocator. The numba kernels release the GIL, so
sampling batch ``k + 1``, gathering batch ``k`` and training overlap, and the stages'
cache misses overlap with each other. Each stage keeps the order of its input, so
batches come out in the order of the plan.
"""
from __future__ import annotations

import atexit
import queue
import threading
import time
import weakref
from typing import Any, Callable, Iterable, Iterator, Optional

import torch

_END = object()
#: Prefetchers whose threads may still run. At exit they are stopped and joined: a
#: daemon thread killed inside a TBB kernel aborts the interpreter.
_LIVE: "weakref.WeakSet[Prefetcher]" = weakref.WeakSet()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue, stop: threading.Event, value) -> bool:
    while not stop.is_set():
        try:
            q.put(value, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _drain(q: queue.Queue, stop: threading.Event) -> Iterator:
    """The values an upstream stage puts in ``q``, until its end; raises its failure."""
    while True:
        try:
            value = q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return
            continue
        if value is _END:
            return
        if isinstance(value, _Failure):
            raise value.exc
        yield value


def _run_stage(items: Iterable, fn: Callable[[Any], Any], q: queue.Queue,
               stop: threading.Event) -> None:
    """A stage thread's body: ``fn(item)`` into ``q`` for each item, then the end (or
    the failure, raised by the consumer). It holds no reference to the
    :class:`Prefetcher`, so dropping the iterator mid-epoch frees it, whose finalizer
    stops the stages."""
    try:
        for item in items:
            if stop.is_set() or not _put(q, stop, fn(item)):
                return
    except BaseException as exc:  # handed to the consumer, raised there
        _put(q, stop, _Failure(exc))
        return
    _put(q, stop, _END)


class _Assemble:
    """Stage 2's function: ``produce(item)`` with its CUDA event, on a side stream."""

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
    """Iterates ``produce(item)`` for the items of ``source``: ``depth`` batches kept
    ready, and one more item of ``source`` drawn ahead.

    Attributes:
        wait_s: seconds the consumer spent blocked waiting for batches so far.
    """

    def __init__(self, source: Iterator, produce: Callable[[Any], Any], depth: int,
                 device: Optional[torch.device] = None, length: Optional[int] = None) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._device = device if device is not None and device.type == "cuda" else None
        self._length = length
        self.wait_s = 0.0
        self._done = False
        sampled: queue.Queue = queue.Queue(maxsize=1)
        self._threads = [
            threading.Thread(target=_run_stage, name="graphbatch-prefetch-sample", daemon=True,
                             args=(source, _identity, sampled, self._stop)),
            threading.Thread(target=_run_stage, name="graphbatch-prefetch-assemble", daemon=True,
                             args=(_drain(sampled, self._stop), _Assemble(produce, self._device),
                                   self._queue, self._stop)),
        ]
        for thread in self._threads:
            thread.start()
        _LIVE.add(self)

    def __iter__(self) -> "Prefetcher":
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        start = time.perf_counter()
        value = self._queue.get()
        self.wait_s += time.perf_counter() - start
        if value is _END:
            self._done = True
            raise StopIteration
        if isinstance(value, _Failure):
            self._done = True
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
        """Stops the threads; batches not yet consumed are dropped."""
        self._stop.set()
        while any(thread.is_alive() for thread in self._threads):
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass
        self._done = True

    def __del__(self) -> None:
        self._stop.set()


def _identity(item):
    return item


def _cuda_tensors(batch) -> list:
    stores = getattr(batch, "stores", None)
    values = [v for s in stores for v in s.values()] if stores is not None else [batch]
    return [v for v in values if isinstance(v, torch.Tensor) and v.is_cuda]


@atexit.register
def _stop_all() -> None:
    for prefetcher in list(_LIVE):
        prefetcher.close()
