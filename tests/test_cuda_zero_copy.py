"""Zero-copy CUDA gathers from pinned host tables, and the CUDA loader path (skipped
without a GPU).

Registration is checked with ``torch.cuda.cudart().cudaHostRegister``: a range that is
still registered cannot be registered again (``cudaErrorHostMemoryAlreadyRegistered``),
one that was released can. A failed CUDA runtime call leaves its error pending until the
next kernel launch reports it, so every test ends by draining that error (see
``_drain_cuda_error``) so it cannot surface in an unrelated later test.

Stream ordering is checked without synchronizing in between: one stream is held up with
``torch.cuda._sleep`` and the other reads at once into a device buffer, checked only at
the end, so work put on the wrong stream, or a missing wait, reads unwritten memory.
(Comparing with ``torch.equal`` right away would synchronize and hide both.)
``test_cuda_mocked.py`` checks the same orderings on the CPU with fake streams.
"""
from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from conftest import make_graph
from graphbatch import NeighborLoader
from graphbatch.features import FeatureStore
from graphbatch.loader.prefetch import Prefetcher

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
#: GPU clock cycles a stream is held up for: about 50 ms at 1.5 to 2 GHz, far longer than
#: the host takes to queue the work that must wait for it (or wrongly does not).
_SLEEP_CYCLES = 100_000_000


def _drain_cuda_error() -> None:
    """Consumes a pending (non-sticky) CUDA runtime error, if any: torch checks
    ``cudaGetLastError`` after a kernel launch and raises it there."""
    for _ in range(2):
        try:
            torch.ones(1, device="cuda").add_(1)
            torch.cuda.synchronize()
            return
        except RuntimeError:
            continue


@pytest.fixture(autouse=True)
def _clean_cuda_state():
    gc.collect()  # stores of earlier tests (and their registrations) go first
    yield
    gc.collect()
    torch.cuda.synchronize()
    _drain_cuda_error()


def _can_register(t: torch.Tensor) -> bool:
    """Whether ``t``'s bytes can be pinned now (i.e. nobody holds them registered);
    leaves them unregistered either way."""
    cudart = torch.cuda.cudart()
    ptr, nbytes = t.data_ptr(), t.numel() * t.element_size()
    err = int(cudart.cudaHostRegister(ptr, nbytes, 0))
    if err == 0:
        assert int(cudart.cudaHostUnregister(ptr)) == 0
        return True
    _drain_cuda_error()
    return False


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
