"""Zero-copy CUDA gathers from pinned host tables, and the CUDA loader path (skipped
without a GPU).

Registration is probed with the driver's ``cuMemHostRegister``: a range that is still
registered cannot be registered again (error 712), one that was released can. The
driver keeps no pending error, unlike the runtime's ``cudaHostRegister``.

Orderings are checked without synchronizing in between: a stream is held up with
``torch.cuda._sleep``, the work that must wait for it (or must not be overtaken) is
queued at once, and results are compared only at the end, so work on the wrong stream,
a missing wait, or memory reused or unpinned too early gives wrong values. (Comparing
with ``torch.equal`` right away would synchronize and hide it.)
``test_cuda_mocked.py`` and ``test_cuda_host_memory.py`` check the same rules on the
CPU with fakes.
"""
from __future__ import annotations

import gc
import pickle

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from conftest import make_graph
from graphbatch import NeighborLoader, _numba
from graphbatch.features import FeatureStore, cuda_driver
from graphbatch.features import cuda as cuda_module
from graphbatch.lazy.state import LazyState
from graphbatch.loader.prefetch import Prefetcher

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
#: GPU clock cycles a stream is held up for: about 50 ms at 1.5 to 2 GHz, far longer than
#: the host takes to queue the work that must wait for it (or wrongly does not).
_SLEEP_CYCLES = 100_000_000


@pytest.fixture(autouse=True)
def _clean_cuda_state():
    gc.collect()  # stores of earlier tests (and their registrations) go first
    yield
    gc.collect()
    torch.cuda.synchronize()


def _can_register(t: torch.Tensor) -> bool:
    """Whether ``t``'s bytes can be pinned now (i.e. nobody holds them registered);
    leaves them unregistered either way."""
    drv = cuda_driver.driver()
    ptr, nbytes = t.data_ptr(), t.numel() * t.element_size()
    with drv.context(torch.cuda.current_device()):
        if drv.host_register(ptr, nbytes, cuda_driver.REGISTER_PORTABLE) != 0:
            return False
        assert drv.host_unregister(ptr) == 0
    return True


def _id_sets(rows: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "empty": torch.empty(0, dtype=torch.int64),
        "sorted": torch.arange(0, rows, 7),
        "unsorted": torch.randperm(rows, generator=gen)[: rows // 2],
        "repeated": torch.randint(0, rows, (2 * rows,), generator=gen),
        "same_row": torch.full((50,), rows - 1, dtype=torch.int64),
        "int32": torch.randint(0, rows, (100,), generator=gen, dtype=torch.int32),
    }


TABLES = {
    "float32": lambda n, g: torch.randn(n, 16, generator=g),
    "float64": lambda n, g: torch.randn(n, 3, generator=g, dtype=torch.float64),
    "int64": lambda n, g: torch.randint(-(2**40), 2**40, (n,), generator=g),
    "int32_rows": lambda n, g: torch.randint(0, 1000, (n, 5), generator=g, dtype=torch.int32),
    "bool": lambda n, g: torch.rand(n, generator=g) < 0.5,
    "uint8_rows": lambda n, g: torch.randint(0, 255, (n, 7), generator=g, dtype=torch.uint8),
    "multi_dim": lambda n, g: torch.randn(n, 3, 4, generator=g),
    "float16_source": lambda n, g: torch.randn(n, 6, generator=g).half(),
    "bfloat16_source": lambda n, g: torch.randn(n, 6, generator=g).bfloat16(),
}


@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda", 0)])
@pytest.mark.parametrize("kind", list(TABLES))
def test_gather_on_device_equals_indexing(kind, device):
    gen = torch.Generator().manual_seed(0)
    rows = 5000
    table = TABLES[kind](rows, gen)
    store = FeatureStore({"t": table})
    for what, ids in _id_sets(rows, gen).items():
        out = store.gather("t", ids, device=device)
        assert out.is_cuda, what
        assert out.dtype == table.dtype and out.shape == (ids.numel(), *table.shape[1:]), what
        assert torch.equal(out.cpu(), table[ids.long()]), what
    store.release()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gather_on_device_half_precision_store(dtype):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3000, 32, generator=gen)
    y = torch.randint(0, 9, (3000,), generator=gen)
    store = FeatureStore({"x": x, "y": y}, dtype=dtype)
    for what, ids in _id_sets(3000, gen).items():
        out = store.gather("x", ids, device="cuda")
        assert out.dtype == dtype and out.is_cuda, what
        assert torch.equal(out.cpu(), x.to(dtype)[ids.long()]), what
        assert torch.equal(store.gather("y", ids, device="cuda").cpu(), y[ids.long()]), what
    store.release()


