"""The feature store: node (or edge) tables in host memory, gathered by id."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np
import torch
from torch import Tensor

from graphbatch._validate import as_index_tensor, check_node_range, check_positive_int
from graphbatch.features import cpu, cuda
from graphbatch.features.buffers import BufferPool

Source = Union[Tensor, np.ndarray, str, os.PathLike]
HALF_DTYPES = (torch.float16, torch.bfloat16)
#: numpy dtype kinds a store holds: bool, signed and unsigned integers, floats.
TABLE_KINDS = "biuf"


def _open_npy(path: Path, name: str) -> Tensor:
    try:
        array = np.load(path, mmap_mode="r")
    except Exception as exc:  # noqa: BLE001 -- a corrupted header raises tokenize's TokenError
        raise ValueError(f"table {name!r}: cannot memory-map {str(path)!r}: {exc}") from exc
    if not isinstance(array, np.ndarray):
        raise ValueError(f"table {name!r}: {str(path)!r} is not a .npy file (an .npz archive?)")
    if array.dtype.kind not in TABLE_KINDS or array.dtype.byteorder == ">":
        raise TypeError(
            f"table {name!r}: {str(path)!r} holds dtype {array.dtype}, expected a native "
            "bool, integer or float dtype"
        )
    with warnings.catch_warnings():
        # The map is read-only and only ever read; torch warns about non-writable arrays.
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def data_tables(data, kind: str, num_nodes: Optional[int],
                num_edges: Optional[int]) -> dict[str, Union[Tensor, np.ndarray]]:
    """The node (``kind='node'``) or edge (``'edge'``) tables of a PyG ``Data``, by name:
    its tensor and numpy attributes (numpy of a dtype a store holds) with ``num_nodes``
    (``num_edges``) rows along dimension 0, their batching dimension. These are the
    attributes PyG slices by node (edge); where the two counts are equal, PyG's
    tie-break: names with ``'edge'`` in them are edge attributes.
    """
    if kind not in ("node", "edge"):
        raise ValueError(f"kind must be 'node' or 'edge', got {kind!r}")
    rows = num_nodes if kind == "node" else num_edges
    store = data._store
    tables: dict[str, Union[Tensor, np.ndarray]] = {}
    for key, value in store.items():
        if key == "adj_t" or not isinstance(value, (Tensor, np.ndarray)) or value.ndim == 0:
            continue
        if isinstance(value, np.ndarray) and value.dtype.kind not in TABLE_KINDS:
            continue
        if value.shape[0] != rows or data.__cat_dim__(key, value, store) != 0:
            continue
        if num_nodes == num_edges and ("edge" in key) != (kind == "edge"):
            continue
        tables[key] = value
    return tables


class FeatureStore:
    """Row tables of equal length (``num_rows``), kept in host memory, gathered by id.

    Args:
        tables: name -> source: a tensor, a numpy array (used without a copy where it is
            C-contiguous, so a ``np.memmap`` stays on disk), or the path of a ``.npy``
            file, opened memory-mapped so tables larger than RAM work.
            Each source is ``[num_rows, ...]`` of a bool, integer or float dtype.
        num_rows: the expected first dimension (nodes or edges); inferred when None.
        dtype: store floating tables in this precision (``torch.float16`` or
            ``torch.bfloat16``) to halve the bytes moved; gathered rows come back in it.
            Memory-mapped tables are never converted (that would read them whole).
        pin: pin the tables in place for zero-copy CUDA gathers (``None``: when CUDA
            is available).
    """

    def __init__(
        self,
        tables: Mapping[str, Source],
        num_rows: Optional[int] = None,
        dtype: Optional[torch.dtype] = None,
        pin: Optional[bool] = None,
    ) -> None:
        if dtype is not None and dtype not in HALF_DTYPES:
            raise ValueError(f"dtype must be None, torch.float16 or torch.bfloat16, got {dtype}")
        if num_rows is not None:
            num_rows = check_positive_int(num_rows, "num_rows")
        self._tables: dict[str, Tensor] = {}
        self._mapped: dict[str, str] = {}  # memory-mapped tables: name -> file
        self._writable_maps: set[str] = set()  # of those, maps opened for writing (r+, w+)
        for name, source in tables.items():
            table = self._load(name, source)
            if table.dim() == 0:
                raise ValueError(f"table {name!r} must have a row dimension, got a scalar")
            if num_rows is None:
                num_rows = table.size(0)
            if table.size(0) != num_rows:
                where = f" ({self._mapped[name]!r})" if name in self._mapped else ""
                raise ValueError(
                    f"table {name!r}{where} has shape {tuple(table.shape)}, expected "
                    f"{num_rows} rows (num_rows)"
                )
            if dtype is not None and table.is_floating_point() and name not in self._mapped:
                table = table.to(dtype)
            self._tables[name] = table.contiguous()
        self.num_rows: int = num_rows or 0
        self.pin = cuda.cuda_available() if pin is None else bool(pin)
        self._pinned: dict[str, cuda.PinnedRegistration] = {}
        self._aliases: dict[tuple[str, torch.device], Tensor] = {}
        self._pool = BufferPool(register=cuda.register_array if self.pin else None)

    def _load(self, name: str, source: Source) -> Tensor:
        if isinstance(source, Tensor):
            table = source.detach()
        elif isinstance(source, np.ndarray):
            if source.dtype.kind not in TABLE_KINDS:
                raise TypeError(f"table {name!r} has dtype {source.dtype}; expected bool, int or float")
            if isinstance(source, np.memmap) and source.flags.c_contiguous:
                self._mapped[name] = str(source.filename)  # read in place, like a .npy path
                if source.flags.writeable:
                    self._writable_maps.add(name)
            with warnings.catch_warnings():
                # A read-only map is only ever read (scatter_ refuses mapped tables);
                # torch warns about non-writable arrays.
                warnings.simplefilter("ignore", UserWarning)
                table = torch.from_numpy(np.ascontiguousarray(source))
        elif isinstance(source, (str, os.PathLike)):
            self._mapped[name] = str(source)
            return _open_npy(Path(source), name)
        else:
            raise TypeError(f"table {name!r} must be a tensor, numpy array or .npy path, got "
                            f"{type(source).__name__}")
        if table.device.type != "cpu":
            raise ValueError(f"table {name!r} must be in host memory, got device {table.device}")
        if table.is_complex():
            raise TypeError(f"table {name!r} has dtype {table.dtype}; expected bool, int or float")
        return table

    @classmethod
    def from_data(cls, data, kind: str = "node", **kwargs) -> "FeatureStore":
        """The node (``kind='node'``) or edge tables of a PyG ``Data``: see
        :func:`data_tables`."""
        tables = data_tables(data, kind, data.num_nodes, data.num_edges)
        num_rows = data.num_nodes if kind == "node" else data.num_edges
        return cls(tables, num_rows=num_rows or None, **kwargs)

    @property
    def names(self) -> list[str]:
        return list(self._tables)

    def __contains__(self, name: str) -> bool:
        return name in self._tables

    def __getitem__(self, name: str) -> Tensor:
        return self._tables[name]

    def __repr__(self) -> str:
        tables = ", ".join(f"{k}={tuple(v.shape)} {v.dtype}" for k, v in self._tables.items())
        return f"FeatureStore(num_rows={self.num_rows}, {tables})"

    def share_memory_(self) -> "FeatureStore":
        """Moves in-memory tables to shared memory so worker processes read them in place."""
        for name, table in self._tables.items():
            if name not in self._mapped:
                table.share_memory_()
        return self

    def check_index(self, index: object, name: str = "index") -> Tensor:
        """Validates row ids: a 1-D integer tensor with values in ``[0, num_rows)``."""
        index = as_index_tensor(index, name)
        check_node_range(index, self.num_rows, name)
        return index

    def gather(self, name: str, index: object, device: Optional[torch.device] = None) -> Tensor:
        """Rows ``index`` of table ``name``: ``[len(index), ...]``, the table's dtype.

        On the CPU the rows are gathered in parallel into a reused buffer (recycled only
        once nothing holds the result). On a CUDA ``device`` the GPU reads them from the
        pinned table in place.
        """
        if name not in self._tables:
            raise KeyError(f"no table {name!r}; the store holds {self.names}")
        return self.gather_unchecked(name, self.check_index(index), device)

    def gather_unchecked(self, name: str, index: Tensor,
                         device: Optional[torch.device] = None) -> Tensor:
        """:meth:`gather` for ids already validated (int64 CPU tensor, in range)."""
        table = self._tables[name]
        if device is not None and torch.device(device).type == "cuda":
            device = torch.device(device)
            return cuda.gather_on_device(self._alias(name, device), index, device)
        out = self._pool.empty((index.numel(), *table.shape[1:]), table.dtype)
        return cpu.gather_into(table, index, out)

    def scatter_(self, name: str, index: Tensor, values: Tensor) -> None:
        """Writes ``values`` ([len(index), ...], any device) to rows ``index`` of table
        ``name``, in place. From a CUDA tensor the GPU writes the pinned host rows
        directly (zero-copy); otherwise the rows are copied in on the CPU. Ids must be
        distinct (which write wins among repeats is unspecified) and validated by the
        caller, as for :meth:`gather_unchecked`; memory-mapped tables are written only
        where their map was opened for writing (an ``np.memmap`` in mode ``r+``, ``w+``)."""
        if self._read_only(name):
            raise ValueError(f"table {name!r} is memory-mapped read-only; it cannot be written")
        table = self._tables[name]
        if values.shape != (index.numel(), *table.shape[1:]):
            raise ValueError(f"values for table {name!r} must have shape "
                             f"{(index.numel(), *table.shape[1:])}, got {tuple(values.shape)}")
        if values.is_cuda:
            alias = self._alias(name, values.device)
            alias.index_copy_(0, index.to(values.device), values.to(table.dtype))
        else:
            table.index_copy_(0, index, values.to(table.dtype))

    def _read_only(self, name: str) -> bool:
        return name in self._mapped and name not in self._writable_maps

    def _alias(self, name: str, device: torch.device) -> Tensor:
        key = (name, device)
        if key not in self._aliases:
            table = self._tables[name]
            if name not in self._pinned:
                self._pinned[name] = cuda.PinnedRegistration(
                    table, table.data_ptr(), table.numel() * table.element_size(),
                    read_only=self._read_only(name))
            self._aliases[key] = cuda.device_alias(table, device)
        return self._aliases[key]

    def release(self) -> None:
        """Unpins the tables now (also done when the store is freed)."""
        self._aliases.clear()
        for registration in self._pinned.values():
            registration.release()
        self._pinned.clear()
