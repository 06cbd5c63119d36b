"""FeatureStore and BufferPool: exact gathers from every source, clear errors, buffer reuse
that never overwrites a live result, and memory that does not grow."""
from __future__ import annotations

import gc
import pathlib

import numpy as np
import psutil
import pytest
import torch
from torch_geometric.data import Data

from conftest import make_graph, random_edge_index
from graphbatch import NeighborLoader
from graphbatch.features import BufferPool, FeatureStore
from graphbatch.features.buffers import POOL_MIN_BYTES

MiB = 1 << 20


# --------------------------------------------------------------------------- sources

SMALL_ROWS, LARGE_ROWS = 1000, 300_000


def _float_table(rows: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(rows, 16, generator=gen)


@pytest.fixture(scope="module")
def tables():
    """Small and large float tables (the large one's full gather is > 4 MiB)."""
    gen = torch.Generator().manual_seed(0)
    small = _float_table(SMALL_ROWS, gen)
    large = _float_table(LARGE_ROWS, gen)
    assert small.numel() * 4 < POOL_MIN_BYTES < large.numel() * 4
    return {"small": small, "large": large}


def _id_sets(rows: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "empty": torch.empty(0, dtype=torch.int64),
        "sorted": torch.arange(0, rows, 3),
        "unsorted": torch.randperm(rows, generator=gen),
        "repeated": torch.randint(0, rows, (rows + rows // 2,), generator=gen),
        "one_row_many_times": torch.full((rows,), rows - 1, dtype=torch.int64),
    }


def _open(kind: str, x: torch.Tensor, tmp_path: pathlib.Path):
    if kind == "tensor":
        return x
    if kind == "numpy":
        return x.numpy()
    path = tmp_path / "x.npy"
    np.save(path, x.numpy())
    return str(path) if kind == "npy_str" else path


SOURCES = ["tensor", "numpy", "npy_str", "npy_path"]


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("source", SOURCES)
def test_gather_equals_indexing(tables, tmp_path, source, size):
    x = tables[size]
    store = FeatureStore({"x": _open(source, x, tmp_path)})
    assert store.num_rows == x.size(0) and store.names == ["x"]
    gen = torch.Generator().manual_seed(1)
    results = []
    for what, ids in _id_sets(x.size(0), gen).items():
        out = store.gather("x", ids)
        assert out.dtype == x.dtype and out.shape == (ids.numel(), 16), what
        assert torch.equal(out, x[ids]), what
        results.append((out, x[ids]))
    # Every result still intact after the later gathers.
    for out, expected in results:
        assert torch.equal(out, expected)


def test_gather_accepts_int32_lists_and_numpy_ids(tables):
    x = tables["small"]
    store = FeatureStore({"x": x})
    ids = [5, 3, 5, 999, 0]
    expected = x[torch.tensor(ids)]
    assert torch.equal(store.gather("x", ids), expected)
    assert torch.equal(store.gather("x", torch.tensor(ids, dtype=torch.int32)), expected)
    assert torch.equal(store.gather("x", np.array(ids)), expected)
    assert torch.equal(store.gather("x", torch.tensor(ids + ids)[::2]), x[torch.tensor(ids + ids)[::2]])
    assert store.gather("x", []).shape == (0, 16)


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("source", ["tensor", "numpy"])
def test_half_precision(tables, source, dtype, size):
    x = tables[size]
    store = FeatureStore({"x": _open(source, x, None), "y": torch.arange(x.size(0))}, dtype=dtype)
    assert store["x"].dtype == dtype
    assert store["y"].dtype == torch.int64  # only floating tables are converted
    gen = torch.Generator().manual_seed(2)
    for what, ids in _id_sets(x.size(0), gen).items():
        out = store.gather("x", ids)
        assert out.dtype == dtype, what
        assert torch.equal(out, x.to(dtype)[ids]), what
        assert torch.equal(store.gather("y", ids), ids), what


def test_half_precision_leaves_memory_mapped_tables_alone(tables, tmp_path):
    """Documented: memory-mapped tables are never converted (that would read them whole)."""
    x = tables["small"]
    path = tmp_path / "x.npy"
    np.save(path, x.numpy())
    store = FeatureStore({"x": path, "h": x}, dtype=torch.float16)
    assert store["x"].dtype == torch.float32 and store["h"].dtype == torch.float16
    ids = torch.tensor([3, 1, 3])
    assert torch.equal(store.gather("x", ids), x[ids])
    assert torch.equal(store.gather("h", ids), x.half()[ids])


INT_TABLES = {
    "int64_labels": lambda n, g: torch.randint(0, 40, (n,), generator=g),
    "int32": lambda n, g: torch.randint(-2**31, 2**31 - 1, (n, 2), generator=g, dtype=torch.int32),
    "int8": lambda n, g: torch.randint(-128, 127, (n, 3), generator=g, dtype=torch.int8),
    "uint8": lambda n, g: torch.randint(0, 255, (n, 5), generator=g, dtype=torch.uint8),
    "bool_mask": lambda n, g: torch.rand(n, generator=g) < 0.3,
    "bool_rows": lambda n, g: torch.rand(n, 24, generator=g) < 0.5,
    "float64": lambda n, g: torch.randn(n, 2, generator=g, dtype=torch.float64),
    "float16_source": lambda n, g: torch.randn(n, 4, generator=g).half(),
    "multi_dim": lambda n, g: torch.randn(n, 3, 4, generator=g),
}


@pytest.mark.parametrize("rows", [500, 200_000])
def test_gather_dtype_numpy_lacks(rows):
    """float8 has no numpy dtype: its rows are copied as bytes and typed by torch."""
    gen = torch.Generator().manual_seed(5)
    table = torch.randn(rows, 6, generator=gen).to(torch.float8_e4m3fn)
    ids = torch.randint(0, rows, (2 * rows,), generator=gen)
    out = FeatureStore({"t": table}).gather("t", ids)
    assert out.dtype == table.dtype and out.shape == (2 * rows, 6)
    assert torch.equal(out.view(torch.uint8), table.view(torch.uint8)[ids])


@pytest.mark.parametrize("rows", [500, 200_000])
@pytest.mark.parametrize("kind", list(INT_TABLES))
@pytest.mark.parametrize("source", SOURCES)
def test_gather_other_dtypes_and_shapes(tmp_path, source, kind, rows):
    gen = torch.Generator().manual_seed(3)
    table = INT_TABLES[kind](rows, gen)
    store = FeatureStore({"t": _open(source, table, tmp_path)}, num_rows=rows)
    assert store["t"].dtype == table.dtype and store["t"].shape == table.shape
    ids = torch.randint(0, rows, (2 * rows,), generator=gen)  # repeated and unsorted
    out = store.gather("t", ids)
    assert out.dtype == table.dtype and out.shape == (2 * rows, *table.shape[1:])
    assert torch.equal(out, table[ids])
    assert torch.equal(store.gather("t", ids[:0]), table[:0])
    if rows == 200_000 and kind in ("bool_rows", "multi_dim", "float64"):
        assert out.numel() * out.element_size() > POOL_MIN_BYTES  # the pooled path ran


def test_several_tables_and_repr():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(50, 3, generator=gen)
    y = torch.randint(0, 3, (50,), generator=gen)
    mask = torch.rand(50, generator=gen) < 0.5
    store = FeatureStore({"x": x, "y": y, "train_mask": mask})
    assert store.names == ["x", "y", "train_mask"]
    assert "x" in store and "nope" not in store
    assert store["y"] is not None and torch.equal(store["y"], y)
    ids = torch.tensor([49, 0, 7, 7])
    for name, t in (("x", x), ("y", y), ("train_mask", mask)):
        assert torch.equal(store.gather(name, ids), t[ids])
    text = repr(store)
    assert "num_rows=50" in text and "x=(50, 3)" in text and "train_mask" in text


def test_tables_are_used_without_copy():
    x = torch.randn(20, 4)
    a = np.random.default_rng(0).random((20, 2)).astype(np.float32)
    store = FeatureStore({"x": x, "a": a})
    assert store["x"].data_ptr() == x.data_ptr()
    assert store["a"].data_ptr() == a.ctypes.data


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def store10():
    return FeatureStore({"x": torch.randn(10, 2), "y": torch.arange(10)})


@pytest.mark.parametrize("ids, exc, words", [
    ([10], ValueError, ["index", "10", "num_nodes=10"]),
    ([0, 3, 99], ValueError, ["index", "99"]),
    ([-1], ValueError, ["index", "negative", "-1"]),
    (torch.tensor([1.0, 2.0]), TypeError, ["index", "float32"]),
    ([1.5], TypeError, ["index", "float"]),
    (torch.tensor([True, False]), TypeError, ["index", "bool"]),
    ([True, False], TypeError, ["index", "bool"]),
    (torch.tensor([1], dtype=torch.uint8), TypeError, ["index", "uint8"]),
    (torch.tensor([[1, 2]]), ValueError, ["index", "1-dimensional", "(1, 2)"]),
    (np.zeros((2, 2), dtype=np.int64), ValueError, ["index", "1-dimensional"]),
    (3, ValueError, ["index", "1-dimensional"]),
    ("ab", TypeError, ["index"]),
    (None, TypeError, ["index"]),
])
def test_bad_ids(store10, ids, exc, words):
    with pytest.raises(exc) as info:
        store10.gather("x", ids)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_unknown_table_lists_names(store10):
    with pytest.raises(KeyError) as info:
        store10.gather("z", [0])
    text = str(info.value)
    assert "'z'" in text and "'x'" in text and "'y'" in text


def test_tables_of_different_row_counts():
    with pytest.raises(ValueError) as info:
        FeatureStore({"a": torch.zeros(5, 2), "b": torch.zeros(4)})
    text = str(info.value)
    assert "'b'" in text and "(4,)" in text and "5 rows" in text


def test_num_rows_mismatch():
    with pytest.raises(ValueError, match=r"table 'a'.*\(5, 2\).*6 rows"):
        FeatureStore({"a": torch.zeros(5, 2)}, num_rows=6)
    with pytest.raises(ValueError, match="num_rows"):
        FeatureStore({"a": torch.zeros(5)}, num_rows=0)
    with pytest.raises(TypeError, match="num_rows"):
        FeatureStore({"a": torch.zeros(5)}, num_rows=5.0)
    assert FeatureStore({"a": torch.zeros(5)}, num_rows=np.int64(5)).num_rows == 5


def test_scalar_and_bad_source_types():
    with pytest.raises(ValueError, match="'s'.*row dimension"):
        FeatureStore({"s": torch.tensor(3.0)})
    with pytest.raises(TypeError, match="'l'"):
        FeatureStore({"l": [[1, 2], [3, 4]]})
    with pytest.raises(TypeError, match="'c'"):
        FeatureStore({"c": torch.zeros(3, dtype=torch.complex64)})
    with pytest.raises(TypeError, match="'u'"):
        FeatureStore({"u": np.array(["a", "b"])})
    with pytest.raises(TypeError, match="'o'"):
        FeatureStore({"o": np.array([1, "a"], dtype=object)})


def test_npy_wrong_row_count_names_table_and_path(tmp_path):
    path = tmp_path / "feat.npy"
    np.save(path, np.zeros((7, 3), dtype=np.float32))
    with pytest.raises(ValueError) as info:
        FeatureStore({"x": torch.zeros(10, 2), "feat": path})
    text = str(info.value)
    assert "'feat'" in text and str(path) in text and "(7, 3)" in text and "10 rows" in text
    with pytest.raises(ValueError) as info:
        FeatureStore({"feat": str(path)}, num_rows=8)
    assert "'feat'" in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("content", ["strings", "structured", "big_endian", "objects"])
def test_npy_bad_dtype_names_table_and_path(tmp_path, content):
    path = tmp_path / f"{content}.npy"
    if content == "strings":
        np.save(path, np.array(["a", "b"]))
    elif content == "structured":
        np.save(path, np.zeros(4, dtype=[("a", "<f4"), ("b", "<i8")]))
    elif content == "big_endian":
        np.save(path, np.arange(6, dtype=">f4").reshape(3, 2))
    else:
        np.save(path, np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises((TypeError, ValueError)) as info:
        FeatureStore({"feat": path})
    text = str(info.value)
    assert "'feat'" in text and str(path) in text


def test_npy_missing_path(tmp_path):
    path = tmp_path / "missing.npy"
    with pytest.raises(ValueError) as info:
        FeatureStore({"feat": str(path)})
    assert "'feat'" in str(info.value) and str(path) in str(info.value)
    with pytest.raises(ValueError, match="'d'"):
        FeatureStore({"d": tmp_path})  # a directory


def test_non_npy_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an array\n")
    with pytest.raises(ValueError) as info:
        FeatureStore({"feat": path})
    assert "'feat'" in str(info.value) and str(path) in str(info.value)


def test_non_npy_npz_file(tmp_path):
    """An ``.npz`` archive is not a ``.npy`` file: a clear error naming table and path.

    (np.load returns an NpzFile for it, which has no ``dtype``.)
    """
    path = tmp_path / "arrays.npz"
    np.savez(path, x=np.zeros((3, 2), dtype=np.float32))
    with pytest.raises((TypeError, ValueError)) as info:
        FeatureStore({"feat": path})
    assert "'feat'" in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int8, torch.bool, "float16"])
def test_bad_dtype_argument(dtype):
    with pytest.raises(ValueError, match="dtype"):
        FeatureStore({"x": torch.zeros(3, 2)}, dtype=dtype)


# --------------------------------------------------------------------------- from_data, sharing


def _data_with_masks() -> Data:
    data = make_graph(num_nodes=300, num_edges=1500, seed=5)
    gen = torch.Generator().manual_seed(5)
    data.train_mask = torch.rand(300, generator=gen) < 0.5
    data.val_mask = ~data.train_mask
    data.graph_label = torch.tensor(3)
    return data


def test_from_data_node_tables():
    data = _data_with_masks()
    store = FeatureStore.from_data(data, kind="node")
    assert sorted(store.names) == ["train_mask", "val_mask", "x", "y"]
    assert store.num_rows == data.num_nodes
    ids = torch.tensor([299, 0, 5, 5])
    for name in store.names:
        assert torch.equal(store.gather(name, ids), data[name][ids])
    assert torch.equal(FeatureStore.from_data(data).gather("x", ids), data.x[ids])  # default kind


def test_from_data_edge_tables():
    data = _data_with_masks()
    store = FeatureStore.from_data(data, kind="edge")
    assert sorted(store.names) == ["edge_attr", "weight"]
    assert store.num_rows == data.num_edges
    ids = torch.tensor([data.num_edges - 1, 0, 9, 9])
    assert torch.equal(store.gather("edge_attr", ids), data.edge_attr[ids])
    assert torch.equal(store.gather("weight", ids), data.weight[ids])


def test_from_data_kwargs_and_bad_kind():
    data = _data_with_masks()
    store = FeatureStore.from_data(data, "node", dtype=torch.bfloat16)
    assert store["x"].dtype == torch.bfloat16 and store["y"].dtype == torch.int64
    with pytest.raises(ValueError, match="bogus"):
        FeatureStore.from_data(data, kind="bogus")


def test_share_memory(tmp_path):
    x = torch.randn(40, 3)
    y = np.arange(40)
    path = tmp_path / "m.npy"
    np.save(path, np.arange(80, dtype=np.float32).reshape(40, 2))
    store = FeatureStore({"x": x, "y": y, "m": path})
    mapped_ptr = store["m"].data_ptr()
    assert store.share_memory_() is store
    assert store["x"].is_shared() and store["y"].is_shared()
    assert not store["m"].is_shared() and store["m"].data_ptr() == mapped_ptr
    ids = torch.tensor([39, 2, 2])
    assert torch.equal(store.gather("x", ids), x[ids])
    assert torch.equal(store.gather("y", ids), torch.from_numpy(y)[ids])
    assert torch.equal(store.gather("m", ids), torch.arange(80.0).view(40, 2)[ids])


# --------------------------------------------------------------------------- buffer reuse

BIG = (1 << 20, 2)  # 8 MiB of float32: pooled


def _span(t: torch.Tensor) -> tuple[int, int]:
    start = t.untyped_storage().data_ptr()
    return start, start + t.untyped_storage().nbytes()


def _overlap(a: torch.Tensor, b: torch.Tensor) -> bool:
    (a0, a1), (b0, b1) = _span(a), _span(b)
    return a0 < b1 and b0 < a1


def test_pool_small_requests_are_plain_allocations():
    pool = BufferPool()
    t = pool.empty((100, 4), torch.float32)
    assert t.shape == (100, 4) and t.dtype == torch.float32
    assert pool.allocations == 0
    assert pool.empty((0, 4), torch.float32).shape == (0, 4)
    assert pool.allocations == 0


def test_pool_shapes_and_dtypes():
    pool = BufferPool()
    for shape, dtype in (((1 << 20, 2), torch.float32), ((1 << 19, 3, 4), torch.float16),
                         ((5 << 20,), torch.bool), ((1 << 20,), torch.int64),
                         ((1 << 20, 3), torch.bfloat16)):
        t = pool.empty(shape, dtype)
        assert t.shape == shape and t.dtype == dtype and t.is_contiguous()
        t.fill_(1)
        assert bool((t == 1).all())


def test_pool_never_hands_out_a_live_buffer():
    pool = BufferPool(capacity=6)
    held = []
    for i in range(20):
        t = pool.empty(BIG, torch.float32).fill_(i)
        for other, _ in held:
            assert not _overlap(t, other)
        held.append((t, i))
        if len(held) > 3:  # keep the last 3 alive, like a consumer holding batches
            held.pop(0)
        for h, v in held:
            assert bool((h == v).all())


@pytest.mark.parametrize("derive", [
    "slice", "view", "dtype_view", "transpose", "numpy", "storage", "row", "from_numpy_of_numpy",
])
def test_pool_protects_views_of_a_result(derive):
    pool = BufferPool(capacity=2)
    t = pool.empty(BIG, torch.float32).fill_(7.0)
    if derive == "slice":
        keep = t[100:200]
    elif derive == "view":
        keep = t.view(-1)
    elif derive == "dtype_view":
        keep = t.view(torch.int32)
    elif derive == "transpose":
        keep = t.t()
    elif derive == "numpy":
        keep = t.numpy()
    elif derive == "storage":
        keep = t.untyped_storage()
    elif derive == "row":
        keep = t[-1]
    else:
        keep = torch.from_numpy(t.numpy()[5:])
    expected = torch.tensor(7.0).view(torch.int32).item() if derive == "dtype_view" else 7.0
    del t
    gc.collect()
    others = [pool.empty(BIG, torch.float32).fill_(-1.0) for _ in range(5)]
    if derive == "storage":
        values = torch.tensor([], dtype=torch.float32).set_(keep).view(-1)
    else:
        values = torch.as_tensor(keep)
    assert bool((values == expected).all()), derive
    assert all(bool((o == -1).all()) for o in others)


def test_pool_reuses_freed_buffers():
    pool = BufferPool(capacity=4)
    ptrs = set()
    for i in range(100):
        t = pool.empty(BIG, torch.float32)
        t[0, 0] = i
        ptrs.add(t.data_ptr())
        del t
    assert pool.allocations == 1 and len(ptrs) == 1
    # Two alive at a time (current and previous): two buffers, reused alternately.
    pool = BufferPool(capacity=4)
    prev = None
    for i in range(100):
        t = pool.empty(BIG, torch.float32)
        t[::4096] = i
        if prev is not None:
            assert bool((prev[::4096] == i - 1).all())
        prev = t
    assert pool.allocations == 2


def test_pool_smaller_request_fits_in_a_larger_free_buffer():
    pool = BufferPool(capacity=4)
    big = pool.empty((3 << 20,), torch.float32)
    ptr = big.data_ptr()
    del big
    small = pool.empty((2 << 20,), torch.float32)
    assert small.data_ptr() == ptr and pool.allocations == 1


def test_pool_growing_requests_keep_at_most_capacity_buffers():
    pool = BufferPool(capacity=3)
    prev = None
    for i in range(60):
        rows = (1 << 20) + i * 50_000  # grows past the 25% headroom now and then
        t = pool.empty((rows,), torch.float32).fill_(i)
        if prev is not None:
            assert bool((prev == i - 1).all())
        prev = t
    assert len(pool._buffers) <= 3
    allocations = pool.allocations
    for i in range(60):  # the same largest size again: no new buffers
        t = pool.empty((rows,), torch.float32)
        del t
    assert pool.allocations == allocations


def test_pool_replaces_a_too_small_free_buffer_while_another_is_live():
    """Capacity reached, the first buffer in use, a request larger than every free one:
    the free buffer is replaced by a larger one."""
    pool = BufferPool(capacity=2)
    a = pool.empty((1 << 20,), torch.float32).fill_(1)  # 4 MiB, buffer 0, kept alive
    b = pool.empty((1 << 20,), torch.float32)  # buffer 1
    del b  # buffer 1 free, but too small for what follows
    c = pool.empty((2 << 20,), torch.float32).fill_(2)  # 8 MiB
    assert not _overlap(a, c)
    assert bool((a == 1).all()) and bool((c == 2).all())
    assert pool.allocations == 3 and len(pool._buffers) == 2


def test_store_larger_gather_while_first_buffer_is_held():
    gen = torch.Generator().manual_seed(12)
    x = torch.randn(300_000, 16, generator=gen)
    store = FeatureStore({"x": x})
    ids = torch.randint(0, x.size(0), (100_000,), generator=gen)  # 6.4 MB
    held = [store.gather("x", ids) for _ in range(store._pool.capacity)]  # every pooled buffer
    first = held[0]
    del held
    big_ids = torch.randint(0, x.size(0), (300_000,), generator=gen)  # 19 MB: no free buffer fits
    out = store.gather("x", big_ids)
    assert torch.equal(out, x[big_ids])
    assert torch.equal(first, x[ids])


def test_pool_more_live_results_than_capacity():
    pool = BufferPool(capacity=2)
    held = [pool.empty(BIG, torch.float32).fill_(i) for i in range(7)]
    for i, a in enumerate(held):
        assert bool((a == i).all())
        for b in held[i + 1:]:
            assert not _overlap(a, b)
    assert pool.allocations == 7
    del held, a, b
    gc.collect()
    before = pool.allocations
    for i in range(50):
        t = pool.empty(BIG, torch.float32)
        del t
    assert pool.allocations == before  # the pooled ones are reused afterwards


def test_pool_register_hook_called_once_per_buffer():
    calls = []

    def register(raw):
        calls.append(raw.nbytes)
        return object()

    pool = BufferPool(capacity=2, register=register)
    held = [pool.empty(BIG, torch.float32) for _ in range(3)]  # 2 pooled, 1 one-off
    assert len(calls) == 3 and all(n >= 8 * MiB for n in calls)
    del held
    for _ in range(10):
        t = pool.empty(BIG, torch.float32)
        del t
    assert len(calls) == 3


def test_store_gather_never_overwrites_held_results():
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(300_000, 16, generator=gen)
    store = FeatureStore({"x": x})
    held = []
    for i in range(40):
        n = int(torch.randint(80_000, 300_000, (), generator=gen))
        ids = torch.randint(0, x.size(0), (n,), generator=gen)
        out = store.gather("x", ids)
        assert out.numel() * 4 > POOL_MIN_BYTES
        if i % 3 == 0:
            held.append((out, ids))  # the whole result
        elif i % 3 == 1:
            held.append((out[10:1000], ids[10:1000]))  # only a slice
        else:
            held.append((out.view(-1)[: 16 * 500].view(500, 16), ids[:500]))  # a .view()
        del out
    for kept, ids in held:
        assert torch.equal(kept, x[ids])


def test_store_gather_reuses_buffers_in_a_long_loop():
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(300_000, 16, generator=gen)
    store = FeatureStore({"x": x})
    ids = [torch.randint(0, x.size(0), (n,), generator=gen) for n in (250_000, 260_000, 240_000)]
    expected = [x[i] for i in ids]
    ptrs = set()
    prev = None
    for i in range(100):
        out = store.gather("x", ids[i % 3])
        ptrs.add(out.data_ptr())
        if prev is not None and i % 5 == 0:
            assert torch.equal(prev, expected[(i - 1) % 3])  # the previous result, still held
        prev = out
    assert len(ptrs) <= 3  # a handful of buffers, reused
    assert store._pool.allocations <= 3


def test_store_more_live_results_than_capacity():
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(300_000, 16, generator=gen)
    store = FeatureStore({"x": x})
    capacity = store._pool.capacity
    held = []
    for _ in range(capacity + 4):
        ids = torch.randint(0, x.size(0), (100_000,), generator=gen)
        held.append((store.gather("x", ids), ids))
    for i, (a, ids) in enumerate(held):
        assert torch.equal(a, x[ids])
        for b, _ in held[i + 1:]:
            assert not _overlap(a, b)


# --------------------------------------------------------------------------- memory


def _rss() -> int:
    return psutil.Process().memory_info().rss


def test_gather_memory_does_not_grow():
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(200_000, 64, generator=gen)  # 51 MB
    store = FeatureStore({"x": x})
    ids = [torch.randint(0, x.size(0), (n,), generator=gen) for n in (160_000, 150_000, 155_000)]
    out_bytes = 160_000 * 64 * 4  # ~41 MB per batch
    rss = {}
    for i in range(200):
        out = store.gather("x", ids[i % 3])
        if i % 50 == 0:
            assert torch.equal(out[:100], x[ids[i % 3][:100]])
        del out
        if i in (20, 199):
            gc.collect()
            rss[i] = _rss()
    growth = rss[199] - rss[20]
    assert growth < 2 * out_bytes, f"RSS grew {growth / MiB:.1f} MiB over 180 gathers"


@pytest.mark.parametrize("prefetch", [0, 2])
def test_loader_memory_does_not_grow(prefetch):
    """Without prefetch one batch is alive at a time, so at most two buffers' worth can
    appear after warm-up; with prefetch the pool may still grow to its capacity (how far
    the thread runs ahead depends on timing), never beyond."""
    gen = torch.Generator().manual_seed(10)
    data = Data(x=torch.randn(20_000, 256, generator=gen),  # 1 KiB a row, ~9 MB a batch
                edge_index=random_edge_index(20_000, 200_000, seed=10, skew=0.0),
                num_nodes=20_000)
    loader = NeighborLoader(data, [10, 5], batch_size=400, shuffle=True, prefetch=prefetch)
    torch.manual_seed(10)
    assert len(loader) == 50
    rss = {}
    biggest = 0
    i = 0
    for _ in range(4):  # 200 batches, whole epochs
        for batch in loader:
            nbytes = batch.x.numel() * batch.x.element_size()
            assert nbytes > POOL_MIN_BYTES
            biggest = max(biggest, nbytes)
            if i % 25 == 0:
                assert torch.equal(batch.x, data.x[batch.n_id])
            del batch
            if i in (20, 199):
                gc.collect()
                rss[i] = _rss()
            i += 1
    growth = rss[199] - rss[20]
    buffers = 2 if prefetch == 0 else loader.node_store._pool.capacity
    assert growth < buffers * 1.25 * biggest, f"RSS grew {growth / MiB:.1f} MiB over 180 batches"


def test_pool_pickles_empty_and_usable():
    import pickle

    pool = BufferPool(capacity=2)
    held = pool.empty((POOL_MIN_BYTES // 4 + 1,), torch.float32)
    copy = pickle.loads(pickle.dumps(pool))
    assert copy.capacity == 2 and copy.allocations == 0 and not copy._buffers
    out = copy.empty((POOL_MIN_BYTES // 4 + 1,), torch.float32)
    assert out.shape == held.shape and copy.allocations == 1


def test_npy_corrupted_header_names_table_and_path(tmp_path):
    """An unclosed header dict makes np.load raise tokenize's TokenError, neither an
    OSError nor a ValueError; the store still reports it as one naming table and file."""
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((3, 4), dtype=np.float32))
    raw = path.read_bytes()
    start, end = raw.index(b"{"), raw.index(b"\n")
    bad = b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,4"
    path.write_bytes(raw[:start] + bad.ljust(end - start) + raw[end:])
    with pytest.raises(ValueError) as info:
        FeatureStore({"x": path})
    assert "'x'" in str(info.value) and str(path) in str(info.value)


def test_writable_memmap_is_written_through(tmp_path):
    """An np.memmap opened for writing stays writable through the store (scatter_ goes
    to the file); a read-only one is refused."""
    path = tmp_path / "state.npy"
    np.save(path, np.zeros((6, 2), dtype=np.float32))
    store = FeatureStore({"m": np.load(path, mmap_mode="r+")})
    store.scatter_("m", torch.tensor([1, 4]), torch.ones(2, 2))
    assert np.array_equal(np.load(path)[[1, 4]], np.ones((2, 2)))
    read_only = FeatureStore({"m": np.load(path, mmap_mode="r")})
    with pytest.raises(ValueError, match="read-only"):
        read_only.scatter_("m", torch.tensor([0]), torch.ones(1, 2))
