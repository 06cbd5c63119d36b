"""The CUDA host-memory rules of the feature store, checked on the CPU.

A fake driver and a fake GPU (``tests/fake_cuda.py``) stand in for CUDA: device work
runs late, only when waited for, so reusing, rewriting or unpinning memory before the
work that touches it has run gives wrong values or an error here, as it would on a GPU.
``tests/test_cuda_zero_copy.py`` checks the same rules on a real GPU.
"""
from __future__ import annotations

import gc
import os
import pickle
import threading
import time

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from fake_cuda import PAGE, FakeDriver, FakeGPU, Overlay, cuda_tensor, torch_with_cuda
from graphbatch import NeighborLoader
from graphbatch.features import BufferPool, FeatureStore
from graphbatch.features import buffers as buffers_module
from graphbatch.features import cuda as cuda_module
from graphbatch.features import cuda_driver
from graphbatch.features import store as store_module
from graphbatch.lazy.state import LazyState

CUDA = torch.device("cuda", 0)


@pytest.fixture
def driver(monkeypatch) -> FakeDriver:
    fake = FakeDriver()
    monkeypatch.setattr(cuda_module, "driver", lambda: fake)
    yield fake
    gc.collect()  # the test's stores unpin while the fake still stands in
    assert fake.errors == []
    assert fake.registers == fake.unregisters, "registrations left behind"
    assert cuda_module.registered_ranges() == []


@pytest.fixture
def gpu(monkeypatch, driver: FakeDriver) -> FakeGPU:
    fake = FakeGPU(driver)
    overlay = torch_with_cuda(
        is_available=lambda: True, Stream=fake.Stream, Event=fake.Event, current_stream=fake.current_stream,
        stream=fake.stream, device=fake.device, current_device=fake.current_device)
    monkeypatch.setattr(cuda_module, "torch", overlay)
    monkeypatch.setattr(store_module, "torch", overlay)
    for name in ("copy_to", "gather_on_device", "scatter_on_device", "alias_at"):
        monkeypatch.setattr(cuda_module, name, getattr(fake, name))
    monkeypatch.setattr(cuda_module, "DeviceIndex", fake.device_index())
    yield fake
    fake.finish()


def done(gpu: FakeGPU, rows: torch.Tensor) -> torch.Tensor:
    """``rows`` once the device work queued so far has run."""
    gpu.finish()
    return rows


