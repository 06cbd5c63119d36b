"""The feature stores a loader gathers from, kept as ``loader.data`` is, and the check
that data's tables have the graph's row counts."""
from __future__ import annotations

import copy
import threading
from typing import Any, Collection, NamedTuple, Optional

import numpy as np
from torch import Tensor
from torch_geometric.data import Data

from graphbatch.features import FeatureStore
from graphbatch.features.store import data_tables


def check_attribute_rows(data: Data, num_nodes: int, num_edges: int,
                         given: Collection[str] = ()) -> None:
    """Raises ValueError for an attribute of ``data`` that looks like a node or edge
    table with the wrong number of rows.

    PyG slices an attribute by node when its size along its batching dimension is
    ``num_nodes`` (by edge: ``num_edges``) and passes any other whole into every batch,
    silently: a feature table of 999 or 2000 rows for 1000 nodes is such a mistake. So
    a tensor or numpy attribute batched along dimension 0 whose row count is within a
    factor 2 of ``num_nodes`` or ``num_edges`` must equal one of them, unless it is one
    of what legitimately belongs to the whole graph: 1 row (a graph-level attribute),
    an index list (a name with ``'index'``, batched along its last dimension, or
    ending in ``'idx'``, such as ``train_idx``) or link labels (a name starting with
    ``'edge_label'``, counted by the labelled edges). ``given`` names the tables of the
    user's stores, which batches carry in place of data's attributes of those names.
    """
    store = data._store
    for key, value in store.items():
        if (not isinstance(value, (Tensor, np.ndarray)) or value.ndim == 0 or key in given
                or key.endswith("idx") or key.startswith("edge_label")
                or data.__cat_dim__(key, value, store) != 0):
            continue
        rows = value.shape[0]
        if rows in (1, num_nodes, num_edges):
            continue
        if any(2 * rows >= count and rows <= 2 * count for count in (num_nodes, num_edges)):
            raise ValueError(
                f"data attribute {key!r} has {rows} rows (shape {tuple(value.shape)}), near "
                f"but not equal to the graph's {num_nodes} nodes or {num_edges} edges: it "
                f"would pass whole into every batch instead of being sliced by node or "
                f"edge. Give a node attribute {num_nodes} rows and an edge attribute "
                f"{num_edges}; keep an attribute of the whole graph outside data, or give "
                f"it 1 row"
            )


#: A default store's tables: name -> (data's array it holds, the array's ``_version``
#: where the store holds a copy, whose in-place writes it would miss; else None).
Sources = dict[str, tuple[Any, Optional[int]]]


def _unwritten(value: Any, version: Optional[int]) -> bool:
    """Whether a store's copy of ``value``, made at ``version``, is still current (None:
    the store reads value's memory itself)."""
    return version is None or value._version == version


def _same_tables(sources: Sources, tables: dict[str, Any]) -> bool:
    """Whether ``tables`` (name -> data's array) are those a store was built from."""
    return sources.keys() == tables.keys() and all(
        tables[name] is value and _unwritten(value, version)
        for name, (value, version) in sources.items())


class _Stores(NamedTuple):
    """A loader's feature stores and what of ``data`` they were made from."""

    #: The node and the edge store.
    stores: tuple[FeatureStore, FeatureStore]
    #: Their tables' sources; None for a store the user gave.
    sources: tuple[Optional[Sources], Optional[Sources]]
    #: data's attribute names then: one added or deleted calls for a rebuild.
    keys: frozenset[str]
    #: data's array attributes then, by identity: one replaced calls for a rebuild.
    arrays: tuple[tuple[str, Any], ...]

    @property
    def node(self) -> FeatureStore:
        return self.stores[0]

    @property
    def edge(self) -> FeatureStore:
        return self.stores[1]

    def fresh(self, attrs: dict[str, Any]) -> bool:
        """Whether these stores still serve ``attrs`` (data's attributes now)."""
        return (attrs.keys() == self.keys
                and all(attrs.get(name) is value for name, value in self.arrays)
                and all(_unwritten(value, version) for tables in self.sources if tables
                        for value, version in tables.values()))


