"""The prefetch thread and the NeighborLoader's node_store / edge_store / device / prefetch
arguments: same batches for any depth, held batches never overwritten, clean shutdown,
errors handed to the consumer."""
from __future__ import annotations

import gc
import threading
import time
import weakref
from typing import Optional

import numba
import numpy as np
import psutil
import pytest
import torch
from torch_geometric.data import Data

from conftest import make_graph, random_edge_index
from graphbatch import NeighborLoader
from graphbatch.features import FeatureStore
from graphbatch.features.buffers import POOL_MIN_BYTES
from graphbatch.loader.prefetch import Prefetcher, batch_nbytes, join_stopped

THREAD_PREFIX = "graphbatch-prefetch"
#: A prefetcher runs DEFAULT_THREADS producer threads by default.
THREADS_PER_PREFETCHER = 2


@pytest.fixture(scope="module")
def data() -> Data:
    d = make_graph(num_nodes=400, num_edges=2500, seed=3, num_isolated=20)
    d.train_mask = torch.arange(400) % 3 == 0
    d.graph_label = torch.tensor(7)
    return d


@pytest.fixture(scope="module")
def big() -> Data:
    """A graph whose batches' ``x`` are ~9 MB (> 4 MiB: gathered into pooled buffers)."""
    n = 20_000
    gen = torch.Generator().manual_seed(11)
    return Data(
        x=torch.randn(n, 256, generator=gen),
        y=torch.randint(0, 7, (n,), generator=gen),
        edge_index=random_edge_index(n, 200_000, seed=11, skew=0.0),
        num_nodes=n,
    )


def assert_same_batches(reference: list[Data], got: list[Data]) -> None:
    """Equal, non-empty epochs (``zip`` alone passes on two empty ones)."""
    assert len(reference) > 0 and len(got) == len(reference)
    for a, b in zip(reference, got):
        assert_same_batch(a, b)


def assert_same_batch(a: Data, b: Data) -> None:
    assert sorted(a.keys()) == sorted(b.keys())
    for key in a.keys():
        va, vb = a[key], b[key]
        if isinstance(va, torch.Tensor):
            assert va.dtype == vb.dtype and va.device == vb.device, key
            assert torch.equal(va, vb), key
        else:
            assert va == vb, key


def epoch(loader, seed: int) -> list[Data]:
    torch.manual_seed(seed)
    return list(loader)


def prefetch_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)}


def wait_until_gone(threads: set[threading.Thread], timeout: float = 5.0) -> set[threading.Thread]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gc.collect()
        alive = {t for t in threads if t.is_alive()}
        if not alive:
            return alive
        time.sleep(0.05)
    return {t for t in threads if t.is_alive()}


# --------------------------------------------------------------------------- same batches


def test_same_batches_for_any_prefetch_depth(data):
    kwargs = dict(num_neighbors=[5, 3], batch_size=32, shuffle=True)
    reference = epoch(NeighborLoader(data, prefetch=0, **kwargs), seed=1)
    assert len(reference) == 13
    for depth in (1, 2, 4):
        got = epoch(NeighborLoader(data, prefetch=depth, **kwargs), seed=1)
        assert_same_batches(reference, got)
        assert torch.equal(got[0].x, data.x[got[0].n_id])


def test_same_batches_with_two_workers(data):
    kwargs = dict(num_neighbors=[5, 3], batch_size=40, shuffle=True)
    reference = epoch(NeighborLoader(data, prefetch=0, **kwargs), seed=2)
    for depth in (0, 2):
        loader = NeighborLoader(data, prefetch=depth, num_workers=2, **kwargs)
        got = epoch(loader, seed=2)
        assert_same_batches(reference, got)


def test_same_batches_with_two_workers_filter_per_worker(data):
    kwargs = dict(num_neighbors=[5, 3], batch_size=40, shuffle=True)
    reference = epoch(NeighborLoader(data, prefetch=0, **kwargs), seed=3)
    loader = NeighborLoader(data, prefetch=2, num_workers=2, filter_per_worker=True, **kwargs)
    got = epoch(loader, seed=3)
    assert_same_batches(reference, got)


