"""The feature store: node (or edge) tables in host memory, gathered by id.

Gathering onto a CUDA device takes one of two paths per table:

- **zero-copy** (``pin=True``, tables in RAM): the table is pinned in place and the GPU
  reads the rows it needs over unified addressing (:mod:`graphbatch.features.cuda`).
- **staged** (memory-mapped tables, read-only arrays, ``pin=False``): the rows are
  gathered on the CPU into a reused buffer (pinned with ``pin=True``) and copied to
  the device on the current stream, which in a loader is a prefetch thread's side
  stream. Pinning a file mapping would read the whole file into RAM and lock it
  there, so tables larger than RAM take this path on a GPU too; a pinned buffer is
  refilled only once the copy reading it is done.

Device reads and writes of a pinned table are ordered with the host's: the host
reads or writes a table (indexing, CPU gathers and scatters, ``share_memory_``,
``release``) only after the device work queued on it is done, and a device access on
one stream waits for the device writes queued on others.
"""
from __future__ import annotations

import os
import threading
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


def _open_npy(path: Path, name: str) -> np.ndarray:
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
    return array


def _from_numpy(array: np.ndarray) -> Tensor:
    with warnings.catch_warnings():
        # A read-only array is only ever read (scatter_ refuses it); torch warns
        # about non-writable arrays.
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def _reopen(recipe: tuple) -> Tensor:
    """A memory-mapped table opened again from ``(file, dtype, shape, offset, mode)``."""
    filename, dtype, shape, offset, mode = recipe
    return _from_numpy(np.memmap(filename, dtype=np.dtype(dtype), mode=mode, shape=shape,
                                 offset=offset))


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
        pin: pin the tables in place for zero-copy CUDA gathers, and the buffers of
            CPU gathers for asynchronous copies (``None``: when CUDA is available).
            Pinning happens in the process that made the store only: in worker
            processes the store gathers into plain memory.
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
        # How each memory-mapped table is opened again where the store is unpickled
        # (a worker process): pickling the tensor would copy the file into shared memory.
        self._maps: dict[str, tuple] = {}
        self._frozen: set[str] = set()  # in-memory tables of read-only arrays
        self.num_rows: int = num_rows or 0
        self._dtype = dtype
        for name, source in tables.items():
            self._add(name, source, fixed_rows=num_rows is not None or bool(self._tables))
        if pin and not cuda.cuda_available():
            raise ValueError("pin=True needs CUDA, which this torch or machine lacks; "
                             "use pin=None (pins where CUDA is available) or False")
        if pin is None:  # never in a worker process (a forked one cannot use CUDA)
            pin = torch.utils.data.get_worker_info() is None and cuda.cuda_available()
        self.pin = bool(pin)
        self._owner = os.getpid()
        self._pool = BufferPool(register=cuda.register_array if self.pin else None)
        self._init_device_state()

    def _add(self, name: str, source: Source, fixed_rows: bool) -> None:
        table = self._load(name, source)
        if table.dim() == 0:
            raise ValueError(f"table {name!r} must have a row dimension, got a scalar")
        if not fixed_rows:
            self.num_rows = table.size(0)
        if table.size(0) != self.num_rows:
            where = f" ({self._mapped[name]!r})" if name in self._mapped else ""
            raise ValueError(
                f"table {name!r}{where} has shape {tuple(table.shape)}, expected "
                f"{self.num_rows} rows (num_rows)"
            )
        if self._dtype is not None and table.is_floating_point() and name not in self._mapped:
            table = table.to(self._dtype)
        self._tables[name] = table.contiguous()

    def add(self, name: str, source: Source) -> None:
        """Adds table ``name`` (a source as in the constructor, ``[num_rows, ...]``)."""
        if name in self._tables:
            raise KeyError(f"table {name!r} exists already; remove it first")
        self._add(name, source, fixed_rows=bool(self._tables) or self.num_rows > 0)

    def remove(self, name: str) -> None:
        """Removes table ``name``, unpinned first once its device work is done."""
        if name not in self._tables:
            raise KeyError(f"no table {name!r}; the store holds {self.names}")
        self._forget(name)
        del self._tables[name]
        for names in (self._mapped, self._maps):
            names.pop(name, None)
        self._writable_maps.discard(name)
        self._frozen.discard(name)

    def as_pyg(self, group_name: Optional[str] = None):
        """This store through PyG's ``torch_geometric.data.FeatureStore`` interface,
        its tables as the attributes of ``group_name`` (see
        :class:`~graphbatch.features.pyg_interface.PyGInterface`)."""
        from graphbatch.features.pyg_interface import PyGInterface
        return PyGInterface(self, group_name)

    def _init_device_state(self) -> None:
        # Guards the registrations and aliases: prefetch threads gather concurrently,
        # and release() may come from any thread.
        self._lock = threading.RLock()
        self._pinned: dict[str, cuda.PinnedRegistration] = {}
        self._aliases: dict[tuple[str, torch.device], Tensor] = {}
        # Device writes not yet known to be done: table -> the last write per stream.
        self._writes: dict[str, cuda.Fences] = {}

    def _load(self, name: str, source: Source) -> Tensor:
        if isinstance(source, (str, os.PathLike)):
            source = _open_npy(Path(source), name)
        if isinstance(source, Tensor):
            table = source.detach()
        elif isinstance(source, np.ndarray):
            if source.dtype.kind not in TABLE_KINDS:
                raise TypeError(f"table {name!r} has dtype {source.dtype}; expected bool, int or float")
            if isinstance(source, np.memmap) and source.flags.c_contiguous:
                self._mapped[name] = str(source.filename)  # read in place
                mode = {"w+": "r+"}.get(source.mode, source.mode)  # w+ would truncate
                self._maps[name] = (str(source.filename), source.dtype.str, source.shape,
                                    source.offset, mode)
                if source.flags.writeable:
                    self._writable_maps.add(name)
            elif not source.flags.writeable:
                self._frozen.add(name)
            table = _from_numpy(np.ascontiguousarray(source))
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
        """The whole table, in host memory, once the device work queued on it is done."""
        self._host_access(name)
        return self._tables[name]

    def __getstate__(self) -> dict:
        # Registrations and device aliases belong to this process and its CUDA
        # context; memory-mapped tables travel as their files.
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("_lock", "_pinned", "_aliases", "_writes")}
        state["_tables"] = {name: self._maps.get(name, table)
                            for name, table in self._tables.items()}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._tables = {name: _reopen(t) if name in self._maps else t
                        for name, t in self._tables.items()}
        self._init_device_state()

    def __repr__(self) -> str:
        tables = ", ".join(f"{k}={tuple(v.shape)} {v.dtype}" for k, v in self._tables.items())
        return f"FeatureStore(num_rows={self.num_rows}, {tables})"

    def share_memory_(self) -> "FeatureStore":
        """Moves in-memory tables to shared memory so worker processes read them in
        place. A table that moves is unpinned first (its device alias would read the
        old memory); the next device gather pins it again."""
        for name, table in self._tables.items():
            if name not in self._mapped and not table.is_shared():
                self._forget(name)
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
        device = _cuda_device(device)
        if device is not None and self._zero_copy(name):
            return self._device_gather(name, cuda.DeviceIndex(index, device))
        return self._host_gather(name, index, device)

    def gather_all(self, index: Tensor, device: Optional[torch.device] = None
                   ) -> dict[str, Tensor]:
        """Rows ``index`` (validated, as for :meth:`gather_unchecked`) of every table,
        by name. On a CUDA device the ids are moved and sorted once for all tables."""
        device = _cuda_device(device)
        prepared = None
        rows = {}
        for name in self._tables:
            if device is not None and self._zero_copy(name):
                if prepared is None:
                    prepared = cuda.DeviceIndex(index, device)
                rows[name] = self._device_gather(name, prepared)
            else:
                rows[name] = self._host_gather(name, index, device)
        return rows

    def _zero_copy(self, name: str) -> bool:
        """Whether CUDA reads table ``name`` in place (see the module docstring)."""
        return (self.pin and name not in self._mapped and name not in self._frozen
                and os.getpid() == self._owner)

    def _host_gather(self, name: str, index: Tensor, device: Optional[torch.device]) -> Tensor:
        """Rows gathered on the CPU into a pool buffer, then copied to a CUDA
        ``device`` if given (the staged path)."""
        table = self._tables[name]
        self._host_access(name)
        out = cpu.gather_into(table, index,
                              self._pool.empty((index.numel(), *table.shape[1:]), table.dtype))
        if device is None:
            return out
        # The buffer's last view goes inside the device's context, so its fence is
        # recorded on the stream that queued the copy.
        with torch.cuda.device(device):
            rows = cuda.copy_to(out, device)
            del out
        return rows

    def _device_gather(self, name: str, index: cuda.DeviceIndex) -> Tensor:
        with self._lock:
            alias, registration, stream = self._device_access(name, index.device)
            rows = cuda.gather_on_device(alias, index)
            registration.fence(stream)
        return rows

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
        if values.is_cuda and self._zero_copy(name):
            with self._lock:
                alias, registration, stream = self._device_access(name, values.device)
                registration.fences.order_after(stream)  # after reads queued elsewhere
                cuda.scatter_on_device(alias, index, values.to(table.dtype))
                # The write's fence is also what reads on other streams wait for.
                writes = self._writes.setdefault(name, cuda.Fences())
                writes.add(stream, registration.fence(stream))
        else:
            values = values.to(device="cpu", dtype=table.dtype)
            self._host_access(name)
            table.index_copy_(0, index, values)

    def _read_only(self, name: str) -> bool:
        return ((name in self._mapped and name not in self._writable_maps)
                or name in self._frozen)

    def _device_access(self, name: str, device: torch.device) -> tuple:
        """The alias of table ``name`` on ``device``, its registration, and the current
        stream there, made to wait for the device writes of other streams. Under
        ``_lock``."""
        device = torch.device("cuda", cuda.ordinal_of(device))
        key = (name, device)
        table = self._tables[name]
        registration = self._pinned.get(name)
        if registration is not None and registration.ptr != table.data_ptr():
            # The table moved (torch moves a storage into shared memory when it is
            # pickled for a spawned worker): its alias would read the old memory.
            self._forget(name)
        if key not in self._aliases:
            if name not in self._pinned:
                pinned_elsewhere = table.is_pinned()
                if not pinned_elsewhere and not table.is_shared():
                    # Pinned memory is never moved afterwards by pickling, and shared
                    # pages are not copied into forked workers.
                    table.share_memory_()
                self._pinned[name] = cuda.PinnedRegistration(
                    table.untyped_storage(), table.data_ptr(), table.numel() * table.element_size(),
                    f"table {name!r}", cuda.ordinal_of(device), pinned_elsewhere)
            self._aliases[key] = cuda.device_alias(table, device, self._pinned[name],
                                                   f"table {name!r}")
        stream = torch.cuda.current_stream(device)
        writes = self._writes.get(name)
        if writes is not None:
            writes.order_after(stream)
        return self._aliases[key], self._pinned[name], stream

    def _host_access(self, name: str) -> None:
        """Waits until the device work queued on table ``name`` is done."""
        with self._lock:
            registration = self._pinned.get(name)
            if registration is not None:
                registration.wait()
                self._writes.pop(name, None)

    def _forget(self, name: str) -> None:
        """Drops table ``name``'s aliases and unpins it, once its device work is done."""
        with self._lock:
            for key in [k for k in self._aliases if k[0] == name]:
                del self._aliases[key]
            self._writes.pop(name, None)
            registration = self._pinned.pop(name, None)
            if registration is not None:
                registration.release()

    def release(self) -> None:
        """Unpins the tables now, once the device work queued on them is done (also
        done when the store is freed)."""
        for name in list(self._tables):
            self._forget(name)


def _cuda_device(device: Union[str, torch.device, None]) -> Optional[torch.device]:
    """``device`` as a ``torch.device`` if it is a CUDA device, else None."""
    if device is None:
        return None
    device = torch.device(device)
    return device if device.type == "cuda" else None