class DataStores:
    """The node and edge :class:`FeatureStore` a loader gathers from, kept as ``data`` is.

    PyG reads ``loader.data`` as it makes each batch: ``del loader.data.x`` (layer-wise
    inference), a new ``loader.data.x`` or a new attribute shows in the next batches.
    So do they here. A store the user gave is used as given. A default store holds
    data's tables (:func:`~graphbatch.features.store.data_tables`; numpy arrays only
    where it reads them in place) and is rebuilt once data no longer holds what it was
    built from: an attribute added, deleted or replaced (by identity), or an in-place
    write (``Tensor._version``) to a table the store had to copy (a non-contiguous
    one); writes to a table it reads in place need nothing. A rebuild checks data again
    (:func:`check_attribute_rows`) and keeps a store whose tables did not change, with
    its reused buffers.

    :meth:`current` runs for every batch, in the threads that make them; while nothing
    changed it costs a dict copy and an identity compare per array attribute. The first
    thread to find a change rebuilds under a lock; the others wait and take its stores.
    A batch keeps the data it was made from: those made ahead (``prefetch``) before a
    change, and those of worker processes with ``filter_per_worker``, which gather from
    their copy of the loader, taken when they start: each epoch, or once with
    ``persistent_workers`` (as in PyG, such workers do not see later changes).

    Args:
        data: the graph's attributes.
        num_nodes, num_edges: the graph's counts, which node and edge tables match.
        node_store, edge_store: the user's stores, or None for data's tables.
    """

    def __init__(self, data: Data, num_nodes: int, num_edges: int,
                 node_store: Optional[FeatureStore] = None,
                 edge_store: Optional[FeatureStore] = None) -> None:
        self.num_nodes = num_nodes
        self.num_edges = num_edges
        self.given = (node_store, edge_store)
        self._lock = threading.Lock()
        self.state = self.build(data, None)

    def current(self, data: Data) -> _Stores:
        """The stores for ``data`` as it is now; rebuilds them if it changed."""
        state = self.state
        if state.fresh(data._store.to_dict()):  # a copy: the training loop may edit data
            return state
        with self._lock:
            if not self.state.fresh(data._store.to_dict()):
                self.state = self.build(data, self.state)
            return self.state

    def build(self, data: Data, old: Optional[_Stores]) -> _Stores:
        """The stores for ``data`` as it is now, checked as when the loader was built;
        those of ``old`` whose tables did not change are kept."""
        data = copy.copy(data)  # one state throughout, whatever the training loop does
        given = {name for store in self.given if store is not None for name in store.names}
        check_attribute_rows(data, self.num_nodes, self.num_edges, given)
        previous = zip(old.stores, old.sources) if old is not None else [(None, None)] * 2
        stores, sources = zip(*(
            self._store(data, kind, rows, given_store, *prev)
            for kind, rows, given_store, prev in zip(
                ("node", "edge"), (self.num_nodes, self.num_edges), self.given, previous)))
        attrs = data._store.to_dict()
        arrays = tuple((key, value) for key, value in attrs.items()
                       if isinstance(value, (Tensor, np.ndarray)))
        return _Stores(stores, sources, frozenset(attrs), arrays)

    def _store(self, data: Data, kind: str, rows: int, given: Optional[FeatureStore],
               old: Optional[FeatureStore], old_sources: Optional[Sources],
               ) -> tuple[FeatureStore, Optional[Sources]]:
        """The ``kind`` store for ``data`` and its sources: ``given`` if the user gave
        one, else data's tables (``old`` if they did not change)."""
        if given is not None:
            return given, None
        # A numpy array the store would copy is left to assemble, which indexes it:
        # numpy keeps no version that would tell of in-place writes to it.
        tables = {name: value for name, value in
                  data_tables(data, kind, self.num_nodes, self.num_edges).items()
                  if isinstance(value, Tensor) or value.flags.c_contiguous}
        if old_sources is not None and _same_tables(old_sources, tables):
            return old, old_sources
        store = FeatureStore(tables, num_rows=rows or None)
        return store, {
            name: (value, value._version if isinstance(value, Tensor)
                   and store[name].data_ptr() != value.data_ptr() else None)
            for name, value in tables.items()
        }

    def __getstate__(self) -> dict:
        # Pickled with the loader into spawn and forkserver workers. A lock is not
        # picklable, and an unpickled tensor starts at another ``_version``: each copied
        # table's version travels as whether the copy was current, and is taken again
        # from the unpickled tensor, or set to -1 (no version) so that the worker rebuilds.
        state = self.__dict__.copy()
        del state["_lock"]
        state["state"] = self.state._replace(sources=tuple(
            None if tables is None else
            {name: (value, None if version is None else value._version == version)
             for name, (value, version) in tables.items()}
            for tables in self.state.sources))
        return state

    def __setstate__(self, state: dict) -> None:
        state["state"] = state["state"]._replace(sources=tuple(
            None if tables is None else
            {name: (value, None if current is None else value._version if current else -1)
             for name, (value, current) in tables.items()}
            for tables in state["state"].sources))
        self.__dict__.update(state)
        self._lock = threading.Lock()
