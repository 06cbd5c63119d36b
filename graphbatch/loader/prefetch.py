"""A background thread that keeps batches ready while the training step runs.

The thread advances the DataLoader iterator (sampling, in this thread or in worker
processes), assembles each batch (gathering features) and, on a CUDA device, does so on
a side stream; the consumer's stream waits on an event recorded after each batch, and
the batch's tensors are marked as used by the consumer's stream for the caching
allocator. The numba kernels release the GIL, so the thread truly overlaps training.
"""
from __future__ import annotations

import atexit
import queue
import threading
import time
import weakref
from typing import Any, Callable, Iterator, Optional

import torch

_END = object()
#: Prefetchers whose thread may still run. At exit they are stopped and joined: a
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


def _produce_all(source: Iterator, produce: Callable[[Any], Any], q: queue.Queue,
                 stop: threading.Event, device: Optional[torch.device]) -> None:
    """The thread's body. It holds no reference to the :class:`Prefetcher`, so dropping
    the iterator mid-epoch frees it, whose finalizer stops this thread."""
    stream = torch.cuda.Stream(device) if device is not None else None
    try:
        for item in source:
            if stop.is_set():
                return
            if stream is None:
                value = (produce(item), None)
            else:
                with torch.cuda.stream(stream):
                    batch = produce(item)
                    event = torch.cuda.Event()
                    event.record(stream)
                value = (batch, event)
            if not _put(q, stop, value):
                return
    except BaseException as exc:  # handed to the consumer, raised there
        _put(q, stop, _Failure(exc))
        return
    _put(q, stop, _END)


class Prefetcher:
    """Iterates ``produce(item)`` for the items of ``source``, up to ``depth`` ahead.

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
        self._thread = threading.Thread(
            target=_produce_all, name="graphbatch-prefetch", daemon=True,
            args=(source, produce, self._queue, self._stop, self._device),
        )
        self._thread.start()
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
        """Stops the thread; batches not yet consumed are dropped."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass
        self._done = True

    def __del__(self) -> None:
        self._stop.set()


def _cuda_tensors(batch) -> list:
    stores = getattr(batch, "stores", None)
    values = [v for s in stores for v in s.values()] if stores is not None else [batch]
    return [v for v in values if isinstance(v, torch.Tensor) and v.is_cuda]


@atexit.register
def _stop_all() -> None:
    for prefetcher in list(_LIVE):
        prefetcher.close()
