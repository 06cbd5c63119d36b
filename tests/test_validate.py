"""The shared boundary checks of ``graphbatch._validate``: the node-id range check (a
serial numba min/max pass, not torch's OpenMP reductions) against a brute-force one,
with its messages, on every index dtype and layout the callers pass."""
from __future__ import annotations

import re
from typing import Optional

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphbatch._validate import as_edge_index, as_index_tensor, check_node_range, min_max


def brute_force_error(ids: list[int], num_nodes: int, name: str) -> Optional[str]:
    """The message ``check_node_range`` must raise for ``ids``, or None: the smallest id
    when one is negative, else the largest when one is out of range."""
    if not ids:
        return None
    if min(ids) < 0:
        return f"{name} holds a negative node id ({min(ids)})"
    if max(ids) >= num_nodes:
        return f"{name} holds node id {max(ids)}, out of range for num_nodes={num_nodes}"
    return None


def raised(index: torch.Tensor, num_nodes: int, name: str) -> Optional[str]:
    try:
        check_node_range(index, num_nodes, name)
    except ValueError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
@pytest.mark.parametrize("ids, message", [
    ([0], None),
    ([4], None),  # num_nodes - 1, the largest valid id
    ([0, 4, 2], None),
    ([4, 0], None),
    ([-1], "seeds holds a negative node id (-1)"),
    ([3, -7, 2, -1], "seeds holds a negative node id (-7)"),
    ([5], "seeds holds node id 5, out of range for num_nodes=5"),
    ([0, 9, 5, 1], "seeds holds node id 9, out of range for num_nodes=5"),
    ([-2, 9], "seeds holds a negative node id (-2)"),  # the negative one is named first
])
def test_messages_and_edge_values(ids, message, dtype):
    index = torch.tensor(ids, dtype=dtype)
    assert raised(index, 5, "seeds") == message
    # As the callers pass it: through as_index_tensor (int32 widened to int64).
    assert raised(as_index_tensor(index, "seeds"), 5, "seeds") == message


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_empty_index_passes(dtype):
    check_node_range(torch.empty(0, dtype=dtype), 1, "index")
    check_node_range(as_index_tensor([], "index"), 1, "index")


def test_extreme_values():
    big = torch.iinfo(torch.int64)
    assert raised(torch.tensor([0, big.max]), 10, "x") == \
        f"x holds node id {big.max}, out of range for num_nodes=10"
    assert raised(torch.tensor([big.min, 3]), 10, "x") == f"x holds a negative node id ({big.min})"
    small = torch.iinfo(torch.int32)
    assert raised(torch.tensor([small.min], dtype=torch.int32), 10, "x") == \
        f"x holds a negative node id ({small.min})"


def test_strided_and_offset_views():
    """Views that are not contiguous or start past their storage's first element (the
    flattened ``edge_index`` the graph checks, a slice of a larger tensor) are read as
    the view, not as the memory under it."""
    base = torch.tensor([9, 0, -1, 1, 9, 2, -1, 3])
    assert raised(base[1::2], 4, "x") is None  # 0, 1, 2, 3
    assert raised(base[1::2], 3, "x") == "x holds node id 3, out of range for num_nodes=3"
    assert raised(base[2::4], 4, "x") == "x holds a negative node id (-1)"
    edge_index = torch.tensor([[0, 1], [2, 3], [4, 5]]).t()  # [2, 3], not contiguous
    assert raised(edge_index.reshape(-1), 6, "edge_index") is None
    assert raised(edge_index.reshape(-1), 5, "edge_index") == \
        "edge_index holds node id 5, out of range for num_nodes=5"
    assert raised(torch.tensor([7, 7, 7])[:1].expand(4), 8, "x") is None  # stride 0


def _ids(dtype: torch.dtype) -> st.SearchStrategy:
    """Lists of ids of ``dtype``: mostly near the range ``[0, 10)``, some anywhere."""
    info = torch.iinfo(dtype)
    return st.tuples(st.just(dtype), st.lists(
        st.integers(-3, 12) | st.integers(info.min, info.max), max_size=50))


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from([torch.int64, torch.int32]).flatmap(_ids),
       num_nodes=st.integers(1, 10))
def test_check_matches_brute_force(case, num_nodes):
    dtype, ids = case
    index = torch.tensor(ids, dtype=dtype)
    assert raised(index, num_nodes, "index") == brute_force_error(ids, num_nodes, "index")


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.integers(-2**63, 2**63 - 1), min_size=1, max_size=70),
       dtype=st.sampled_from([np.int64, np.int32, np.uint64]))
def test_min_max_matches_numpy(values, dtype):
    info = np.iinfo(dtype)
    array = np.array([min(max(v, info.min), info.max) for v in values], dtype=dtype)
    assert min_max(array) == (array.min(), array.max())


def test_store_gather_names_the_index():
    """FeatureStore.gather goes through the same check (its messages unchanged)."""
    from graphbatch.features import FeatureStore

    store = FeatureStore({"x": torch.arange(12.0).view(6, 2)}, pin=False)
    assert store.gather("x", torch.tensor([5, 0])).tolist() == [[10.0, 11.0], [0.0, 1.0]]
    with pytest.raises(ValueError, match=re.escape("index holds a negative node id (-3)")):
        store.gather("x", [1, -3])
    with pytest.raises(ValueError, match=re.escape(
            "index holds node id 6, out of range for num_nodes=6")):
        store.gather("x", torch.tensor([6], dtype=torch.int32))


@pytest.mark.parametrize("value, error, message", [
    ([[0, 1], [1, 0]], TypeError, "E must be a torch.Tensor, got list"),
    (torch.zeros(2, 3), TypeError, "E must have dtype torch.int64 (or int32), got torch.float32"),
    (torch.zeros(3, 2, dtype=torch.int64), ValueError, "E must have shape [2, E], got (3, 2)"),
    (torch.zeros(2, dtype=torch.int64), ValueError, "E must have shape [2, E], got (2,)"),
])
def test_edge_index_errors_name_the_argument(value, error, message):
    with pytest.raises(error, match=re.escape(message)):
        as_edge_index(value, "E")


def test_edge_index_becomes_contiguous_int64():
    ei = torch.tensor([[0, 2, 1], [1, 0, 2]], dtype=torch.int32).t().contiguous().t()
    out = as_edge_index(ei)
    assert out.dtype == torch.int64 and out.is_contiguous() and torch.equal(out, ei.long())


def test_heterogeneous_edge_index_errors_name_the_edge_type():
    from torch_geometric.data import HeteroData

    from graphbatch.sampling.hetero import HeteroGraph
    h = HeteroData()
    h["a"].num_nodes = 3
    h["a", "to", "a"].edge_index = torch.zeros(2, 2)
    with pytest.raises(TypeError, match=re.escape("edge_index of ('a', 'to', 'a') must have dtype")):
        HeteroGraph.from_data(h)