def test_device_cpu_is_the_default_path(data):
    kwargs = dict(num_neighbors=[4], batch_size=50)
    reference = epoch(NeighborLoader(data, **kwargs), seed=4)
    for device in ("cpu", torch.device("cpu")):
        got = epoch(NeighborLoader(data, device=device, **kwargs), seed=4)
        assert_same_batches(reference, got)


# --------------------------------------------------------------------------- held batches


@pytest.mark.parametrize("prefetch", [0, 1, 2, 4])
def test_held_batches_stay_correct(big, prefetch):
    loader = NeighborLoader(big, [10, 5], batch_size=250, shuffle=True, prefetch=prefetch,
                            input_nodes=torch.arange(0, 20_000, 2))
    torch.manual_seed(5)
    batches = list(loader)
    assert len(batches) == len(loader) == 40
    for b in batches:
        assert b.x.numel() * b.x.element_size() > POOL_MIN_BYTES  # the pooled path
        assert torch.equal(b.x, big.x[b.n_id])
        assert torch.equal(b.y, big.y[b.n_id])


def test_previous_batches_and_slices_stay_correct_over_epochs(big):
    """A loop keeping the last few batches (and slices of older ones) across epochs."""
    loader = NeighborLoader(big, [10, 5], batch_size=250, shuffle=True, prefetch=2,
                            input_nodes=torch.arange(0, 20_000, 2))
    torch.manual_seed(6)
    recent, slices = [], []
    for ep in range(2):
        for i, b in enumerate(loader):
            recent.append(b)
            recent = recent[-3:]
            if i % 10 == 0:
                slices.append((b.x[: b.batch_size], b.n_id[: b.batch_size].clone()))
            oldest = recent[0]  # gathered three batches ago, held since
            assert torch.equal(oldest.x, big.x[oldest.n_id])
    for r in recent:
        assert torch.equal(r.x, big.x[r.n_id])
    for x, n_id in slices:
        assert torch.equal(x, big.x[n_id])


def test_shared_node_store_larger_batches_after_holding_one(big):
    """Two loaders over one node_store (train, then a larger-batch evaluation), while the
    training loop still holds a batch: the evaluation batches need larger buffers."""
    store = FeatureStore.from_data(big, "node")
    train = NeighborLoader(big, [10, 5], batch_size=250, node_store=store, prefetch=2)
    evaluate = NeighborLoader(big, [10, 5], batch_size=1000, node_store=store, prefetch=2)
    torch.manual_seed(7)
    train_batches = list(train)  # fills the pool (6 buffers) and more
    kept = train_batches[0]  # the first pooled buffer stays in use
    del train_batches
    gc.collect()
    for b in evaluate:
        assert torch.equal(b.x, big.x[b.n_id])
    assert torch.equal(kept.x, big.x[kept.n_id])


# --------------------------------------------------------------------------- shutdown


def test_break_then_new_epoch(data):
    loader = NeighborLoader(data, [5, 3], batch_size=10, prefetch=2)
    assert len(loader) == 40
    for i, b in enumerate(loader):
        if i == 2:
            break
    batches = list(loader)
    assert len(batches) == 40
    for b in batches:
        assert torch.equal(b.x, data.x[b.n_id])


def test_thread_ends_after_close(data):
    before = prefetch_threads()
    loader = NeighborLoader(data, [5, 3], batch_size=10, prefetch=2)
    it = iter(loader)
    next(it)
    mine = prefetch_threads() - before
    assert len(mine) == THREADS_PER_PREFETCHER
    it.close()
    assert not wait_until_gone(mine)
    with pytest.raises(StopIteration):
        next(it)
    assert len(list(loader)) == 40  # the loader still works


