"""The CUDA paths checked without a GPU: fake streams and events for the prefetcher's
stream ordering, a fake CUDA runtime for host memory registration.

The fakes stand in for ``torch.cuda`` in the namespace of the module under test only
(``graphbatch.loader.prefetch``, ``graphbatch.features.cuda``), so nothing else in the
process sees them. They record what the code asked of CUDA, and the tests check that
record against what CUDA's rules require; ``test_cuda_zero_copy.py`` checks the same
behaviour on a real GPU.
"""
from __future__ import annotations

import contextlib
import gc
import threading
from collections import Counter
from typing import Any, Iterator, Optional

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from graphbatch.features import FeatureStore
from graphbatch.features import cuda as cuda_module
from graphbatch.loader import prefetch


class _Overlay:
    """``base``'s attributes, except the ones given: a stand-in for a module in the
    namespace of the module under test."""

    def __init__(self, base: Any, **overrides: Any) -> None:
        self._base = base
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


def _torch_with_cuda(**cuda_overrides: Any) -> _Overlay:
    """``torch``, with the given ``torch.cuda`` attributes replaced."""
    return _Overlay(torch, cuda=_Overlay(torch.cuda, **cuda_overrides))


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


class _FakeCuda:
    """What ``prefetch.py`` uses of ``torch.cuda``: streams, events and a current stream
    per thread (the default stream unless set with ``stream``)."""

    def __init__(self) -> None:
        self.default = _FakeStream("default")
        self.side_streams: list[_FakeStream] = []
        self._local = threading.local()
        self._lock = threading.Lock()

    def Stream(self, device: Optional[torch.device] = None) -> _FakeStream:  # noqa: N802
        with self._lock:
            stream = _FakeStream(f"side {len(self.side_streams)}", device)
            self.side_streams.append(stream)
        return stream

    def Event(self, **_: Any) -> _FakeEvent:  # noqa: N802
        return _FakeEvent(self)

    def current_stream(self, device: Optional[torch.device] = None) -> _FakeStream:
        return getattr(self._local, "stream", self.default)

    @contextlib.contextmanager
    def stream(self, stream: _FakeStream) -> Iterator[None]:
        previous = self.current_stream()
        self._local.stream = stream
        try:
            yield
        finally:
            self._local.stream = previous

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
    monkeypatch.setattr(prefetch, "torch", _torch_with_cuda(
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


# --------------------------------------------------------------------------- registration


class _FakeCudaRuntime:
    """``cudaHostRegister`` and ``cudaHostUnregister`` answering as CUDA does: a range
    that overlaps a registered one is refused, and so is unregistering a pointer that
    is not registered. Refusals are kept in ``errors`` (the code under test may ignore
    the return value)."""

    ALREADY_REGISTERED = 712  # cudaErrorHostMemoryAlreadyRegistered
    NOT_REGISTERED = 713  # cudaErrorHostMemoryNotRegistered
    MEMORY_ALLOCATION = 2  # cudaErrorMemoryAllocation

    def __init__(self) -> None:
        self.pinned: dict[int, tuple[int, int]] = {}  # ptr -> (nbytes, flags)
        self.registers: Counter = Counter()  # successful calls per pointer
        self.unregisters: Counter = Counter()
        self.errors: list[str] = []
        self.refuse: set[int] = set()  # pointers whose registration fails

    def cudaHostRegister(self, ptr: int, nbytes: int, flags: int) -> int:  # noqa: N802
        if ptr in self.refuse:
            return self.MEMORY_ALLOCATION
        for start, (size, _) in self.pinned.items():
            if start < ptr + nbytes and ptr < start + size:
                self.errors.append(f"register {ptr:#x}: overlaps {start:#x}")
                return self.ALREADY_REGISTERED
        self.pinned[ptr] = (nbytes, flags)
        self.registers[ptr] += 1
        return 0

    def cudaHostUnregister(self, ptr: int) -> int:  # noqa: N802
        if ptr not in self.pinned:
            self.errors.append(f"unregister {ptr:#x}: not registered")
            return self.NOT_REGISTERED
        del self.pinned[ptr]
        self.unregisters[ptr] += 1
        return 0

    def pins(self, t: torch.Tensor) -> bool:
        """Whether ``t``'s bytes lie in one registered range."""
        ptr, nbytes = t.data_ptr(), t.numel() * t.element_size()
        return any(start <= ptr and ptr + nbytes <= start + size
                   for start, (size, _) in self.pinned.items())


@pytest.fixture
def runtime(monkeypatch) -> Iterator[_FakeCudaRuntime]:
    fake = _FakeCudaRuntime()
    monkeypatch.setattr(cuda_module, "torch", _torch_with_cuda(cudart=lambda: fake))
    yield fake
    gc.collect()  # the test's stores unpin while the fake still stands in
    assert fake.errors == []
    assert fake.registers == fake.unregisters, "registrations left behind"


@pytest.fixture
def fake_device(monkeypatch, runtime: _FakeCudaRuntime) -> _FakeCudaRuntime:
    """Device gathers on the CPU: the table's 'device alias' is the table itself and
    :func:`~graphbatch.features.cuda.gather_on_device` runs on the CPU, so a store
    pins and unpins its tables as on a GPU."""
    gather = cuda_module.gather_on_device
    monkeypatch.setattr(cuda_module, "device_alias", lambda table, device: table)
    monkeypatch.setattr(cuda_module, "gather_on_device",
                        lambda alias, index, device: gather(alias, index, torch.device("cpu")))
    return runtime


def test_pool_buffers_are_unpinned_with_the_store_and_their_last_batch(runtime):
    """Every pool buffer is pinned once; the store's ``release()`` leaves them pinned
    (they are reused by its next gathers); freeing the store unpins each once no batch
    lives in it (a one-off buffer, beyond the pool's capacity, once its batch is gone)."""
    x = torch.randn(30_000, 16)
    ids = torch.arange(20_000)  # 1.3 MB of rows: pooled
    store = FeatureStore({"x": x}, pin=True)
    held = [store.gather("x", ids) for _ in range(store._pool.capacity + 1)]
    assert all(torch.equal(h, x[:20_000]) for h in held)
    assert all(runtime.pins(h) for h in held), "a pool buffer was not pinned"
    assert len(runtime.pinned) == len(held) and not runtime.pins(x)
    one_off = held.pop()
    del one_off
    assert len(runtime.pinned) == len(held), "a one-off buffer outlived its batch pinned"
    store.release()
    assert len(runtime.pinned) == len(held)
    kept = held[0]
    del held
    assert torch.equal(store.gather("x", ids.flip(0)), x[:20_000].flip(0))
    assert len(runtime.pinned) == store._pool.capacity  # reused: no new buffer
    del store
    gc.collect()
    assert runtime.pins(kept), "a buffer was unpinned while a batch in it lives"
    assert len(runtime.pinned) == 1, "freeing the store left buffers pinned"
    del kept
    gc.collect()
    assert runtime.pinned == {}
    assert all(n == 1 for n in runtime.registers.values())


def test_unpinned_store_registers_nothing(runtime):
    store = FeatureStore({"x": torch.randn(30_000, 16)}, pin=False)
    out = store.gather("x", torch.arange(20_000))
    assert out.numel() and runtime.registers == Counter()


def test_device_gather_pins_the_table_once_and_release_unpins(fake_device):
    x = torch.randn(1000, 8)
    ids = torch.tensor([5, 0, 999, 5])
    store = FeatureStore({"x": x}, pin=False)  # the pool's pinning does not matter here
    for _ in range(3):
        assert torch.equal(store.gather("x", ids, device="cuda"), x[ids])
    assert fake_device.pinned == {x.data_ptr(): (x.numel() * 4, 0)}
    assert fake_device.registers[x.data_ptr()] == 1
    store.release()
    store.release()  # idempotent: CUDA would refuse a second unregister
    assert fake_device.pinned == {}
    assert torch.equal(store.gather("x", ids, device="cuda"), x[ids])  # pins again
    assert fake_device.pins(x)
    del store
    gc.collect()
    assert fake_device.pinned == {}, "a freed store left its table pinned"
    assert fake_device.registers[x.data_ptr()] == fake_device.unregisters[x.data_ptr()] == 2


def test_two_stores_over_one_tensor_share_one_registration(fake_device):
    """CUDA refuses to register memory twice: the second store counts on the first's
    registration, and the table stays pinned until both are released."""
    x = torch.randn(1000, 8)
    ids = torch.tensor([7, 3, 7])
    a, b = FeatureStore({"x": x}), FeatureStore({"x": x})
    assert torch.equal(a.gather("x", ids, device="cuda"), x[ids])
    assert torch.equal(b.gather("x", ids, device="cuda"), x[ids])
    assert fake_device.registers[x.data_ptr()] == 1
    a.release()
    assert fake_device.pins(x), "releasing one store unpinned the other's table"
    b.release()
    assert fake_device.pinned == {}


def test_memory_mapped_table_is_registered_read_only(fake_device, tmp_path):
    x = torch.randn(1000, 8)
    np.save(tmp_path / "x.npy", x.numpy())
    store = FeatureStore({"x": tmp_path / "x.npy", "y": torch.arange(1000)})
    ids = torch.tensor([1, 998])
    assert torch.equal(store.gather("x", ids, device="cuda"), x[ids])
    assert torch.equal(store.gather("y", ids, device="cuda"), ids)
    flags = {ptr: f for ptr, (_, f) in fake_device.pinned.items()}
    assert flags == {store["x"].data_ptr(): 0x08, store["y"].data_ptr(): 0}  # cudaHostRegisterReadOnly
    store.release()


def test_refused_registration_raises_and_leaves_nothing_pinned(fake_device):
    x = torch.randn(1000, 8)
    ids = torch.tensor([3])
    store = FeatureStore({"x": x})
    fake_device.refuse.add(x.data_ptr())
    with pytest.raises(RuntimeError, match="cudaHostRegister .* failed with CUDA error 2"):
        store.gather("x", ids, device="cuda")
    fake_device.refuse.clear()
    assert torch.equal(store.gather("x", ids, device="cuda"), x[ids])
    store.release()
    assert fake_device.pinned == {} and fake_device.registers[x.data_ptr()] == 1


def test_registration_release_unpins_now_and_once(runtime):
    owner = np.zeros(1000, dtype=np.uint8)
    registration = cuda_module.register_array(owner)
    assert runtime.pinned == {owner.ctypes.data: (1000, 0)}
    registration.release()
    assert runtime.pinned == {}, "release() left the memory pinned"
    registration.release()
    del registration
    gc.collect()
    assert runtime.unregisters[owner.ctypes.data] == 1  # CUDA would refuse a second one


@pytest.mark.parametrize("ids", [[], [4, 0, 4, 9, 1], [9] * 5, list(range(9, -1, -1))])
def test_gather_on_device_puts_rows_back_in_request_order(ids):
    """The device gather sorts the ids for locality and scatters the rows back; its
    arithmetic is device-independent, so the CPU checks it."""
    table = torch.randn(10, 3)
    index = torch.tensor(ids, dtype=torch.int64)
    assert torch.equal(cuda_module.gather_on_device(table, index, torch.device("cpu")), table[index])
