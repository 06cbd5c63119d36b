"""What every graphbatch loader is: a plan of batches, a sampler, feature gathering
from the stores, and the prefetch threads.

A loader is a ``torch.utils.data.DataLoader`` over the
:class:`~graphbatch.sampling.plan.BatchPlan` of :class:`SeededBatches`. Its
``collate_fn`` has the :class:`~graphbatch.sampling.plan.Sampler` turn a plan into ids
(in a worker process, in a prefetch thread, or, with ``prefetch=0``, in the calling
thread) and ``filter_fn`` gathers the features into a ``Data`` batch (in the main
process by default, in the prefetch threads). The public loaders validate their
arguments, build a plan and a sampler, and say which fields their batches add
(:meth:`BatchLoader.decorate`).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Union

import numba
import torch
from torch_geometric.data import Data

from graphbatch import _numba
from graphbatch._validate import check_positive_int
from graphbatch.features import FeatureStore
from graphbatch.graph import CSCGraph
from graphbatch.loader.assemble import assemble
from graphbatch.loader.batches import ItemDataset, SeededBatches
from graphbatch.loader.data_stores import DataStores
from graphbatch.loader.prefetch import (
    DEFAULT_MAX_BYTES, DEFAULT_THREADS, Prefetcher, batch_nbytes, join_stopped,
)
from graphbatch.sampling.plan import BatchPlan, Sampler
from graphbatch.sampling.subgraph import SampledSubgraph


def check_data(data: object, loader: str) -> None:
    if not isinstance(data, Data):
        raise NotImplementedError(
            f"graphbatch.{loader} supports torch_geometric.data.Data, got "
            f"{type(data).__name__} (heterogeneous and remote stores come later)"
        )


def graph_of(data: Data, graph: Optional[CSCGraph]) -> CSCGraph:
    """``graph`` checked against ``data``, or the topology of ``data`` built now."""
    if graph is None:
        return CSCGraph.from_data(data)
    if not isinstance(graph, CSCGraph):
        raise TypeError(f"graph must be a CSCGraph, got {type(graph).__name__}")
    if graph.num_nodes != data.num_nodes or graph.num_edges != data.num_edges:
        raise ValueError(
            f"graph ({graph}) does not match data (num_nodes={data.num_nodes}, "
            f"num_edges={data.num_edges})"
        )
    return graph


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
        batches: the epoch's plans.
        sampler: turns each plan into the batch's ids.
        transform: applied to each ``Data`` batch (in the prefetch threads,
            concurrently: it must be thread-safe, as PyG's transforms are).
        transform_sampler_output: applied to each :class:`SampledSubgraph` first.
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
        **kwargs: further ``torch.utils.data.DataLoader`` arguments.
    """

    def __init__(
        self,
        data: Data,
        graph: CSCGraph,
        batches: SeededBatches,
        sampler: Sampler,
        transform: Optional[Callable] = None,
        transform_sampler_output: Optional[Callable] = None,
        filter_per_worker: Optional[bool] = None,
        node_store: Optional[FeatureStore] = None,
        edge_store: Optional[FeatureStore] = None,
        device: Union[str, torch.device, None] = None,
        prefetch: int = 2,
        prefetch_threads: int = DEFAULT_THREADS,
        prefetch_bytes: Optional[int] = DEFAULT_MAX_BYTES,
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
        self.subgraph_sampler = sampler
        self.transform = transform
        self.transform_sampler_output = transform_sampler_output
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
            sampler.share_memory_()
            if self.filter_per_worker:
                self.node_store.share_memory_()
                self.edge_store.share_memory_()
            kwargs["worker_init_fn"] = _SingleNumbaThread(kwargs.get("worker_init_fn"))
            if not _numba.FORK_SAFE and kwargs.get("multiprocessing_context") is None:
                kwargs["multiprocessing_context"] = "forkserver"
        super().__init__(ItemDataset(batches.num_inputs), batch_size=None, sampler=batches,
                         collate_fn=self.collate_fn, **kwargs)

    def __getstate__(self) -> dict:
        # What worker processes get (collate_fn is a method of the loader). They never
        # draw: the plans are made here, and a torch.Generator does not survive pickling
        # to spawn or forkserver workers (its state tensor fails to rebuild there).
        # Without filter_per_worker they only sample: the graph's attributes and
        # stores stay here (pickling would move them to shared memory, copying
        # memory-mapped tables whole).
        state = {**self.__dict__, "generator": None}
        if not self.filter_per_worker:
            state.update(data=None, stores=None)
        return state

    @property
    def node_store(self) -> FeatureStore:
        """The node tables batches are gathered from, for ``data`` as it is now."""
        return self.stores.current(self.data).node

    @property
    def edge_store(self) -> FeatureStore:
        """The edge tables batches are gathered from, for ``data`` as it is now."""
        return self.stores.current(self.data).edge

    def decorate(self, batch: Data, out: SampledSubgraph, plan: BatchPlan,
                 device: Optional[torch.device]) -> None:
        """Adds the loader's own fields to an assembled batch (none by default)."""

    def sample_ids(self, plan: BatchPlan) -> SampledSubgraph:
        """The ids of batch ``plan``: the sampler's output, after
        ``transform_sampler_output``."""
        out = self.subgraph_sampler.sample(plan)
        if self.transform_sampler_output is not None:
            out = self.transform_sampler_output(out)
        return out

    def collate_fn(self, plan: BatchPlan) -> Any:
        """Samples one batch (in a worker or a prefetch thread): its ids and plan, or the
        whole ``Data`` batch with ``filter_per_worker``."""
        out = self.sample_ids(plan)
        if self.filter_per_worker:
            # Without workers the batch is built on the device directly: a copy from a
            # CPU batch dropped right after would still read its reused buffers. A
            # worker builds it in plain memory (CUDA is not used in workers).
            in_worker = torch.utils.data.get_worker_info() is not None
            return self.filter_fn(out, plan, device=None if in_worker else self.device)
        return out, plan

    #: Whether making a batch is a collective of the ranks (see :class:`Prefetcher`).
    lockstep = False

    #: Makes a batch of ``(data, out, node store, edge store, device)``; loaders of
    #: other data (``HeteroData``) put their own.
    assemble_batch = staticmethod(assemble)

    def filter_fn(self, out: SampledSubgraph, plan: BatchPlan,
                  device: Optional[torch.device] = None) -> Data:
        """Joins the sampled ids with the graph's attributes into a ``Data`` batch."""
        data = self.data  # once: the training loop may replace it meanwhile
        stores = self.stores.current(data)
        batch = self.assemble_batch(data, out, stores.node, stores.edge, device)
        self.decorate(batch, out, plan, device)
        return batch if self.transform is None else self.transform(batch)

    def _finish(self, sampled: Any) -> Data:
        if self.filter_per_worker:
            if self.device is None or self.num_workers == 0:
                return sampled
            # From a worker's shared memory, not a reused buffer: pageable, so the copy
            # has read it when this returns.
            return sampled.to(self.device, non_blocking=True)
        return self.filter_fn(*sampled, device=self.device)

    def _sample_and_finish(self, item: tuple) -> Data:
        return self._finish(self.collate_fn(item))

    def _batch_nbytes(self, batch: Data) -> int:
        """Bytes a batch adds to memory: its tensors but those of ``data`` it carries
        whole (graph-level attributes, say), which prefetch does not multiply."""
        return batch_nbytes(batch, {id(v) for v in self.data._store._mapping.values()})

    def __iter__(self):
        if self.num_workers > 0:
            join_stopped()  # before forking workers: TBB must be idle
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
                          self.prefetch_threads, self.prefetch_bytes, self._batch_nbytes,
                          lockstep=self.lockstep)


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
