"""A background thread that keeps batches ready while the training step runs.

The thread advances the DataLoader iterator (sampling, in this thread or in worker
processes), assembles each batch (gathering features) and, on a CUDA device, does so on
a side stream; the consumer's stream waits on an event recorded after each batch, and
the batch's tensors are marked as used by the consumer's stream for the caching
allocator. The numba kernels release the GIL, so the thread truly overlaps training.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Iterator, Optional

import torch

_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Prefetcher:
    """Iterates ``produce(item)`` for the items of ``source``, up to ``depth`` ahead.

    Attributes:
        wait_s: seconds the consumer spent blocked waiting for batches so far.
    """

    def __init__(self, source: Iterator, produce: Callable[[Any], Any], depth: int,
                 device: Optional[torch.device] = None, length: Optional[int] = None) -> None:
        self._source = source
        self._produce = produce
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._device = device if device is not None and device.type == "cuda" else None
        self._length = length
        self.wait_s = 0.0
        self._done = False
        self._thread = threading.Thread(target=self._run, name="graphbatch-prefetch", daemon=True)
        self._thread.start()

    def _put(self, value) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        stream = torch.cuda.Stream(self._device) if self._device is not None else None
        try:
            for item in self._source:
                if stream is None:
                    value = (self._produce(item), None)
                else:
                    with torch.cuda.stream(stream):
                        batch = self._produce(item)
                        event = torch.cuda.Event()
                        event.record(stream)
                    value = (batch, event)
                if not self._put(value):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failure(exc))
            return
        self._put(_END)

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