def test_thread_ends_after_a_full_epoch(data):
    before = prefetch_threads()
    loader = NeighborLoader(data, [5, 3], batch_size=10, prefetch=2)
    it = iter(loader)
    mine = prefetch_threads() - before
    assert len(list(it)) == 40
    assert not wait_until_gone(mine)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_threads_are_joined_when_the_epoch_ends(data, num_workers):
    """The end of an epoch (or a failure) joins the producers before it is raised: one
    still running at interpreter exit can abort the process."""
    before = prefetch_threads()
    loader = NeighborLoader(data, [5, 3], batch_size=10, prefetch=2, num_workers=num_workers)
    it = iter(loader)
    mine = prefetch_threads() - before
    assert len(mine) == THREADS_PER_PREFETCHER
    assert len(list(it)) == 40
    assert not [t for t in mine if t.is_alive()]
    before = prefetch_threads()
    failing = NeighborLoader(data, [5], batch_size=10, prefetch=2, transform=RaiseOnBatch(2))
    it = iter(failing)
    mine = prefetch_threads() - before
    with pytest.raises(Boom):
        list(it)
    assert not [t for t in mine if t.is_alive()]


def test_thread_ends_when_the_iterator_is_dropped(data):
    """``for batch in loader: ... break`` drops the iterator: its thread must end."""
    before = prefetch_threads()
    loader = NeighborLoader(data, [5, 3], batch_size=10, prefetch=2)
    for i, b in enumerate(loader):
        if i == 1:
            break
    mine = prefetch_threads() - before
    del b
    gc.collect()
    assert not wait_until_gone(mine, timeout=2.0), "prefetch thread still alive after break"


def test_thread_ends_when_an_unstarted_iterator_is_deleted(data):
    before = prefetch_threads()
    loader = NeighborLoader(data, [5, 3], batch_size=10, prefetch=2)
    it = iter(loader)
    mine = prefetch_threads() - before
    del it
    gc.collect()
    assert not wait_until_gone(mine, timeout=2.0), "prefetch thread still alive after del"


def test_workers_end_when_the_iterator_is_dropped(data):
    """With ``num_workers``, a dropped prefetch iterator must also let its DataLoader
    iterator (and so its worker processes) go."""
    me = psutil.Process()
    before = {p.pid for p in me.children()}
    loader = NeighborLoader(data, [5, 3], batch_size=10, prefetch=2, num_workers=2)
    for i, b in enumerate(loader):
        if i == 1:
            break
    del b
    deadline = time.monotonic() + 3.0
    while True:
        gc.collect()
        alive = [p for p in me.children() if p.pid not in before and p.is_running()
                 and p.status() != psutil.STATUS_ZOMBIE]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not alive, f"{len(alive)} worker processes still alive after break"


# --------------------------------------------------------------------------- errors


class Boom(RuntimeError):
    pass


class RaiseOnBatch:
    """Fails on batch ``k`` of an unshuffled NeighborLoader with batch_size 10 (its first
    seed is ``10 k``). Prefetch threads make batches concurrently, so the batch, not
    the call count, names the failure."""

    def __init__(self, k: int) -> None:
        self.k = k

    def __call__(self, batch):
        first = batch.node[0] if hasattr(batch, "node") else batch.n_id[0]
        if int(first) == 10 * self.k:
            raise Boom(f"transform failed on batch {self.k}")
        return batch


@pytest.mark.parametrize("prefetch", [0, 1, 2])
def test_exception_in_transform_reaches_consumer(data, prefetch):
    before = prefetch_threads()
    loader = NeighborLoader(data, [5], batch_size=10, prefetch=prefetch, transform=RaiseOnBatch(2))
    got = []
    with pytest.raises(Boom, match="batch 2"):
        for b in loader:
            got.append(b)
    assert len(got) == 2
    for b in got:
        assert torch.equal(b.x, data.x[b.n_id])
    if prefetch:
        assert not wait_until_gone(prefetch_threads() - before)


