"""``graphbatch.NeighborLoader``: a drop-in for ``torch_geometric.loader.NeighborLoader``."""
from __future__ import annotations

import warnings
from typing import Any, Callable, Optional, Sequence, Union

import numba
import torch
from torch import Tensor
from torch_geometric.data import Data

from graphbatch import _numba
from graphbatch._validate import as_index_tensor, check_node_range, check_positive_int
from graphbatch.graph import CSRGraph
from graphbatch.features import FeatureStore
from graphbatch.loader.assemble import assemble
from graphbatch.loader.batches import ItemDataset, SeededBatches
from graphbatch.loader.prefetch import Prefetcher
from graphbatch.sampling.neighbor import NeighborSampler, SampledSubgraph


def resolve_input_nodes(input_nodes: Any, num_nodes: int) -> Tensor:
    """``input_nodes`` (None, an index tensor or a boolean mask) as ``[B]`` int64 node ids."""
    if input_nodes is None:
        return torch.arange(num_nodes)
    if isinstance(input_nodes, (tuple, str)):
        raise NotImplementedError(
            "input_nodes naming a node type (heterogeneous graphs) is not supported yet"
        )
    if isinstance(input_nodes, Tensor) and input_nodes.dtype == torch.bool:
        if input_nodes.dim() != 1 or input_nodes.numel() != num_nodes:
            raise ValueError(
                f"input_nodes as a boolean mask must have shape [{num_nodes}] (num_nodes), "
                f"got {tuple(input_nodes.shape)}"
            )
        nodes = input_nodes.nonzero().view(-1)
    else:
        nodes = as_index_tensor(input_nodes, "input_nodes")
        check_node_range(nodes, num_nodes, "input_nodes")
    if nodes.numel() == 0:
        raise ValueError("input_nodes selects no node; give at least one seed")
    return nodes


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