def test_gather_on_device_large_table():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(400_000, 64, generator=gen)  # 100 MB
    store = FeatureStore({"x": x})
    ids = torch.randint(0, x.size(0), (300_000,), generator=gen)
    out = store.gather("x", ids, device="cuda")
    assert torch.equal(out, x.cuda()[ids.cuda()])
    store.release()


def test_gather_on_device_memory_mapped_table(tmp_path):
    """A ``.npy`` table (opened read-only, memory-mapped) gathered on the GPU."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2000, 8, generator=gen)
    path = tmp_path / "x.npy"
    np.save(path, x.numpy())
    store = FeatureStore({"x": path})
    ids = torch.randint(0, 2000, (1000,), generator=gen)
    assert torch.equal(store.gather("x", ids, device="cuda").cpu(), x[ids])
    store.release()


def test_gather_on_device_zero_width_table():
    store = FeatureStore({"e": torch.zeros(10, 0)})
    out = store.gather("e", torch.tensor([3, 1, 3]), device="cuda")
    assert out.is_cuda and out.shape == (3, 0)
    store.release()


def test_cpu_and_device_gathers_mix():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(300_000, 16, generator=gen)
    for pin in (None, True, False):
        store = FeatureStore({"x": x}, pin=pin)
        ids = torch.randint(0, x.size(0), (200_000,), generator=gen)  # 12.8 MB: pooled on CPU
        cpu = store.gather("x", ids)
        dev = store.gather("x", ids, device="cuda")
        cpu2 = store.gather("x", ids.flip(0))
        assert not cpu.is_cuda and dev.is_cuda
        assert torch.equal(cpu, x[ids]) and torch.equal(cpu2, x[ids.flip(0)])
        assert torch.equal(dev.cpu(), x[ids])
        store.release()
        del store, cpu, cpu2, dev
        gc.collect()


def test_gather_on_a_side_stream():
    """The gather runs on the current stream: issued on a side stream while the default
    stream is held up, it is complete when the side stream alone has finished (work put
    on the default stream would still be waiting)."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(20_000, 32, generator=gen)
    store = FeatureStore({"x": x})
    ids = torch.randint(0, x.size(0), (50_000,), generator=gen)
    store.gather("x", ids[:1], device="cuda")  # pins now: registering may synchronize
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    torch.cuda._sleep(_SLEEP_CYCLES)  # on the default stream
    with torch.cuda.stream(side):
        out = store.gather("x", ids, device="cuda")
        got = out.cpu()  # copied on the side stream, which alone is synchronized
    assert torch.equal(got, x[ids])
    store.release()


# --------------------------------------------------------------------------- registration


def test_release_unpins_and_is_idempotent():
    x = torch.randn(10_000, 8)
    store = FeatureStore({"x": x})
    ids = torch.tensor([5, 0, 9999, 5])
    assert _can_register(x)
    assert torch.equal(store.gather("x", ids, device="cuda").cpu(), x[ids])
    assert not _can_register(x), "the table was not pinned by the device gather"
    store.release()
    store.release()  # idempotent
    assert _can_register(x), "release() left the table pinned"
    # The store still works after release: it pins again.
    assert torch.equal(store.gather("x", ids, device="cuda").cpu(), x[ids])
    store.release()
    assert _can_register(x)


def test_freeing_the_store_unpins():
    x = torch.randn(10_000, 8)
    ids = torch.tensor([1, 2, 3])
    store = FeatureStore({"x": x})
    store.gather("x", ids, device="cuda")
    del store
    gc.collect()
    assert _can_register(x), "a freed store left its table pinned"
    again = FeatureStore({"x": x})  # a new store can pin the same tensor
    assert torch.equal(again.gather("x", ids, device="cuda").cpu(), x[ids])
    again.release()


