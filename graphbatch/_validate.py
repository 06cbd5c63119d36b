"""Boundary checks shared by the graph, the samplers and the loaders.

Each raises a ``TypeError`` or ``ValueError`` that names the argument and the bad
value, so no malformed input ever reaches a numba kernel.

The range check scans the ids in one serial numba pass, not with torch's ``min()`` and
``max()``: those run as OpenMP parallel regions, after which torch's OpenMP threads
spin-wait for more work on the cores the numba gather that follows needs (issue 15:
on 2 cores, 64 MiB of 256 B rows, the worker spun 8.5 ms of CPU per check and
``FeatureStore.gather`` ran at 0.6 of ``gather_unchecked``'s speed). The pass reads
the 2 MB of ids of that gather in about 0.15 ms.
"""
from __future__ import annotations

import operator

import torch
from numba import njit
from torch import Tensor

_INDEX_DTYPES = (torch.int64, torch.int32)


def as_index_tensor(value: object, name: str) -> Tensor:
    """Returns ``value`` as a contiguous 1-D int64 CPU tensor, or raises.

    Accepts int64/int32 tensors and anything ``torch.as_tensor`` turns into one of
    those dtypes (lists, numpy arrays). Booleans and floats are refused.
    """
    if not isinstance(value, Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"{name} must be an integer tensor, got {type(value).__name__}") from exc
        if value.numel() == 0:
            value = value.long()  # an empty list converts to float32; its dtype means nothing
    if value.dtype not in _INDEX_DTYPES:
        raise TypeError(f"{name} must have dtype torch.int64 (or int32), got {value.dtype}")
    if value.dim() != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {tuple(value.shape)}")
    return value.to(device="cpu", dtype=torch.int64).contiguous()


@njit(cache=True, nogil=True)
def min_max(values):
    """The smallest and the largest of the (non-empty, 1-D) integer ``values``."""
    lo = values[0]
    hi = values[0]
    for i in range(1, values.shape[0]):
        v = values[i]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    return lo, hi


def as_edge_index(value: object, name: str = "edge_index") -> Tensor:
    """``value`` as a contiguous ``[2, E]`` int64 CPU tensor (from int64 or int32), or
    raises naming ``name``; the ids are not range-checked here."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype not in _INDEX_DTYPES:
        raise TypeError(f"{name} must have dtype torch.int64 (or int32), got {value.dtype}")
    if value.dim() != 2 or value.size(0) != 2:
        raise ValueError(f"{name} must have shape [2, E], got {tuple(value.shape)}")
    return value.to(device="cpu", dtype=torch.int64).contiguous()


def check_node_range(index: Tensor, num_nodes: int, name: str) -> None:
    """Raises ValueError if any id in ``index`` (a 1-D integer tensor) is negative or
    ``>= num_nodes``."""
    if index.numel() == 0:
        return
    if index.device.type == "cpu":
        lo, hi = (int(v) for v in min_max(index.numpy()))
    else:  # no OpenMP threads to wake on a GPU
        lo, hi = int(index.min()), int(index.max())
    if lo < 0:
        raise ValueError(f"{name} holds a negative node id ({lo})")
    if hi >= num_nodes:
        raise ValueError(f"{name} holds node id {hi}, out of range for num_nodes={num_nodes}")


def as_int(value: object, name: str) -> int:
    """``value`` as a Python int (numpy and torch integer scalars included), or TypeError."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r}") from None


def check_positive_int(value: object, name: str) -> int:
    value = as_int(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value