class NeighborLoader(torch.utils.data.DataLoader):
    """Mini-batches by GraphSAGE neighbor sampling, as ``torch_geometric.loader.NeighborLoader``.

    Takes PyG's arguments for homogeneous ``Data`` and yields the same batches: a
    ``Data`` with node attributes sliced by ``n_id`` and edge attributes by ``e_id``,
    ``edge_index`` ``[2, m]`` in local ids (messages flow row 0 -> row 1), the seeds first
    in input order, and ``n_id``, ``e_id``, ``input_id``, ``batch_size``,
    ``num_sampled_nodes``, ``num_sampled_edges`` (and ``batch`` when ``disjoint``).

    Randomness comes from ``generator`` (or torch's global generator): an epoch draws
    its order and one seed when it starts, and batch ``b`` is sampled from that seed
    and ``b`` alone, so the same ``torch.manual_seed`` gives the same batches for any
    ``num_workers`` and any number of threads.

    Args:
        data: the graph, a ``torch_geometric.data.Data`` with ``edge_index``.
        num_neighbors: fanout per hop; ``-1`` takes every neighbor.
        input_nodes: the seeds: None (all nodes), an int64 index tensor or a boolean mask.
        replace: sample neighbors with replacement.
        subgraph_type: ``'directional'``, ``'bidirectional'`` or ``'induced'``.
        disjoint: each seed gets its own subgraph; ``batch`` gives each node's seed.
        weight_attr: name of an edge attribute of non-negative weights; neighbors are
            picked with probability proportional to it.
        transform: applied to each ``Data`` batch.
        transform_sampler_output: applied to each :class:`SampledSubgraph` first.
        filter_per_worker: build the ``Data`` batches (gather their features) in the
            worker processes. By default (None, False) workers only sample, and the
            features are gathered in the main process, in the prefetch thread, into
            reused buffers or straight onto ``device``.
        graph: a prebuilt :class:`CSRGraph` of ``data`` to reuse across loaders.
        node_store, edge_store: :class:`~graphbatch.features.FeatureStore` of node and
            edge tables (memory-mapped, half precision, ...); by default the tensor
            attributes of ``data``. Their tables become batch attributes of those names.
        device: where batches arrive; on CUDA, node features are read by the GPU from
            pinned host memory (zero-copy).
        prefetch: batches kept ready by a background thread (0: none, batches are
            built on demand).
        **kwargs: ``torch.utils.data.DataLoader`` arguments (``batch_size``, ``shuffle``,
            ``drop_last``, ``num_workers``, ``persistent_workers``, ``pin_memory``,
            ``generator``, ``sampler``, ...).
    """

    def __init__(
        self,
        data: Data,
        num_neighbors: Sequence[int],
        input_nodes: Union[Tensor, None] = None,
        input_time: Optional[Tensor] = None,
        replace: bool = False,
        subgraph_type: str = "directional",
        disjoint: bool = False,
        temporal_strategy: str = "uniform",
        time_attr: Optional[str] = None,
        weight_attr: Optional[str] = None,
        transform: Optional[Callable] = None,
        transform_sampler_output: Optional[Callable] = None,
        is_sorted: bool = False,
        filter_per_worker: Optional[bool] = None,
        neighbor_sampler: Optional[NeighborSampler] = None,
        directed: bool = True,
        graph: Optional[CSRGraph] = None,
        node_store: Optional[FeatureStore] = None,
        edge_store: Optional[FeatureStore] = None,
        device: Union[str, torch.device, None] = None,
        prefetch: int = 2,
        **kwargs: Any,
    ) -> None:
        if not isinstance(data, Data):
            raise NotImplementedError(
                f"graphbatch.NeighborLoader supports torch_geometric.data.Data, got "
                f"{type(data).__name__} (heterogeneous and remote stores come later)"
            )
        if time_attr is not None or input_time is not None:
            raise NotImplementedError("temporal sampling (time_attr, input_time) is not supported yet")
        if not directed:
            warnings.warn("'directed' is deprecated; use subgraph_type='induced'", DeprecationWarning)
            subgraph_type = "induced"
        del temporal_strategy, is_sorted  # no meaning without time; CSC is built by sorting

        for key in ("dataset", "collate_fn", "batch_sampler"):
            if key in kwargs:
                raise TypeError(f"NeighborLoader does not take '{key}'")
        batch_size = check_positive_int(kwargs.pop("batch_size", 1), "batch_size")
        shuffle = bool(kwargs.pop("shuffle", False))
        drop_last = bool(kwargs.pop("drop_last", False))
        generator = kwargs.get("generator")
        order_sampler = kwargs.pop("sampler", None)

        if neighbor_sampler is None:
            if graph is None:
                graph = CSRGraph.from_data(data)
            elif graph.num_nodes != data.num_nodes or graph.num_edges != data.num_edges:
                raise ValueError(
                    f"graph ({graph}) does not match data (num_nodes={data.num_nodes}, "
                    f"num_edges={data.num_edges})"
                )
            edge_weight = None
            if weight_attr is not None:
                if weight_attr not in data:
                    raise ValueError(f"weight_attr={weight_attr!r} is not an attribute of data")
                edge_weight = data[weight_attr]
            try:
                neighbor_sampler = NeighborSampler(
                    graph, num_neighbors, replace=replace, subgraph_type=subgraph_type,
                    disjoint=disjoint, edge_weight=edge_weight,
                )
            except (TypeError, ValueError) as exc:
                if weight_attr is None or "edge_weight" not in str(exc):
                    raise
                raise type(exc)(f"weight_attr={weight_attr!r}: {exc}") from exc
        self.data = data
        self.neighbor_sampler = neighbor_sampler
        self.input_nodes = resolve_input_nodes(input_nodes, neighbor_sampler.graph.num_nodes)
        self.transform = transform
        self.transform_sampler_output = transform_sampler_output
        self.filter_per_worker = bool(filter_per_worker)
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"prefetch must be an int >= 0, got {prefetch!r}")
        self.prefetch = prefetch
        self.device = torch.device(device) if device is not None else None
        self.node_store = FeatureStore.from_data(data, "node") if node_store is None else node_store
        self.edge_store = FeatureStore.from_data(data, "edge") if edge_store is None else edge_store
        num_nodes = neighbor_sampler.graph.num_nodes
        for name, store, rows in (("node_store", self.node_store, num_nodes),
                                  ("edge_store", self.edge_store, neighbor_sampler.graph.num_edges)):
            if not isinstance(store, FeatureStore):
                raise TypeError(f"{name} must be a FeatureStore, got {type(store).__name__}")
            if store.names and store.num_rows != rows:
                raise ValueError(f"{name} has {store.num_rows} rows, the graph {rows}")
        self.batches = SeededBatches(
            self.input_nodes.numel(), batch_size, shuffle, drop_last, generator, order_sampler
        )

        num_workers = kwargs.get("num_workers", 0)
        if num_workers > 0:
            neighbor_sampler.share_memory_()
            if self.filter_per_worker:
                self.node_store.share_memory_()
                self.edge_store.share_memory_()
            kwargs["worker_init_fn"] = _SingleNumbaThread(kwargs.get("worker_init_fn"))
            if not _numba.FORK_SAFE and kwargs.get("multiprocessing_context") is None:
                kwargs["multiprocessing_context"] = "forkserver"
        super().__init__(
            ItemDataset(), batch_size=None, sampler=self.batches,
            collate_fn=self.collate_fn, **kwargs,
        )

    def collate_fn(self, item: tuple[int, int, Tensor]) -> Any:
        """Samples batch ``item = (epoch_seed, batch_index, positions)``."""
        epoch_seed, batch_index, input_id = item
        seeds = self.input_nodes[input_id]
        out = self.neighbor_sampler.sample_unchecked(seeds, epoch_seed, batch_index)
        if self.transform_sampler_output is not None:
            out = self.transform_sampler_output(out)
        if self.filter_per_worker:
            return self.filter_fn(out, input_id, device=None)
        return out, input_id

    def filter_fn(self, out: SampledSubgraph, input_id: Tensor,
                  device: Optional[torch.device] = None) -> Data:
        """Joins the sampled ids with the graph's attributes into a ``Data`` batch."""
        batch = assemble(self.data, out, self.node_store, self.edge_store, device)
        batch.input_id = input_id if device is None else input_id.to(device)
        batch.batch_size = input_id.numel()
        return batch if self.transform is None else self.transform(batch)

    def _finish(self, sampled: Any) -> Data:
        if self.filter_per_worker:
            return sampled if self.device is None else sampled.to(self.device, non_blocking=True)
        return self.filter_fn(*sampled, device=self.device)

    def __iter__(self):
        self.batches.new_epoch()
        it = super().__iter__()
        if self.prefetch > 0:
            return Prefetcher(it, self._finish, self.prefetch, self.device, len(self))
        return _Mapped(it, self._finish)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_neighbors={self.neighbor_sampler.num_neighbors})"


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