def test_two_stores_over_one_tensor():
    """Two stores over the same tensor (e.g. two loaders over one ``Data``), both
    gathering on the GPU at once."""
    x = torch.randn(10_000, 8)
    ids = torch.tensor([7, 3, 7])
    a = FeatureStore({"x": x})
    b = FeatureStore({"x": x})
    assert torch.equal(a.gather("x", ids, device="cuda").cpu(), x[ids])
    assert torch.equal(b.gather("x", ids, device="cuda").cpu(), x[ids])
    a.release()
    assert not _can_register(x), "releasing one store unpinned the other's table"
    assert torch.equal(b.gather("x", ids, device="cuda").cpu(), x[ids])
    b.release()
    assert _can_register(x)


def test_pinned_cpu_buffers_are_released_with_the_store():
    """A pinned store's pool buffers are registered, stay so while the store or a batch
    in them lives (``release()`` unpins the tables only), and are unregistered once
    neither does."""
    x = torch.randn(300_000, 16)
    store = FeatureStore({"x": x}, pin=True)
    out = store.gather("x", torch.arange(200_000))  # pooled buffer, registered for CUDA
    assert torch.equal(out, x[:200_000])
    # The buffer's whole range, held mapped by the test (the pool tracks only the views
    # it hands out), so that it can be probed after the pool and the batch are gone.
    raw = next(slot[0] for slot in store._pool._buffers
               if slot[0].ctypes.data == out.data_ptr())
    memory = torch.from_numpy(raw)
    assert not _can_register(memory), "the pool buffer was not pinned"
    moved = out.to("cuda", non_blocking=True)
    torch.cuda.synchronize()
    assert torch.equal(moved.cpu(), x[:200_000])
    store.release()
    assert not _can_register(memory), "release() unpinned a buffer the pool reuses"
    del store
    gc.collect()
    assert not _can_register(memory), "a buffer was unpinned while a batch in it lives"
    del out, moved
    gc.collect()
    assert _can_register(memory), "the buffer stayed pinned after the store and its batch"


# --------------------------------------------------------------------------- loader


@pytest.fixture
def data() -> Data:
    """A fresh graph per test, so a registration one test leaves behind cannot fail the
    next test's pinning of the same tensors."""
    d = make_graph(num_nodes=2000, num_edges=15_000, seed=6, num_isolated=20)
    d.train_mask = torch.arange(2000) % 3 == 0
    d.graph_label = torch.tensor(7)
    return d


def _epoch(loader, seed: int) -> list[Data]:
    torch.manual_seed(seed)
    return list(loader)


def _assert_same_on_device(cpu: Data, dev: Data) -> None:
    assert sorted(cpu.keys()) == sorted(dev.keys())
    for key in cpu.keys():
        a, b = cpu[key], dev[key]
        if isinstance(a, torch.Tensor):
            assert b.is_cuda, key
            assert a.dtype == b.dtype, key
            assert torch.equal(a.cuda(), b), key
        else:
            assert a == b, key


@pytest.mark.parametrize("prefetch", [0, 2])
def test_loader_on_device_equals_cpu_batches(data, prefetch):
    kwargs = dict(num_neighbors=[10, 5], batch_size=128, shuffle=True)
    cpu = _epoch(NeighborLoader(data, prefetch=0, **kwargs), seed=7)
    loader = NeighborLoader(data, device="cuda", prefetch=prefetch, **kwargs)
    dev = _epoch(loader, seed=7)
    torch.cuda.synchronize()
    assert len(dev) == len(cpu) == len(loader)
    for a, b in zip(cpu, dev):
        _assert_same_on_device(a, b)
    loader.node_store.release()
    loader.edge_store.release()


def test_loader_on_device_half_precision_store(data):
    store = FeatureStore.from_data(data, "node", dtype=torch.float16)
    loader = NeighborLoader(data, [10, 5], batch_size=128, node_store=store, device="cuda")
    x_half = data.x.half().cuda()
    batches = _epoch(loader, seed=8)
    assert len(batches) == len(loader) > 0
    for b in batches:
        assert b.x.is_cuda and b.x.dtype == torch.float16
        assert torch.equal(b.x, x_half[b.n_id])
    store.release()
    loader.edge_store.release()


def test_two_loaders_over_one_data_on_device(data):
    """A train and an evaluation loader over the same ``Data``, both on the GPU."""
    train = NeighborLoader(data, [10, 5], batch_size=128, device="cuda",
                           input_nodes=data.train_mask)
    evaluate = NeighborLoader(data, [10, 5], batch_size=256, device="cuda",
                              input_nodes=~data.train_mask)
    x = data.x.cuda()
    for _ in range(2):
        for loader in (train, evaluate):
            seen = 0
            for b in loader:
                assert torch.equal(b.x, x[b.n_id])
                seen += b.batch_size
            assert seen == int(loader.input_nodes.numel()) > 0
    for loader in (train, evaluate):
        loader.node_store.release()
        loader.edge_store.release()


