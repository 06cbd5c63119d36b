"""What every graphbatch loader shares: seeded batch plans, sampling in workers or
threads, feature gathering from the stores, and the prefetch threads.

A loader is a ``torch.utils.data.DataLoader`` over :class:`SeededBatches` items. Its
``collate_fn`` samples ids (in a worker process, in a prefetch thread, or, with
``prefetch=0``, in the calling thread) and ``filter_fn`` gathers the features into a
``Data`` batch (in the main process by default, in the prefetch threads).
Subclasses say how to sample (:meth:`BatchLoader.sample`) and which fields their
batches add (:meth:`BatchLoader.decorate`).
"""
from __future__ import annotations

import copy
import threading
from typing import Any, Callable, Collection, NamedTuple, Optional, Union

import numba
import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from graphbatch import _numba
from graphbatch._validate import check_positive_int
from graphbatch.features import FeatureStore
from graphbatch.features.store import data_tables
from graphbatch.graph import CSRGraph
from graphbatch.loader.assemble import assemble
from graphbatch.loader.batches import ItemDataset, SeededBatches
from graphbatch.loader.prefetch import DEFAULT_MAX_BYTES, DEFAULT_THREADS, Prefetcher
from graphbatch.sampling.subgraph import SampledSubgraph


def check_data(data: object, loader: str) -> None:
    if not isinstance(data, Data):
        raise NotImplementedError(
            f"graphbatch.{loader} supports torch_geometric.data.Data, got "
            f"{type(data).__name__} (heterogeneous and remote stores come later)"
        )


def graph_of(data: Data, graph: Optional[CSRGraph]) -> CSRGraph:
    """``graph`` checked against ``data``, or the topology of ``data`` built now."""
    if graph is None:
        return CSRGraph.from_data(data)
    if not isinstance(graph, CSRGraph):
        raise TypeError(f"graph must be a CSRGraph, got {type(graph).__name__}")
    if graph.num_nodes != data.num_nodes or graph.num_edges != data.num_edges:
        raise ValueError(
            f"graph ({graph}) does not match data (num_nodes={data.num_nodes}, "
            f"num_edges={data.num_edges})"
        )
    return graph


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


class _SingleNumbaThread:
    """Worker init: one kernel thread per worker, then the user's ``worker_init_fn``.

    Workers already run in parallel with each other; one kernel thread each avoids
    oversubscribing the cores, as torch does for its own threads in workers. A class,
    not a closure, so that spawn and forkserver workers can unpickle it.
    """

    def __init__(self, worker_init_fn: Optional[Callable[[int], None]]) -> None:
        self.worker_init_fn = worker_init_fn

    def __call__(self, worker_id: int) -> None:
        numba.set_num_threads(1)
        if self.worker_init_fn is not None:
            self.worker_init_fn(worker_id)