def test_exception_in_sampler_output_transform_reaches_consumer(data):
    loader = NeighborLoader(data, [5], batch_size=10, prefetch=2,
                            transform_sampler_output=RaiseOnBatch(2))
    it = iter(loader)
    next(it), next(it)
    with pytest.raises(Boom):
        next(it)
    with pytest.raises(StopIteration):
        next(it)


# --------------------------------------------------------------------------- Prefetcher


def _slow(delay: float):
    def produce(item):
        time.sleep(delay)
        return item * 10
    return produce


def test_prefetcher_yields_in_order_and_len():
    p = Prefetcher(iter(range(25)), lambda i: i * 10, depth=3, length=25)
    assert len(p) == 25
    assert list(p) == [i * 10 for i in range(25)]
    with pytest.raises(StopIteration):
        next(p)
    with pytest.raises(TypeError):
        len(Prefetcher(iter(range(3)), lambda i: i, depth=1))


def test_prefetcher_wait_slow_consumer_vs_slow_producer():
    n, delay = 10, 0.03
    # Slow consumer, instant producer: batches are always ready.
    p = Prefetcher(iter(range(n)), lambda i: i * 10, depth=2, length=n)
    got = []
    waits = [p.wait_s]
    for item in p:
        got.append(item)
        waits.append(p.wait_s)
        time.sleep(delay)
    assert got == [i * 10 for i in range(n)]
    assert all(a <= b for a, b in zip(waits, waits[1:]))  # accumulates
    fast_wait = p.wait_s
    # Fast consumer of a slow producer: waits about n * delay.
    q = Prefetcher(iter(range(n)), _slow(delay), depth=2, length=n)
    waits = [q.wait_s]
    for item in q:
        waits.append(q.wait_s)
    assert len(waits) == n + 1
    assert all(a <= b for a, b in zip(waits, waits[1:]))
    slow_wait = q.wait_s
    assert slow_wait >= 0.1 * n * delay
    assert fast_wait <= 0.1 * n * delay
    assert slow_wait >= 10 * fast_wait or fast_wait < 1e-3


def test_prefetcher_error_and_close():
    def produce(item):
        if item == 4:
            raise KeyError("bad item 4")
        return item

    p = Prefetcher(iter(range(10)), produce, depth=2)
    assert [next(p) for _ in range(4)] == [0, 1, 2, 3]
    with pytest.raises(KeyError, match="bad item 4"):
        next(p)
    with pytest.raises(StopIteration):
        next(p)
    q = Prefetcher(iter(range(1000)), lambda i: i, depth=2)
    assert next(q) == 0
    q.close()
    assert not any(t.is_alive() for t in q._threads)
    with pytest.raises(StopIteration):
        next(q)


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_prefetcher_threads_keep_the_order(threads):
    rng = np.random.default_rng(threads)
    delays = rng.uniform(0, 0.004, 60)

    def produce(i):
        time.sleep(delays[i])  # later items often finish first
        return i * 10

    p = Prefetcher(iter(range(60)), produce, depth=2, length=60, threads=threads)
    assert list(p) == [i * 10 for i in range(60)]
    for t in p._threads:
        t.join(5.0)
    assert not any(t.is_alive() for t in p._threads)


@pytest.mark.parametrize("threads", [1, 3])
def test_prefetcher_threads_failure_is_raised_in_order(threads):
    def produce(i):
        if i == 4:
            raise KeyError("bad item 4")
        time.sleep(0.01 if i < 4 else 0)  # items after the failure finish first
        return i

    p = Prefetcher(iter(range(10)), produce, depth=2, threads=threads)
    assert [next(p) for _ in range(4)] == [0, 1, 2, 3]
    with pytest.raises(KeyError, match="bad item 4"):
        next(p)
    with pytest.raises(StopIteration):
        next(p)
    p.close()


def test_prefetcher_source_failure_reaches_consumer():
    def source():
        yield from range(3)
        raise ValueError("source broke")

    p = Prefetcher(source(), lambda i: i, depth=2, threads=2)
    assert [next(p) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="source broke"):
        next(p)
    with pytest.raises(StopIteration):
        next(p)