def _prefetch_mismatches(slow: str) -> list[int]:
    """Batches gathered on the prefetch threads' side streams and read by the consumer
    on its stream at once, without synchronizing, each dropped right after so its
    memory can be reused; ``slow`` ("producer" or "consumer") is the stream held up
    before each batch's work. Returns each batch's count of wrong entries, read after
    everything has run."""
    gen = torch.Generator().manual_seed(10)
    x = torch.randn(50_000, 32, generator=gen)
    device = torch.device("cuda")
    store = FeatureStore({"x": x})
    reference = x.to(device)
    n = 16
    # Equal sizes, so a freed batch's blocks fit the next batches exactly.
    ids = [torch.randint(0, x.size(0), (20_000,), generator=gen).to(device) for _ in range(n)]
    store.gather_unchecked("x", ids[0], device)  # pins now: registering may synchronize
    torch.cuda.synchronize()

    def produce(i: int) -> Data:
        if slow == "producer":
            torch.cuda._sleep(_SLEEP_CYCLES)  # on the side stream: the gather lands late
        return Data(x=store.gather_unchecked("x", ids[i], device), n_id=ids[i])

    mismatches = torch.zeros(n, dtype=torch.int64, device=device)
    loader = Prefetcher(iter(range(n)), produce, depth=4, device=device, length=n, threads=2)
    for i, batch in enumerate(loader):
        if slow == "consumer":
            torch.cuda._sleep(_SLEEP_CYCLES)  # the read below runs late
        mismatches[i] = (batch.x != reference[batch.n_id]).sum()
        del batch  # its blocks are free for the next batches' allocations
    torch.cuda.synchronize()
    store.release()
    return mismatches.tolist()


def test_prefetch_consumer_waits_for_the_side_stream():
    """The consumer's stream waits for each batch's work on the side stream: with that
    stream held up before each gather, a read queued at once still sees the rows."""
    assert _prefetch_mismatches("producer") == [0] * 16


def test_prefetch_batch_memory_is_not_reused_while_the_consumer_reads():
    """A batch dropped by the consumer before its stream has read it is not handed to
    the side stream's next allocations (``record_stream``): with the consumer's stream
    held up before each read, the later batches, gathered at once into freed blocks,
    would overwrite it first."""
    assert _prefetch_mismatches("consumer") == [0] * 16


# --------------------------------------------------------------------------- issue 15


def _ids(n: int, rows: int, count: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, rows, (count,), generator=gen) for _ in range(n)]