class BatchLoader(torch.utils.data.DataLoader):
    """The shared loader machinery; see the module docstring.

    Args:
        data: the graph's attributes.
        graph: its topology.
        batches: the epoch plan.
        transform: applied to each ``Data`` batch (in the prefetch threads,
            concurrently: it must be thread-safe, as PyG's transforms are).
        filter_per_worker: build the ``Data`` batches (gather their features) in the
            worker processes. By default (None, False) workers only sample, and the
            features are gathered in the main process, in the prefetch threads, into
            reused buffers or straight onto ``device``.
        node_store, edge_store: :class:`~graphbatch.features.FeatureStore` of node and
            edge tables (memory-mapped, half precision, ...), used as given; their tables
            become batch attributes of those names. By default, data's node and edge
            tables, followed as ``data`` changes (:class:`DataStores`).
        device: where batches arrive; on CUDA, node features are read by the GPU from
            pinned host memory (zero-copy).
        prefetch: batches kept ready by background threads (0: none, batches are
            built on demand, in the calling thread).
        prefetch_threads: background threads that make batches, each a whole batch at
            a time (with ``prefetch > 0``).
        prefetch_bytes: bytes the batches made ahead may hold, at most (None: no
            bound). One batch is always made ahead, whatever its size, so peak host
            memory stays within ``max(one batch, prefetch_bytes)`` of ``prefetch=0``;
            the first batch of an epoch is made alone, to learn the size.
        shared: objects with ``share_memory_()`` that worker processes read.
        **kwargs: further ``torch.utils.data.DataLoader`` arguments.
    """

    def __init__(
        self,
        data: Data,
        graph: CSRGraph,
        batches: SeededBatches,
        transform: Optional[Callable] = None,
        filter_per_worker: Optional[bool] = None,
        node_store: Optional[FeatureStore] = None,
        edge_store: Optional[FeatureStore] = None,
        device: Union[str, torch.device, None] = None,
        prefetch: int = 2,
        prefetch_threads: int = DEFAULT_THREADS,
        prefetch_bytes: Optional[int] = DEFAULT_MAX_BYTES,
        shared: tuple = (),
        **kwargs: Any,
    ) -> None:
        for key in ("dataset", "collate_fn", "batch_sampler"):
            if key in kwargs:
                raise TypeError(f"{type(self).__name__} does not take '{key}'")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"prefetch must be an int >= 0, got {prefetch!r}")
        self.prefetch_threads = check_positive_int(prefetch_threads, "prefetch_threads")
        self.prefetch_bytes = (None if prefetch_bytes is None
                               else check_positive_int(prefetch_bytes, "prefetch_bytes"))
        self.data = data
        self.graph = graph
        self.batches = batches
        self.transform = transform
        self.filter_per_worker = bool(filter_per_worker)
        self.prefetch = prefetch
        self.device = torch.device(device) if device is not None else None
        for name, store, rows in (("node_store", node_store, graph.num_nodes),
                                  ("edge_store", edge_store, graph.num_edges)):
            if store is None:
                continue
            if not isinstance(store, FeatureStore):
                raise TypeError(f"{name} must be a FeatureStore, got {type(store).__name__}")
            if store.names and store.num_rows != rows:
                raise ValueError(f"{name} has {store.num_rows} rows, the graph {rows}")
        self.stores = DataStores(data, graph.num_nodes, graph.num_edges, node_store, edge_store)

        if kwargs.get("num_workers", 0) > 0:
            for obj in shared:
                obj.share_memory_()
            if self.filter_per_worker:
                self.node_store.share_memory_()
                self.edge_store.share_memory_()
            kwargs["worker_init_fn"] = _SingleNumbaThread(kwargs.get("worker_init_fn"))
            if not _numba.FORK_SAFE and kwargs.get("multiprocessing_context") is None:
                kwargs["multiprocessing_context"] = "forkserver"
        super().__init__(ItemDataset(batches.num_inputs), batch_size=None, sampler=batches,
                         collate_fn=self.collate_fn, **kwargs)

    @property
    def node_store(self) -> FeatureStore:
        """The node tables batches are gathered from, for ``data`` as it is now."""
        return self.stores.current(self.data).node

    @property
    def edge_store(self) -> FeatureStore:
        """The edge tables batches are gathered from, for ``data`` as it is now."""
        return self.stores.current(self.data).edge

    def sample(self, item: tuple) -> tuple[SampledSubgraph, Any]:
        """Samples the ids of batch ``item`` (from :class:`SeededBatches`); returns them
        with whatever :meth:`decorate` needs."""
        raise NotImplementedError

    def decorate(self, batch: Data, out: SampledSubgraph, meta: Any,
                 device: Optional[torch.device]) -> None:
        """Adds the loader's own fields to an assembled batch."""

    def collate_fn(self, item: tuple) -> Any:
        """Samples one batch (in a worker or a prefetch thread): its ids only, or the
        whole ``Data`` batch with ``filter_per_worker``."""
        out, meta = self.sample(item)
        if self.filter_per_worker:
            return self.filter_fn(out, meta, device=None)
        return out, meta

    def filter_fn(self, out: SampledSubgraph, meta: Any,
                  device: Optional[torch.device] = None) -> Data:
        """Joins the sampled ids with the graph's attributes into a ``Data`` batch."""
        stores = self.stores.current(self.data)
        batch = assemble(self.data, out, stores.node, stores.edge, device)
        self.decorate(batch, out, meta, device)
        return batch if self.transform is None else self.transform(batch)

    def _finish(self, sampled: Any) -> Data:
        if self.filter_per_worker:
            return sampled if self.device is None else sampled.to(self.device, non_blocking=True)
        return self.filter_fn(*sampled, device=self.device)

    def _sample_and_finish(self, item: tuple) -> Data:
        return self._finish(self.collate_fn(item))

    def __iter__(self):
        self.batches.new_epoch()
        # Brought up to date here, once, before workers copy the loader: with
        # filter_per_worker each worker would otherwise rebuild changed stores itself.
        self.stores.current(self.data)
        # Made in every case: making it draws a base seed from the random generator,
        # so the epochs' seeds do not depend on how batches are made.
        it = super().__iter__()
        if self.prefetch == 0:
            return _Mapped(it, self._finish)
        if self.num_workers == 0 and not self.pin_memory:
            # The prefetch threads sample too: the DataLoader's own iterator would call
            # collate_fn for one batch at a time.
            source, produce = iter(self.batches), self._sample_and_finish
        else:
            source, produce = it, self._finish
        return Prefetcher(source, produce, self.prefetch, self.device, len(self),
                          self.prefetch_threads, self.prefetch_bytes)


class _Mapped:
    """A DataLoader iterator whose items go through ``fn`` on the way out."""

    def __init__(self, it, fn: Callable[[Any], Data]) -> None:
        self.it = it
        self.fn = fn

    def __iter__(self):
        return self

    def __next__(self) -> Data:
        return self.fn(next(self.it))

    def __len__(self) -> int:
        return len(self.it)