def _pages_of(t: torch.Tensor) -> tuple[int, int]:
    ptr, nbytes = t.data_ptr(), t.numel() * t.element_size()
    return ptr - ptr % PAGE, -(-(ptr + nbytes) // PAGE) * PAGE


# --------------------------------------------------------------------------- 1. buffer reuse


def test_a_buffer_is_not_handed_out_before_the_copy_reading_it_is_done(gpu):
    """A batch copied asynchronously and dropped: its pinned buffer is refilled only
    once the event recorded when it was dropped has completed."""
    pool = BufferPool(capacity=4, register=cuda_module.register_array)
    first = pool.empty((1 << 16,), torch.float32)
    address = first.data_ptr()
    cuda_module.copy_to(first, CUDA)  # queued, not run
    del first
    second = pool.empty((1 << 16,), torch.float32)
    assert second.data_ptr() != address, "a buffer a queued copy reads was handed out"
    del second
    gpu.finish()
    third = pool.empty((1 << 16,), torch.float32)
    assert pool.allocations == 2 and third.data_ptr() in (address, pool._buffers[1][0].ctypes.data)


def test_copies_of_dropped_batches_read_their_own_rows(gpu, driver):
    """The race of issue 15: batches gathered into pinned buffers, copied to the device
    without synchronizing and dropped; the device runs late. Every copy must still see
    its own batch's rows, and once the pool is full it waits instead of pinning more."""
    x = torch.randn(30_000, 16)
    store = FeatureStore({"x": x}, pin=True)
    gen = torch.Generator().manual_seed(0)
    ids = [torch.randint(0, 30_000, (20_000,), generator=gen) for _ in range(20)]
    copies = []
    for index in ids:
        batch = store.gather("x", index)
        assert driver.pins_tensor(batch)
        copies.append(cuda_module.copy_to(batch, CUDA))
        del batch
    gpu.finish()
    for index, copy in zip(ids, copies):
        assert torch.equal(copy, x[index])
    assert store._pool.allocations == store._pool.capacity
    assert gpu.synchronized, "a full pool of busy buffers did not wait for one"


def test_pinned_buffers_are_unpinned_with_the_store_and_their_last_batch(gpu, driver):
    x = torch.randn(30_000, 16)
    ids = torch.arange(20_000)  # 1.3 MB of rows: pooled
    store = FeatureStore({"x": x}, pin=True)
    held = [store.gather("x", ids) for _ in range(store._pool.capacity + 1)]
    assert all(torch.equal(h, x[:20_000]) for h in held)
    assert all(driver.pins_tensor(h) for h in held), "a pool buffer was not pinned"
    assert not driver.pins_tensor(x)
    one_off = held.pop()
    del one_off
    gc.collect()
    assert len(driver.pinned) == len(held), "a one-off buffer outlived its batch pinned"
    kept = held[0]
    del held, store
    gc.collect()
    assert driver.pins_tensor(kept), "a buffer was unpinned while a batch in it lives"
    assert len(driver.pinned) == 1
    del kept


def test_unpinned_store_registers_nothing(gpu, driver):
    store = FeatureStore({"x": torch.randn(30_000, 16)}, pin=False)
    ids = torch.arange(20_000)
    assert torch.equal(store.gather("x", ids, device=CUDA), store["x"][ids])
    assert driver.registers == {} and gpu.aliases == []


# --------------------------------------------------------------------------- 2. workers


class _NoCuda:
    def __getattr__(self, name: str):
        raise AssertionError(f"torch.cuda.{name} used in a worker process")


def _forbid_cuda(worker_id: int) -> None:
    cuda_module.torch = Overlay(torch, cuda=_NoCuda())
    store_module.torch = Overlay(torch, cuda=_NoCuda())

    def no_driver():
        raise AssertionError("the CUDA driver used in a worker process")
    cuda_module.driver = no_driver
    cuda_driver.driver = no_driver


@pytest.mark.parametrize("filter_per_worker", [True, False])
def test_workers_make_no_cuda_call(gpu, driver, filter_per_worker):
    """A pinned store's workers gather into plain memory: any CUDA call there raises
    (a forked worker cannot use the parent's context)."""
    gen = torch.Generator().manual_seed(0)
    n = 3000
    data = Data(x=torch.randn(n, 64, generator=gen),
                edge_index=torch.randint(0, n, (2, 30_000), generator=gen), num_nodes=n)
    store = FeatureStore({"x": data.x}, pin=True)
    kwargs = dict(num_neighbors=[10, 10], batch_size=500, node_store=store, prefetch=0,
                  filter_per_worker=filter_per_worker)
    torch.manual_seed(1)
    expected = [b.x.clone() for b in NeighborLoader(data, **kwargs)]
    torch.manual_seed(1)
    loader = NeighborLoader(data, num_workers=2, worker_init_fn=_forbid_cuda, **kwargs)
    got = [b.x.clone() for b in loader]
    assert len(got) == len(expected) and all(torch.equal(a, b) for a, b in zip(got, expected))
    assert expected[0].numel() * 4 >= buffers_module.POOL_MIN_BYTES  # the pool was used


def test_pin_without_cuda_is_refused():
    with pytest.raises(ValueError, match="pin=True needs CUDA"):
        FeatureStore({"x": torch.zeros(3, 2)}, pin=True)


def test_pool_pins_only_in_its_own_process(driver, monkeypatch):
    pool = BufferPool(register=cuda_module.register_array)
    clone = pickle.loads(pickle.dumps(pool))
    monkeypatch.setattr(buffers_module.os, "getpid", lambda: -1)  # as in a worker
    for p in (pool, clone):
        assert p.empty((1 << 17,), torch.float32).numel()
    assert driver.registers == {}


# --------------------------------------------------------------------------- 3. device pointers


def test_alias_is_made_at_the_device_address_on_the_device_asked(gpu, driver):
    x = torch.randn(1000, 8)
    ids = torch.tensor([5, 0, 999, 5])
    driver.host_pointer_ok = False
    driver.pointer_offset = 1 << 40
    store = FeatureStore({"x": x}, pin=True)
    assert torch.equal(done(gpu, store.gather("x", ids, device="cuda:1")), x[ids])
    assert gpu.aliases == [(x.data_ptr() + (1 << 40), torch.device("cuda", 1))]
    assert driver.contexts[-1] == 1
    store.release()


def test_host_address_is_used_where_the_device_allows(gpu, driver):
    x = torch.randn(1000, 8)
    store = FeatureStore({"x": x}, pin=True)
    store.gather("x", torch.tensor([1]), device="cuda")
    assert gpu.aliases == [(x.data_ptr(), CUDA)]
    store.release()


def test_a_table_without_a_device_address_fails_clearly(gpu, driver):
    driver.host_pointer_ok = False
    driver.pointer_error = 201
    store = FeatureStore({"feat": torch.randn(1000, 8)}, pin=True)
    with pytest.raises(RuntimeError, match="table 'feat'.*no address on cuda:0.*fake CUDA error 201"):
        store.gather("feat", torch.tensor([1]), device="cuda")
    store.release()


def test_a_table_in_several_registrations_needs_host_addresses(gpu, driver):
    base = torch.zeros(4 * PAGE // 4)
    middle = FeatureStore({"m": base[PAGE // 4: 2 * PAGE // 4]}, pin=True)
    middle.gather("m", torch.tensor([0]), device="cuda")  # pins the second page alone
    driver.host_pointer_ok = False
    whole = FeatureStore({"w": base}, pin=True)
    with pytest.raises(RuntimeError, match="table 'w'.*several registrations"):
        whole.gather("w", torch.tensor([0]), device="cuda")
    whole.release()
    middle.release()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.bool, torch.int64])
def test_alias_at_shares_the_memory(dtype):
    table = torch.zeros(7, 3, dtype=dtype)
    alias = cuda_module.alias_at(table.data_ptr(), torch.device("cpu"), table)
    assert alias.shape == table.shape and alias.dtype == dtype and alias.stride() == table.stride()
    alias[2] = torch.ones(3, dtype=dtype)
    assert torch.equal(table[2], torch.ones(3, dtype=dtype))


# --------------------------------------------------------------------------- 4. page ranges


def test_small_tables_on_one_page_share_one_registration(gpu, driver):
    base = torch.zeros(64)
    a = FeatureStore({"labels": base[:16]}, pin=True)
    b = FeatureStore({"mask": base[16:32]}, pin=True)
    for store, name in ((a, "labels"), (b, "mask")):
        assert torch.equal(done(gpu, store.gather(name, torch.tensor([3]), device="cuda")), torch.zeros(1))
    assert sum(driver.registers.values()) == 1
    a.release()
    assert driver.pins_tensor(base[16:32]), "releasing one table unpinned its neighbour"
    b.release()
    assert driver.pinned == {}


def test_a_view_pinned_first_then_its_base(gpu, driver):
    """The base's pages around the view are registered as their own ranges; every
    page is unpinned once, whichever goes first."""
    base = torch.randn(6 * PAGE // 4)
    view = base[2 * PAGE // 4: 3 * PAGE // 4].view(-1, 8)
    ids = torch.tensor([0, 5])
    small = FeatureStore({"v": view}, pin=True)
    assert torch.equal(done(gpu, small.gather("v", ids, device="cuda")), view[ids])
    big = FeatureStore({"b": base.view(-1, 8)}, pin=True)
    assert torch.equal(done(gpu, big.gather("b", ids, device="cuda")), base.view(-1, 8)[ids])
    assert driver.pins_tensor(base)
    assert sum(driver.registers.values()) == 3  # the view's page, then the two sides
    small.release()
    assert driver.pins_tensor(base)
    big.release()
    assert driver.pinned == {}


def test_memory_pinned_elsewhere_is_used_as_it_is(driver):
    owner = np.zeros(3 * PAGE, dtype=np.uint8)
    registration = cuda_module.PinnedRegistration(owner, owner.ctypes.data, owner.nbytes,
                                                  "table 't'", 0, pinned_elsewhere=True)
    assert driver.registers == {} and registration.single_range
    registration.release()


def test_partly_pinned_memory_fails_clearly_and_pins_nothing(gpu, driver):
    x = torch.randn(3 * PAGE // 4).share_memory_()  # where it will be pinned
    start, end = _pages_of(x)
    driver.foreign.append((start + PAGE, start + 2 * PAGE))
    store = FeatureStore({"x": x}, pin=True)
    with pytest.raises(RuntimeError, match="pinning table 'x'.*fake CUDA error 712.*already pinned"):
        store.gather("x", torch.tensor([1]), device="cuda")
    assert driver.pinned == {} and cuda_module.registered_ranges() == []
    assert driver.registers == driver.unregisters  # rolled back
    driver.foreign.clear()
    assert torch.equal(done(gpu, store.gather("x", torch.tensor([1]), device="cuda")), x[[1]])
    store.release()


def test_a_failed_registration_unpins_the_pages_it_pinned(gpu, driver):
    """The base of a pinned view needs two new ranges; the second is refused: the
    first is unpinned again, and the view's stays."""
    base = torch.randn(6 * PAGE // 4)
    view = base[2 * PAGE // 4: 3 * PAGE // 4]
    small = FeatureStore({"v": view}, pin=True)
    small.gather("v", torch.tensor([0]), device="cuda")
    before = dict(driver.pinned)
    driver.refuse.add(_pages_of(base)[1] - PAGE)
    big = FeatureStore({"b": base}, pin=True)
    with pytest.raises(RuntimeError, match="pinning table 'b'"):
        big.gather("b", torch.tensor([0]), device="cuda")
    assert driver.pinned == before
    small.release()
    assert driver.pinned == {}


def test_refused_registration_raises_and_leaves_nothing_pinned(gpu, driver):
    x = torch.randn(1000, 8).share_memory_()  # where it will be pinned
    store = FeatureStore({"x": x}, pin=True)
    driver.refuse.add(_pages_of(x)[0])
    with pytest.raises(RuntimeError, match="pinning table 'x'.*cuMemHostRegister: fake CUDA error 2"):
        store.gather("x", torch.tensor([3]), device="cuda")
    driver.refuse.clear()
    assert torch.equal(done(gpu, store.gather("x", torch.tensor([3]), device="cuda")), x[[3]])
    store.release()
    assert driver.pinned == {}


# --------------------------------------------------------------------------- 5. lifetime


def test_release_waits_for_the_queued_reads(gpu, driver):
    x = torch.randn(1000, 8)
    store = FeatureStore({"x": x}, pin=True)
    rows = store.gather("x", torch.tensor([7, 3]), device="cuda")  # queued
    store.release()  # the fake records an error if the gather then reads unpinned memory
    assert driver.pinned == {}
    gpu.finish()
    assert torch.equal(rows, x[[7, 3]])


def test_release_is_idempotent_and_pins_again(gpu, driver):
    x = torch.randn(1000, 8)
    ids = torch.tensor([5, 0, 999, 5])
    store = FeatureStore({"x": x}, pin=True)
    for _ in range(3):
        store.gather("x", ids, device="cuda")
    gpu.finish()
    assert sum(driver.registers.values()) == 1
    store.release()
    store.release()
    assert driver.pinned == {}
    rows = store.gather("x", ids, device="cuda")
    gpu.finish()
    assert torch.equal(rows, x[ids]) and driver.pins_tensor(x)
    del store
    gc.collect()
    assert driver.pinned == {}, "a freed store left its table pinned"


def test_a_refused_unregister_raises_on_release_and_warns_when_freed(gpu, driver):
    x = torch.randn(1000, 8)
    store = FeatureStore({"x": x}, pin=True)
    store.gather("x", torch.tensor([1]), device="cuda")
    driver.fail_unregister = True
    with pytest.raises(RuntimeError, match="unpinning table 'x' failed: cuMemHostUnregister: .*fake CUDA error 999"):
        store.release()
    owner = np.zeros(PAGE, dtype=np.uint8)
    registration = cuda_module.register_array(owner)
    with pytest.warns(RuntimeWarning, match="unpinning a batch buffer failed"):
        del registration
        gc.collect()
    driver.fail_unregister = False
    for ptr in list(driver.pinned):  # what CUDA kept pinned
        with driver.context(0):
            driver.host_unregister(ptr)


def test_release_racing_device_gathers(gpu, driver):
    x = torch.randn(5000, 8)
    store = FeatureStore({"x": x}, pin=True)
    failures: list[BaseException] = []
    results = []

    def gather() -> None:
        gen = torch.Generator().manual_seed(threading.get_ident() % 1000)
        try:
            for _ in range(200):
                ids = torch.randint(0, 5000, (50,), generator=gen)
                results.append((ids, store.gather("x", ids, device="cuda")))
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=gather) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(50):
        store.release()
    for t in threads:
        t.join()
    store.release()
    gpu.finish()
    assert failures == []
    assert all(torch.equal(rows, x[ids]) for ids, rows in results)


def test_tables_are_shared_before_they_are_pinned(gpu, driver):
    """A table is moved to shared memory before it is pinned, never after: pickling
    for a spawned worker (which moves unshared storage) and forking (which copies
    pinned private pages) leave it where it is pinned."""
    x = torch.randn(1000, 8)
    ids = torch.tensor([4, 2])
    store = FeatureStore({"x": x.clone()}, pin=True)
    assert torch.equal(done(gpu, store.gather("x", ids, device="cuda")), x[ids])
    table = store["x"]
    assert table.is_shared() and driver.pins_tensor(table)
    address = table.data_ptr()
    store.share_memory_()
    pickle.dumps(store)
    assert store["x"].data_ptr() == address and driver.pins_tensor(store["x"])
    store.release()


def test_a_table_that_moved_is_pinned_again(gpu, driver):
    x = torch.randn(1000, 8)
    ids = torch.tensor([4, 2])
    store = FeatureStore({"x": x.clone()}, pin=True)
    store.gather("x", ids, device="cuda")
    old = (store["x"].data_ptr(), store["x"].nbytes)
    store["x"].set_(x.clone().share_memory_())  # the storage swapped under the store
    assert torch.equal(done(gpu, store.gather("x", ids, device="cuda")), x[ids])
    assert not driver.pins(*old) and driver.pins_tensor(store["x"])
    store.release()


# --------------------------------------------------------------------------- 6. memory maps


@pytest.mark.parametrize("pin", [True, False])
def test_memory_mapped_tables_are_staged_not_pinned(gpu, driver, tmp_path, pin):
    x = torch.randn(40_000, 8)
    np.save(tmp_path / "x.npy", x.numpy())
    store = FeatureStore({"x": tmp_path / "x.npy", "y": torch.arange(40_000)}, pin=pin)
    ids = torch.randint(0, 40_000, (30_000,), generator=torch.Generator().manual_seed(0))
    rows = store.gather_all(ids, device="cuda")
    gpu.finish()
    assert torch.equal(rows["x"], x[ids]) and torch.equal(rows["y"], ids)
    assert not driver.pins_tensor(store["x"]), "a memory-mapped table was pinned"
    assert driver.pins_tensor(store["y"]) == pin
    assert (len(gpu.aliases) == 1) == pin  # y read in place; x staged
    store.release()


# --------------------------------------------------------------------------- 7. pickling


def test_pickled_store_drops_device_state_and_keeps_maps_as_files(gpu, driver, tmp_path):
    x = torch.randn(50_000, 16)
    np.save(tmp_path / "x.npy", x.numpy())
    store = FeatureStore({"x": tmp_path / "x.npy", "y": torch.arange(50_000)}, pin=True)
    ids = torch.tensor([1, 49_999, 7])
    store.gather("y", ids, device="cuda")
    blob = pickle.dumps(store)
    assert len(blob) < store["y"].nbytes + x.nbytes // 10, "the memory-mapped table was pickled whole"
    copy = pickle.loads(blob)
    assert copy._aliases == {} and copy._pinned == {} and store._pinned
    assert torch.equal(copy.gather("x", ids), x[ids]) and "x" in copy._mapped
    assert torch.equal(copy.gather("y", ids), ids)
    store.release()


# --------------------------------------------------------------------------- 8. device writes


def test_host_reads_wait_for_device_writes(gpu, driver):
    store = FeatureStore({"m": torch.zeros(100, 4)}, pin=True)
    store.scatter_("m", torch.tensor([3, 9]), cuda_tensor(torch.ones(2, 4)))  # queued
    assert torch.equal(store["m"][[3, 9]], torch.ones(2, 4))
    assert torch.equal(store.gather("m", torch.tensor([9])), torch.ones(1, 4))
    store.release()


def test_lazy_state_reset_after_device_writes(gpu, driver):
    state = LazyState(100, 4, pin=True)
    ids = torch.tensor([1, 5, 7])
    state.write("fea", ids, cuda_tensor(torch.full((3, 4), 2.0)))
    assert state.written("fea")[ids].all()
    state.reset()
    gpu.finish()
    assert not state["fea"].any(), "a queued device write landed after reset()"
    assert not state.written("fea").any()
    state.store.release()


def test_a_device_read_on_another_stream_waits_for_the_write(gpu, driver):
    store = FeatureStore({"m": torch.zeros(100, 4)}, pin=True)
    side = gpu.Stream()
    with gpu.stream(side):
        store.scatter_("m", torch.tensor([3]), cuda_tensor(torch.ones(1, 4)))
    rows = store.gather("m", torch.tensor([3]), device="cuda")  # on the default stream
    gpu.default.run()
    assert torch.equal(rows, torch.ones(1, 4)), "the read ran before the other stream's write"
    store.release()


def test_unpinned_store_writes_from_the_device_on_the_host(gpu, driver):
    store = FeatureStore({"m": torch.zeros(100, 4)}, pin=False)
    store.scatter_("m", torch.tensor([3]), cuda_tensor(torch.ones(1, 4)))
    assert torch.equal(store._tables["m"][3], torch.ones(4)) and driver.registers == {}


# --------------------------------------------------------------------------- 9. one sort per batch


def test_gather_all_sorts_the_ids_once_for_every_table(gpu, driver):
    gen = torch.Generator().manual_seed(0)
    tables = {"a": torch.randn(500, 3, generator=gen), "b": torch.arange(500),
              "c": torch.rand(500, generator=gen) > 0.5}
    store = FeatureStore(tables, pin=True)
    ids = torch.randint(0, 500, (300,), generator=gen)
    rows = store.gather_all(ids, device="cuda")
    gpu.finish()
    assert gpu.indexes == 1
    assert all(torch.equal(rows[k], t[ids]) for k, t in tables.items())
    store.release()


@pytest.mark.parametrize("ids", [[], [4, 0, 4, 9, 1], [9] * 5, list(range(9, -1, -1))])
def test_gather_on_device_puts_rows_back_in_request_order(ids):
    """The device gather's arithmetic is device-independent, so the CPU checks it."""
    table = torch.randn(10, 3)
    index = torch.tensor(ids, dtype=torch.int64)
    prepared = cuda_module.DeviceIndex(index, torch.device("cpu"))
    assert torch.equal(cuda_module.gather_on_device(table, prepared), table[index])


# --------------------------------------------------------------------------- review fixes


class _FencingRegistration:
    """A pool registration whose fence asks the pool for a buffer before its event is
    recorded, as a second prefetch thread may while the first thread's view is being
    finalized: no event yet reads as idle, as with CUDA."""

    def __init__(self, pool: BufferPool) -> None:
        self.pool = pool
        self.handed_out: list[int] = []
        self.pending = False  # an event recorded and not completed

    def fence(self) -> None:
        if not self.pool.probing:  # once: the probe's own view is fenced too
            self.pool.probing = True
            self.handed_out.append(self.pool.empty((1 << 16,), torch.float32).data_ptr())
        self.pending = True

    def idle(self) -> bool:
        return not self.pending


def test_a_buffer_is_not_free_until_its_fence_is_recorded():
    registrations = []
    pool = BufferPool(capacity=4, register=lambda raw: registrations.append(
        _FencingRegistration(pool)) or registrations[-1])
    pool.probing = False
    first = pool.empty((1 << 16,), torch.float32)
    address = first.data_ptr()
    del first  # its finalizer fences, and the fence asks for a buffer
    assert registrations[0].handed_out and address not in registrations[0].handed_out


def test_fences_keep_an_event_recorded_while_they_are_checked(gpu):
    fences = cuda_module.Fences()
    stream = gpu.default
    older, newer = gpu.Event(), gpu.Event()
    older.record(stream)
    fences.add(stream, older)

    def query() -> bool:  # another thread fences meanwhile
        newer.record(stream)
        fences.add(stream, newer)
        return True
    older.query = query
    assert fences.idle()
    assert not fences.idle(), "the newer, pending event was dropped"


def test_a_finalizer_never_waits_for_the_registration_lock(driver):
    owner = np.zeros(4 * PAGE, dtype=np.uint8)
    registration = cuda_module.PinnedRegistration(owner, owner.ctypes.data, owner.nbytes,
                                                  "a buffer", 0)
    assert driver.pinned
    dropped = threading.Thread(target=lambda: registration._finalizer())
    with cuda_module._LOCK:  # held, as by a _pin whose allocation set off a collection
        dropped.start()
        dropped.join(timeout=10)
        alive = dropped.is_alive()
    dropped.join()
    assert not alive, "the finalizer waited for the lock"
    assert cuda_module.registered_ranges() == [] and driver.pinned == {}


def test_primary_context_is_retained_once_and_never_released():
    calls: list[str] = []

    class Lib:
        def __getattr__(self, name):
            def fn(*args):
                calls.append(name)
                for a in args:
                    if hasattr(a, "_obj") and name in ("cuDeviceGet", "cuDevicePrimaryCtxRetain"):
                        a._obj.value = 7 if name == "cuDeviceGet" else 0x1234
                return 0
            setattr(self, name, fn)
            return fn

    drv = cuda_driver.Driver(Lib())
    for _ in range(3):
        with drv.context(0):
            pass
    assert calls.count("cuDevicePrimaryCtxRetain") == 1
    assert calls.count("cuCtxPushCurrent_v2") == calls.count("cuCtxPopCurrent_v2") == 3
    assert not any("Release" in c for c in calls)


def test_a_device_write_waits_for_reads_queued_on_other_streams(gpu, driver):
    store = FeatureStore({"m": torch.zeros(100, 4)}, pin=True)
    side = gpu.Stream()
    with gpu.stream(side):
        rows = store.gather("m", torch.tensor([3]), device="cuda")  # queued read
    store.scatter_("m", torch.tensor([3]), cuda_tensor(torch.ones(1, 4)))  # default stream
    gpu.default.run()
    gpu.finish()
    assert torch.equal(rows, torch.zeros(1, 4)), "the write overtook a read queued before it"
    store.release()


def test_stores_made_in_workers_do_not_pin(monkeypatch):
    monkeypatch.setattr(cuda_module, "cuda_available", lambda: True)
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: object())
    assert FeatureStore({"x": torch.zeros(3, 2)}).pin is False
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: None)
    assert FeatureStore({"x": torch.zeros(3, 2)}, pin=False).pin is False
    assert FeatureStore({"x": torch.zeros(3, 2)}).__dict__["pin"] is True


def test_pinned_buffers_are_not_mapped_in_forked_children(gpu, driver):
    """Pinned buffers are left out of forked children (the kernel would copy pinned
    pages into each); a child's pool makes its own."""
    pool = BufferPool(capacity=2, register=cuda_module.register_array)
    kept = pool.empty((1 << 18,), torch.float32)
    kept.numpy()[:] = 1
    del kept
    pid = os.fork()
    if pid == 0:  # the child (numpy only: torch's OpenMP is not fork-safe)
        try:
            t = pool.empty((1 << 18,), torch.float32)
            t.numpy()[:] = 2  # an inherited pinned buffer is not mapped here
            own = len(pool._buffers) == 1 and pool._buffers[0][1] is None
            os._exit(0 if own and pool.allocations == 2 else 3)
        except BaseException:  # noqa: BLE001
            os._exit(4)
    for _ in range(600):
        done_pid, status = os.waitpid(pid, os.WNOHANG)
        if done_pid:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