def test_prefetcher_bounds_items_in_flight():
    taken = []

    def source():
        for i in range(100):
            taken.append(i)
            yield i

    p = Prefetcher(source(), lambda i: i, depth=2, threads=3)
    assert next(p) == 0
    time.sleep(0.3)
    assert len(taken) <= 1 + 2 + 3 - 1  # the consumed one, then depth + threads - 1
    p.close()
    assert not any(t.is_alive() for t in p._threads)


class _Ahead:
    """Batches of ``nbytes`` bytes, each recording as it starts being made how many
    batches are then ahead of the consumer (taken, not consumed, itself included)."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.prefetcher: Optional[Prefetcher] = None
        self.started = threading.Event()
        self.ahead: list[int] = []
        self.making: set[int] = set()
        self.overlapped_first = False
        self.lock = threading.Lock()

    def source(self, n: int):
        self.started.wait()  # until self.prefetcher is set
        yield from range(n)

    def produce(self, i: int) -> torch.Tensor:
        with self.lock:
            self.ahead.append(i + 1 - self.prefetcher._shared.consumed)
            if 0 in self.making:
                self.overlapped_first = True
            self.making.add(i)
        time.sleep(0.01)
        with self.lock:
            self.making.discard(i)
        return torch.zeros(self.nbytes, dtype=torch.uint8)

    def run(self, **kwargs) -> int:
        self.prefetcher = Prefetcher(self.source(30), self.produce, **kwargs)
        self.started.set()
        n = 0
        for batch in self.prefetcher:
            assert batch.nbytes == self.nbytes
            time.sleep(0.02)  # a slow training step: producers run ahead
            n += 1
        return n


@pytest.mark.parametrize("max_bytes, most_ahead", [(None, 5), (10_000, 5), (2_500, 2),
                                                   (1_000, 1), (10, 1)])
def test_prefetcher_bounds_bytes_in_flight(max_bytes, most_ahead):
    """Batches of 1000 bytes, depth 4 and 2 threads (5 in flight by count): the bytes
    made ahead stay within max_bytes, one batch is made ahead even when larger, and
    the first batch is made alone (its size unknown)."""
    ahead = _Ahead(1000)
    assert ahead.run(depth=4, threads=2, max_bytes=max_bytes) == 30
    # Below the count bound, reaching it depends on the machine's speed.
    assert (max(ahead.ahead) == most_ahead if most_ahead < 5 else max(ahead.ahead) <= 5)
    assert not ahead.overlapped_first or max_bytes is None


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_batches_alive_are_the_consumers_and_the_ones_ahead(threads):
    """With room for one batch ahead, at most two are alive while the loop body runs:
    no producer keeps a batch it handed over (it used to, until it took the next
    item: one batch more with two producers)."""
    alive: "weakref.WeakSet[torch.Tensor]" = weakref.WeakSet()
    lock = threading.Lock()

    def produce(i: int) -> torch.Tensor:
        time.sleep(0.005)
        batch = torch.full((1000,), i, dtype=torch.uint8)
        with lock:
            alive.add(batch)
        return batch

    counts = []
    for batch in Prefetcher(iter(range(30)), produce, depth=2, threads=threads, max_bytes=10):
        time.sleep(0.01)
        with lock:
            counts.append(len(alive))
    assert len(counts) == 30 and max(counts) <= 2


@pytest.mark.parametrize("max_bytes", [None, 10, 1 << 20])
def test_batches_made_one_at_a_time_use_every_core(max_bytes):
    """Kernels run on every core while the byte bound has one batch made at a time (the
    first, whose size is unknown, or each when two do not fit), else on their share."""
    cores = numba.config.NUMBA_NUM_THREADS
    threads_used = {}

    def produce(i: int) -> torch.Tensor:
        threads_used[i] = numba.get_num_threads()
        return torch.zeros(1000, dtype=torch.uint8)

    got = list(Prefetcher(iter(range(12)), produce, depth=2, threads=2, max_bytes=max_bytes))
    assert len(got) == 12
    share = max(1, cores // 2)
    if max_bytes is None:
        assert set(threads_used.values()) == {share}
    elif max_bytes == 10:
        assert set(threads_used.values()) == {cores}
    else:
        assert threads_used[0] == cores
        assert {threads_used[i] for i in range(1, 12)} == {share}


def test_dropped_prefetcher_is_joined_unless_a_collection_drops_it():
    """Dropped by its last reference, a prefetcher joins its producers at once; dropped
    by a garbage collection (which may run in any thread, holding any lock), it only
    stops them, and join_stopped() (before workers fork) or exit joins them."""
    p = Prefetcher(iter(range(100)), lambda i: i, depth=2, threads=2)
    assert next(p) == 0
    threads = p._threads
    del p
    assert not any(t.is_alive() for t in threads)

    p = Prefetcher(iter(range(100)), _slow(0.05), depth=2, threads=2)
    assert next(p) == 0
    p.cycle = p
    threads, shared = p._threads, p._shared
    gc.disable()  # collected below, not before
    try:
        del p
        gc.collect()
    finally:
        gc.enable()
    assert shared.stop.is_set()
    assert any(t.is_alive() for t in threads)  # each still finishing its 50 ms batch
    join_stopped()
    assert not any(t.is_alive() for t in threads)


def test_prefetch_bytes_leave_out_what_data_carries_whole(data):
    """A tensor that data carries whole into every batch (graph-level) is not counted
    against prefetch_bytes: prefetch does not multiply it."""
    data = data.clone()
    data.graph_table = torch.zeros(1, 1 << 20)
    loader = NeighborLoader(data, [5], batch_size=16)
    batch = next(iter(loader))
    assert batch.graph_table is data.graph_table
    carried = [v for v in batch.to_dict().values()
               if any(v is w for w in data.to_dict().values())]
    assert any(v is data.graph_table for v in carried)
    counted = loader._batch_nbytes(batch)
    assert counted == batch_nbytes(batch) - sum(v.nbytes for v in carried) > 0
    assert counted < data.graph_table.nbytes


def test_loader_prefetch_bytes_same_batches_and_checked(data):
    kwargs = dict(num_neighbors=[5, 3], batch_size=32, shuffle=True)
    reference = epoch(NeighborLoader(data, prefetch=0, **kwargs), seed=11)
    for prefetch_bytes in (1, 1 << 20, None):
        got = epoch(NeighborLoader(data, prefetch=3, prefetch_bytes=prefetch_bytes,
                                   **kwargs), seed=11)
        assert_same_batches(reference, got)
    for bad in (0, -5, 1.5, "1M"):
        with pytest.raises((TypeError, ValueError), match="prefetch_bytes"):
            NeighborLoader(data, prefetch_bytes=bad, **kwargs)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_same_batches_for_any_number_of_prefetch_threads(data, threads):
    ref = epoch(NeighborLoader(data, [5, 3], batch_size=10, shuffle=True, prefetch=0), 5)
    got = epoch(NeighborLoader(data, [5, 3], batch_size=10, shuffle=True, prefetch=2,
                               prefetch_threads=threads), 5)
    assert_same_batches(ref, got)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
def test_bad_prefetch_threads(data, bad):
    with pytest.raises((ValueError, TypeError), match="prefetch_threads"):
        NeighborLoader(data, [5], prefetch_threads=bad)


@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("batch_size, drop_last", [(10, False), (7, False), (7, True), (400, False)])
def test_len_iterator_equals_len_loader(data, prefetch, batch_size, drop_last):
    loader = NeighborLoader(data, [3], batch_size=batch_size, drop_last=drop_last, prefetch=prefetch)
    it = iter(loader)
    assert len(it) == len(loader) == (400 // batch_size if drop_last else -(-400 // batch_size))
    assert len(list(it)) == len(loader)


# --------------------------------------------------------------------------- arguments


def test_memory_mapped_node_store_same_batches(data, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, data.x.numpy())
    store = FeatureStore({"x": path})
    kwargs = dict(num_neighbors=[5, 3], batch_size=32, shuffle=True)
    reference = epoch(NeighborLoader(data, **kwargs), seed=8)
    got = epoch(NeighborLoader(data, node_store=store, **kwargs), seed=8)
    assert_same_batches(reference, got)


def test_memory_mapped_node_and_edge_stores_large(big, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, big.x.numpy())
    node_store = FeatureStore({"x": str(path), "y": big.y})
    kwargs = dict(num_neighbors=[10, 5], batch_size=250, shuffle=True,
                  input_nodes=torch.arange(0, 20_000, 8))
    reference = epoch(NeighborLoader(big, **kwargs), seed=9)
    got = epoch(NeighborLoader(big, node_store=node_store, **kwargs), seed=9)
    assert len(got) == len(reference) == 10
    for a, b in zip(reference, got):
        assert b.x.numel() * 4 > POOL_MIN_BYTES
        assert_same_batch(a, b)


def test_edge_store_same_batches(data, tmp_path):
    path = tmp_path / "edge_attr.npy"
    np.save(path, data.edge_attr.numpy())
    edge_store = FeatureStore({"edge_attr": path, "weight": data.weight})
    kwargs = dict(num_neighbors=[5, 3], batch_size=50)
    reference = epoch(NeighborLoader(data, **kwargs), seed=10)
    got = epoch(NeighborLoader(data, edge_store=edge_store, **kwargs), seed=10)
    assert_same_batches(reference, got)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_node_store(data, dtype):
    store = FeatureStore.from_data(data, "node", dtype=dtype)
    loader = NeighborLoader(data, [5, 3], batch_size=50, node_store=store, prefetch=2)
    for b in epoch(loader, seed=11):
        assert b.x.dtype == dtype
        assert torch.equal(b.x, data.x.to(dtype)[b.n_id])
        assert b.y.dtype == torch.int64 and torch.equal(b.y, data.y[b.n_id])
        assert torch.equal(b.train_mask, data.train_mask[b.n_id])
        assert torch.equal(b.edge_attr, data.edge_attr[b.e_id])


def test_node_store_wrong_rows(data):
    with pytest.raises(ValueError, match="node_store"):
        NeighborLoader(data, [5], node_store=FeatureStore({"x": torch.zeros(399, 2)}))
    with pytest.raises(ValueError, match="edge_store"):
        NeighborLoader(data, [5], edge_store=FeatureStore({"e": torch.zeros(data.num_edges + 1)}))


@pytest.mark.parametrize("bad", [{"x": torch.zeros(400, 2)}, torch.zeros(400, 2), "x.npy"])
def test_node_store_not_a_feature_store(data, bad):
    with pytest.raises(TypeError, match="node_store"):
        NeighborLoader(data, [5], node_store=bad)
    with pytest.raises(TypeError, match="edge_store"):
        NeighborLoader(data, [5], edge_store=bad)


@pytest.mark.parametrize("bad", [-1, "a", 1.5, True, None])
def test_bad_prefetch(data, bad):
    with pytest.raises(ValueError, match="prefetch"):
        NeighborLoader(data, [5], prefetch=bad)


def test_interpreter_exits_cleanly_with_a_live_prefetch_thread():
    """Leaving a loop early and exiting must not abort: a daemon thread killed inside a
    TBB kernel used to end the process with 'terminate called' (exit code 134)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import graphbatch
        from graphbatch.datasets import planted_classes
        data = planted_classes(3000)
        it = iter(graphbatch.NeighborLoader(data, [5, 5], batch_size=64))
        next(it)
        print("done")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "done"
    assert "terminate" not in proc.stderr
