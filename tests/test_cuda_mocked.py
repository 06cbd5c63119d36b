"""The CUDA paths checked without a GPU: fake streams and events for the prefetcher's
stream ordering, a fake CUDA runtime for host memory registration.

The fakes stand in for ``torch.cuda`` in the namespace of the module under test only
(``graphbatch.loader.prefetch``, ``graphbatch.features.cuda``), so nothing else in the
process sees them. They record what the code asked of CUDA, and the tests check that
record against what CUDA's rules require; ``test_cuda_zero_copy.py`` checks the same
behaviour on a real GPU.
"""
from __future__ import annotations

import threading
from typing import Any, Optional

import pytest
import torch
from torch_geometric.data import Data

from fake_cuda import FakeGPU, torch_with_cuda
from graphbatch.loader import prefetch


# --------------------------------------------------------------------------- streams


class _FakeStream:
    """A CUDA stream that records the events it was made to wait on."""

    def __init__(self, name: str, device: Optional[torch.device] = None) -> None:
        self.name = name
        self.device = device
        self.waited: list[_FakeEvent] = []

    def wait_event(self, event: "_FakeEvent") -> None:
        self.waited.append(event)

    def __repr__(self) -> str:
        return f"<stream {self.name}>"


class _FakeEvent:
    """A CUDA event; ``record`` notes the stream and the batch its thread produced
    last, so a test can tell which batch's work the event marks the end of."""

    def __init__(self, cuda: "_FakeCuda") -> None:
        self._cuda = cuda
        self.stream: Optional[_FakeStream] = None
        self.batch: Any = None

    def record(self, stream: Optional[_FakeStream] = None) -> None:
        assert self.stream is None, "an event recorded twice"
        self.stream = stream if stream is not None else self._cuda.current_stream()
        self.batch = self._cuda.last_produced()


class _FakeCuda(FakeGPU):
    """What ``prefetch.py`` uses of ``torch.cuda``: streams that record what they wait
    on, events that note their thread's last batch, and a current stream per thread
    (the default stream unless set with ``stream``)."""

    def __init__(self) -> None:
        super().__init__(driver=None)
        self.default = _FakeStream("default")
        self.side_streams: list[_FakeStream] = []
        self._lock = threading.Lock()

    def Stream(self, device: Optional[torch.device] = None) -> _FakeStream:  # noqa: N802
        with self._lock:
            stream = _FakeStream(f"side {len(self.side_streams)}", device)
            self.side_streams.append(stream)
        return stream

    def Event(self, **_: Any) -> _FakeEvent:  # noqa: N802
        return _FakeEvent(self)

    def produced(self, batch: Any) -> None:
        """Called by a test's ``produce`` when it has made ``batch`` (on this thread)."""
        self._local.produced = batch

    def last_produced(self) -> Any:
        return getattr(self._local, "produced", None)


class _RecordingTensor(torch.Tensor):
    """A CPU tensor that reports ``is_cuda`` as told and records ``record_stream``."""

    fake_cuda: bool
    recorded: list

    @property
    def is_cuda(self) -> bool:  # type: ignore[override]
        return self.fake_cuda

    def record_stream(self, stream) -> None:  # type: ignore[override]
        self.recorded.append(stream)


def _recording(cuda: bool, shape: tuple[int, ...] = (4, 2)) -> _RecordingTensor:
    t = torch.Tensor._make_subclass(_RecordingTensor, torch.zeros(shape))
    t.fake_cuda = cuda
    t.recorded = []
    return t


@pytest.fixture
def fake_cuda(monkeypatch) -> _FakeCuda:
    fake = _FakeCuda()
    monkeypatch.setattr(prefetch, "torch", torch_with_cuda(
        Stream=fake.Stream, Event=fake.Event, current_stream=fake.current_stream,
        default_stream=lambda device=None: fake.default, stream=fake.stream))
    return fake


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind", ["data", "tensor"])
def test_prefetch_consumer_waits_for_each_batch_and_marks_its_tensors(fake_cuda, kind, threads):
    """For every batch delivered, the consumer's current stream waited on exactly the
    event recorded on the producing side stream after that batch was made, and every
    CUDA tensor of the batch (not the CPU ones) was marked as used by that stream, so
    the caching allocator does not hand its memory to the side stream while the
    consumer may still read it."""
    made: dict[int, tuple[Any, _FakeStream]] = {}

    def produce(i: int):
        if kind == "data":
            batch = Data(x=_recording(True), n_id=_recording(True, (4,)),
                         y=_recording(False, (4,)), batch_size=4)
        else:
            batch = _recording(True)
        made[i] = (batch, fake_cuda.current_stream())
        fake_cuda.produced(batch)
        return batch

    n = 12
    consumer = _FakeStream("consumer")  # not the default stream: the current one counts
    loader = prefetch.Prefetcher(iter(range(n)), produce, depth=2,
                                 device=torch.device("cuda"), length=n, threads=threads)
    delivered = 0
    try:
        with fake_cuda.stream(consumer):
            for i, batch in enumerate(loader):
                expected, side = made[i]
                assert batch is expected, f"batch {i} out of order"
                assert side in fake_cuda.side_streams, f"batch {i} made on {side}"
                assert len(consumer.waited) == i + 1, f"batch {i}: waits {consumer.waited}"
                event = consumer.waited[i]
                assert event.batch is batch, f"batch {i}: the event does not follow its making"
                assert event.stream is side, f"batch {i}: event recorded on {event.stream}"
                tensors = [batch] if kind == "tensor" else [batch.x, batch.n_id]
                for t in tensors:
                    assert t.recorded == [consumer], f"batch {i}: record_stream {t.recorded}"
                if kind == "data":
                    assert batch.y.recorded == [], "record_stream on a CPU tensor"
                delivered += 1
    finally:
        loader.close()
    assert delivered == n
    assert len(fake_cuda.side_streams) == threads
    assert all(s.device == torch.device("cuda") for s in fake_cuda.side_streams)
    assert fake_cuda.default.waited == []


def test_prefetch_on_the_cpu_uses_no_stream(fake_cuda):
    """Without a CUDA device no stream or event is made, and no tensor is marked."""
    batches = [_recording(True) for _ in range(5)]
    loader = prefetch.Prefetcher(iter(range(5)), batches.__getitem__, depth=2,
                                 device=torch.device("cpu"), length=5, threads=2)
    assert list(loader) == batches
    assert fake_cuda.side_streams == [] and fake_cuda.default.waited == []
    assert all(b.recorded == [] for b in batches)