def test_copies_of_dropped_pinned_batches_read_their_own_rows():
    """Batches gathered into pinned, reused buffers, copied with ``non_blocking=True``
    behind a long kernel and dropped at once: no buffer may be refilled before its copy
    has run (item 1)."""
    x = torch.randn(100_000, 32)
    store = FeatureStore({"x": x}, pin=True)
    ids = _ids(24, 100_000, 30_000, seed=20)  # 3.8 MB each: pooled
    copies = []
    for index in ids:
        torch.cuda._sleep(_SLEEP_CYCLES // 4)  # the copy below runs late
        batch = store.gather("x", index)
        copies.append(batch.to("cuda", non_blocking=True))
        del batch
    torch.cuda.synchronize()
    wrong = [i for i, (index, c) in enumerate(zip(ids, copies)) if not torch.equal(c.cpu(), x[index])]
    assert wrong == []
    assert store._pool.allocations <= store._pool.capacity + 1


def test_filter_per_worker_on_device_without_workers(data, tmp_path):
    """``filter_per_worker=True`` with a device and no workers: batches are built on
    the device. A memory-mapped table (staged through reused pinned buffers, 1 MB and
    more a batch) is checked on the GPU per batch, each batch dropped at once behind a
    long kernel (item 1)."""
    wide = torch.randn(data.num_nodes, 512)
    np.save(tmp_path / "wide.npy", wide.numpy())
    store = FeatureStore({"wide": tmp_path / "wide.npy"}, pin=True)
    reference = wide.cuda()
    for prefetch in (0, 2):
        loader = NeighborLoader(data, [10, 5], batch_size=128, shuffle=True, device="cuda",
                                filter_per_worker=True, prefetch=prefetch, node_store=store)
        wrong = torch.zeros(len(loader), dtype=torch.int64, device="cuda")
        for i, batch in enumerate(loader):
            torch.cuda._sleep(_SLEEP_CYCLES // 8)
            wrong[i] = (batch.wide != reference[batch.n_id]).sum()
            del batch
        torch.cuda.synchronize()
        assert wrong.tolist() == [0] * len(loader)
        loader.edge_store.release()
    store.release()


@pytest.mark.parametrize("filter_per_worker", [False, True])
@pytest.mark.parametrize("context", [
    pytest.param("fork", marks=pytest.mark.skipif(not _numba.FORK_SAFE,
                                                  reason="numba's threading layer is not fork-safe")),
    "forkserver", "spawn"])
def test_workers_after_the_parent_used_cuda(data, filter_per_worker, context):
    """Workers started once the parent has a CUDA context and a pinned store: forked
    workers must make no CUDA call, spawned ones get the store without its device
    state (items 2, 7)."""
    store = FeatureStore.from_data(data, "node", pin=True)
    store.gather("x", torch.tensor([0, 1]), device="cuda")  # parent: pinned, aliased
    kwargs = dict(num_neighbors=[10, 5], batch_size=256, node_store=store,
                  filter_per_worker=filter_per_worker)
    cpu = _epoch(NeighborLoader(data, prefetch=0, **kwargs), seed=22)
    for _ in range(2):  # a second epoch pickles the loader again under spawn
        loader = NeighborLoader(data, device="cuda", num_workers=2,
                                multiprocessing_context=context, **kwargs)
        dev = _epoch(loader, seed=22)
        torch.cuda.synchronize()
        assert len(dev) == len(cpu)
        for a, b in zip(cpu, dev):
            assert torch.equal(a.x.cuda(), b.x) and torch.equal(a.n_id.cuda(), b.n_id)
    store.release()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs a second GPU")
def test_second_device_reads_and_writes_in_place():
    """On cuda:1 the alias is made on cuda:1 at the table's memory: a gather comes back
    there, and a scatter from cuda:1 reaches the host table (item 3)."""
    x = torch.randn(10_000, 8)
    store = FeatureStore({"x": x.clone()}, pin=True)
    ids = torch.tensor([5, 0, 9999])
    first = store.gather("x", ids, device="cuda:0")
    second = store.gather("x", ids, device="cuda:1")
    assert first.device == torch.device("cuda", 0) and second.device == torch.device("cuda", 1)
    store.scatter_("x", torch.tensor([7]), torch.ones(1, 8, device="cuda:1"))
    assert torch.equal(store["x"][7], torch.ones(8))
    assert torch.equal(second.cpu(), x[ids]) and torch.equal(first.cpu(), x[ids])
    store.release()


def test_already_pinned_and_page_sharing_tables():
    """A table pinned by torch is used as it is and stays pinned after release; tables
    sharing pages (a view pinned before its base, small label and mask tables) pin
    together (item 4)."""
    pinned = torch.randn(5000, 8).pin_memory()
    base = torch.randn(64 * 1024)
    view = base[4096:8192].view(-1, 8)
    labels, mask = torch.arange(64), torch.arange(64) % 2 == 0
    ids = torch.tensor([3, 1, 3])
    stores = [FeatureStore({"p": pinned}), FeatureStore({"v": view}),
              FeatureStore({"b": base.view(-1, 8)}), FeatureStore({"y": labels, "m": mask})]
    rows = [s.gather_all(ids, device="cuda") for s in stores]
    torch.cuda.synchronize()
    assert torch.equal(rows[0]["p"].cpu(), pinned[ids])
    assert torch.equal(rows[1]["v"].cpu(), view[ids])
    assert torch.equal(rows[2]["b"].cpu(), base.view(-1, 8)[ids])
    assert torch.equal(rows[3]["y"].cpu(), labels[ids]) and torch.equal(rows[3]["m"].cpu(), mask[ids])
    for s in stores:
        s.release()
    assert pinned.is_pinned(), "release() unpinned memory torch had pinned"
    assert _can_register(base) and cuda_module.registered_ranges() == []


def test_release_right_after_queued_gathers():
    """``release()`` waits for the gathers still queued behind a long kernel before it
    unpins (item 5)."""
    x = torch.randn(50_000, 32)
    store = FeatureStore({"x": x}, pin=True)
    ids = _ids(4, 50_000, 20_000, seed=23)
    on_device = [i.cuda() for i in ids]  # no pageable copy to wait behind the kernel
    store.gather("x", ids[0][:1], device="cuda")  # pins now
    torch.cuda.synchronize()
    torch.cuda._sleep(_SLEEP_CYCLES)
    rows = [store.gather_unchecked("x", i, torch.device("cuda")) for i in on_device]
    store.release()
    torch.cuda.synchronize()
    assert all(torch.equal(r.cpu(), x[i]) for r, i in zip(rows, ids))
    assert _can_register(x)


def test_memory_mapped_table_is_staged_not_pinned(tmp_path):
    """A memory-mapped table is gathered on the CPU and copied, never pinned (which
    would read the whole file into RAM) (item 6)."""
    x = torch.randn(200_000, 16)
    np.save(tmp_path / "x.npy", x.numpy())
    store = FeatureStore({"x": tmp_path / "x.npy"}, pin=True)
    reference = x.cuda()
    ids = _ids(24, 200_000, 50_000, seed=24)  # more batches than the pool has buffers
    wrong = torch.zeros(len(ids), dtype=torch.int64, device="cuda")
    for i, index in enumerate(ids):
        torch.cuda._sleep(_SLEEP_CYCLES // 4)
        rows = store.gather("x", index, device="cuda")
        wrong[i] = (rows != reference[index.cuda()]).sum()
        del rows
    torch.cuda.synchronize()
    assert wrong.tolist() == [0] * len(ids)
    table = store["x"]
    start, end = table.data_ptr(), table.data_ptr() + table.numel() * 4
    assert not any(s < end and start < e for s, e, _ in cuda_module.registered_ranges())
    store.release()


def test_pickled_store_after_device_gathers():
    store = FeatureStore({"x": torch.randn(1000, 4)}, pin=True)
    ids = torch.tensor([9, 1])
    store.gather("x", ids, device="cuda")
    copy = pickle.loads(pickle.dumps(store))
    assert torch.equal(copy.gather("x", ids, device="cuda").cpu(), store["x"][ids])
    copy.release()
    store.release()


@pytest.mark.parametrize("pin", [True, False])
def test_lazy_state_on_the_gpu(pin):
    """Writes from the GPU queued behind a long kernel: the host views wait for them,
    and ``reset()`` is not overtaken by them (item 8)."""
    state = LazyState(10_000, 8, pin=pin)
    ids = torch.tensor([1, 5, 9999])
    values = torch.full((3, 8), 2.0, device="cuda")
    torch.cuda._sleep(_SLEEP_CYCLES)
    state.write("fea", ids, values)
    assert state.written("fea")[ids].all()
    assert torch.equal(state["fea"][ids], torch.full((3, 8), 2.0))
    rows, written = state.read("fea", ids, torch.device("cuda"))
    torch.cuda._sleep(_SLEEP_CYCLES)
    state.write("fea", ids, values * 3)
    state.reset()
    torch.cuda.synchronize()
    assert not state["fea"].any() and not state.written("fea").any()
    assert torch.equal(rows.cpu(), torch.full((3, 8), 2.0)) and written.all()
    state.store.release()


def test_device_writes_then_reads_on_another_stream():
    store = FeatureStore({"m": torch.zeros(10_000, 4)}, pin=True)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(_SLEEP_CYCLES)
        store.scatter_("m", torch.tensor([3]), torch.ones(1, 4, device="cuda"))
    rows = store.gather("m", torch.tensor([3]), device="cuda")  # default stream
    torch.cuda.synchronize()
    assert torch.equal(rows.cpu(), torch.ones(1, 4))
    store.release()


def test_unpinned_store_on_the_device_path():
    x = torch.randn(100_000, 16)
    store = FeatureStore({"x": x}, pin=False)
    ids = _ids(3, 100_000, 20_000, seed=25)
    out = [store.gather("x", i, device="cuda") for i in ids]
    torch.cuda.synchronize()
    assert all(torch.equal(o.cpu(), x[i]) for o, i in zip(out, ids))
    assert cuda_module.registered_ranges() == [] and _can_register(x)
