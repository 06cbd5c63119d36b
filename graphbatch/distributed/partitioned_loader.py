"""``DistNeighborLoader``: neighbor-sampled mini-batches of a graph partitioned across
machines, one rank per part.

Every rank runs its own loader over its shard
(:mod:`graphbatch.distributed.partition`); a batch is sampled across partitions
(:mod:`graphbatch.distributed.partitioned_sampler`) and its feature rows gathered
across them (:mod:`graphbatch.distributed.remote_features`), with collectives on one
data group (:mod:`graphbatch.distributed.exchange`). Batches are plain PyG ``Data``,
the single-machine :class:`~graphbatch.loader.neighbor_loader.NeighborLoader`'s.

**Lockstep.** Every rank must issue the same collectives in the same order, so:

- every rank runs the same number of batches: the training inputs are split evenly
  (padded to equal sizes), each rank keeping its own part's inputs first
  (:func:`split_inputs`, as DGL's ``node_split(force_even=True)``), and the batch
  counts (and the inputs, fanouts and graph) are compared across ranks when the
  loader is made, which raises on every rank, naming each rank's values, if they
  differ;
- collectives come from one thread per rank, in batch order: batches are made by at
  most one prefetch thread, never by DataLoader worker processes (``num_workers > 0``
  and ``pin_memory`` are refused);
- every rank consumes as many batches of an epoch: ranks may all leave an epoch after
  the same batch (``break``, ``next(iter(loader))``), as the prefetch thread then
  makes every batch it could have made ahead, on every rank alike, before it stops;
  a rank leaving alone stops calling collectives, and its peers end theirs with an
  error when the timeout runs out;
- a batch that fails on a rank (an exchange error, or any other) stops that rank's
  exchanges for good (:meth:`Exchange.guard <graphbatch.distributed.exchange.Exchange.guard>`),
  and reaches the training loop as the exception, raised by ``next``.

**No hangs.** A rank killed closes its connections, on which gloo raises at once in
every peer; a rank that raised and left its loop stops calling collectives, and its
peers raise when the data group's timeout (the default group's, unless given) runs
out, or earlier, when its process exits. Either way every rank ends with an
:class:`~graphbatch.distributed.exchange.ExchangeError` naming the failed step.

**Same seed, same batches.** A batch is a function of its seeds and ``(epoch seed,
batch index)`` alone, as on one machine: the seeds' owners pick with the requester's
batch key.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch_geometric.data import Data

from graphbatch._validate import as_index_tensor, check_positive_int
from graphbatch import ranks
from graphbatch.cache import digest
from graphbatch.distributed.exchange import Exchange, data_group
from graphbatch.distributed.partition import GraphShard
from graphbatch.distributed.partitioned_sampler import PartitionedNeighborSampler, SampleStats
from graphbatch.distributed.remote_features import FetchStats, PartitionedFeatures
from graphbatch.loader.batches import SeededBatches
from graphbatch.loader.inputs import resolve_input_nodes
from graphbatch.loader.neighbor_loader import NeighborLoader
from graphbatch.sampling.plan import BatchPlan
from graphbatch.sampling.subgraph import SampledSubgraph

#: DataLoader arguments a partitioned loader cannot honour, and why.
_REFUSED = {
    "num_workers": "worker processes cannot join the process group's collectives",
    "pin_memory": "the DataLoader's pinning thread would gather (a collective) beside "
                  "the sampling thread",
    "sampler": "the inputs are split among the ranks by the loader itself",
    "batch_sampler": "the inputs are split among the ranks by the loader itself",
    "filter_per_worker": "batches are always made whole, in one thread",
}


def split_inputs(inputs: Tensor, part: Tensor, rank: int, world_size: int) -> Tensor:
    """This rank's share of ``inputs`` ([n] int64 node ids, the same on every rank):
    ``[ceil(n / world_size)]`` int64 positions in ``inputs``. The first ``n %
    world_size`` ranks get one input more than the others, which then repeat their
    first one (as ``DistributedSampler`` pads), so every rank runs as many batches.
    A rank takes the inputs its part owns (``part``, [N] int64 owner of every node)
    first, up to its size; the surplus of the others, pooled in rank order, fills the
    ranks short of their size, in rank order. Every rank computes every rank's share
    alike, so the shares are disjoint (but for the repeats) and cover ``inputs``."""
    n = inputs.numel()
    sizes = np.full(world_size, n // world_size, dtype=np.int64)
    sizes[:n % world_size] += 1
    owner = part[inputs].numpy()
    own = [np.flatnonzero(owner == r) for r in range(world_size)]
    kept = [o[:s] for o, s in zip(own, sizes)]
    pool = np.concatenate([o[s:] for o, s in zip(own, sizes)])
    short = np.concatenate([[0], np.cumsum(sizes - [k.shape[0] for k in kept])])
    mine = np.sort(np.concatenate([kept[rank], pool[short[rank]:short[rank + 1]]]))
    if mine.shape[0] < -(-n // world_size):
        # Fewer inputs than ranks leave some ranks none of their own to repeat.
        mine = np.append(mine, mine[0] if mine.shape[0] else rank % n)
    return torch.from_numpy(mine)


@dataclass
class BatchStats:
    """Where one batch's work went: its sampling (:class:`SampleStats`) and its feature
    rows (:class:`FetchStats`)."""

    index: int
    sample: SampleStats
    fetch: FetchStats


class DistNeighborLoader(NeighborLoader):
    """Neighbor-sampled batches of a partitioned graph; see the module docstring. A
    collective to make (and to iterate): every rank makes its loader with the same
    arguments but its own shard, in the same order.

    Batches are those of ``NeighborLoader(whole graph, num_neighbors, ...)`` for the
    same seeds and epoch seed: ``x`` (and every node table of the shards) sliced by
    ``n_id``, ``edge_index`` in local ids (messages flow row 0 -> row 1), ``n_id``,
    ``e_id``, ``input_id``, ``batch_size``, ``num_sampled_nodes``,
    ``num_sampled_edges``. Edge attributes are not carried.

    Args:
        shard: this rank's shard (its ``rank`` must be this process's rank).
        num_neighbors: fanout per hop; ``-1`` takes every neighbor.
        input_nodes: the training seeds of the whole graph, the same on every rank:
            None (all nodes), global node ids, or a ``[N]`` boolean mask. Each rank
            takes its share (:func:`split_inputs`).
        replace: sample neighbors with replacement.
        subgraph_type: ``'directional'`` only, for now.
        disjoint: False only, for now.
        cache_rows: remote feature rows each rank caches (see
            :class:`~graphbatch.distributed.remote_features.PartitionedFeatures`).
        node_tables: the shard's node tables batches carry (default: all).
        group: the process group of the exchanges (default: a new gloo group, made
            here; see :func:`~graphbatch.distributed.exchange.data_group`). Loaders
            may share one, if they are iterated one at a time.
        timeout: how long an exchange waits for the other ranks, for the group made
            here (default: the default group's timeout).
        transform: applied to each ``Data`` batch.
        transform_sampler_output: applied to each sampled subgraph first.
        device: where batches arrive.
        prefetch: batches kept ready by the one prefetch thread (0: made on demand,
            in the calling thread).
        prefetch_threads: 1 (collectives must come from one thread).
        **kwargs: ``batch_size``, ``shuffle``, ``drop_last``, ``generator``, PyG's
            ``input_id`` (one per input node) and other ``DataLoader`` arguments, but
            ``num_workers > 0``, ``pin_memory``, ``sampler``.

    Attributes:
        stats: a :class:`BatchStats` per batch of the current (or last) epoch, in
            batch order, appended as batches are made (up to ``prefetch`` ahead of
            those consumed); :meth:`locality` sums them up.
    """

    def __init__(
        self,
        shard: GraphShard,
        num_neighbors: Sequence[int],
        input_nodes: Union[Tensor, None] = None,
        replace: bool = False,
        subgraph_type: str = "directional",
        disjoint: bool = False,
        cache_rows: int = 0,
        node_tables: Optional[Sequence[str]] = None,
        group: Optional[dist.ProcessGroup] = None,
        timeout: Optional[timedelta] = None,
        transform: Optional[Callable] = None,
        transform_sampler_output: Optional[Callable] = None,
        device: Union[str, torch.device, None] = None,
        prefetch: int = 2,
        prefetch_threads: int = 1,
        **kwargs: Any,
    ) -> None:
        for key, why in _REFUSED.items():
            if kwargs.get(key):
                raise ValueError(f"DistNeighborLoader does not take {key}={kwargs[key]!r}: "
                                 f"{why}")
            kwargs.pop(key, None)
        if prefetch_threads != 1:
            raise ValueError(f"prefetch_threads must be 1, got {prefetch_threads!r}: the "
                             "exchanges of consecutive batches must come from one thread")
        if not isinstance(shard, GraphShard):
            raise TypeError(f"shard must be a GraphShard, got {type(shard).__name__}")
        if group is not None and timeout is not None:
            raise ValueError("timeout applies to the group made here; give group or timeout")
        # Everything that can be checked alone is checked before the first collective:
        # a rank raising after it would leave the others waiting for the timeout.
        self.shard = shard
        every = resolve_input_nodes(input_nodes, shard.num_nodes)
        share = split_inputs(every, shard.book.part, shard.rank, shard.num_parts)
        self.input_nodes = every[share]
        self.input_id = self._input_ids(kwargs.pop("input_id", None), every, share,
                                        isinstance(input_nodes, Tensor)
                                        and input_nodes.dtype == torch.bool)
        tables = list(shard.tables) if node_tables is None else list(node_tables)
        if group is None:
            group = data_group(timeout)
        self.exchange = Exchange(group)
        self.neighbor_sampler = PartitionedNeighborSampler(
            shard, num_neighbors, self.exchange, replace, subgraph_type, disjoint)
        # The shares differ by rank (each keeps its own part's inputs), so they are not
        # dealt out again; the epochs are drawn as distributed=True draws them.
        batches = SeededBatches(
            self.input_nodes.numel(),
            batch_size=check_positive_int(kwargs.pop("batch_size", 1), "batch_size"),
            shuffle=bool(kwargs.pop("shuffle", False)),
            drop_last=bool(kwargs.pop("drop_last", False)),
            generator=kwargs.get("generator"), inputs=self.input_nodes,
            share=ranks.RankShare(shard.rank, shard.num_parts,
                                  ranks.common_seed(kwargs.get("generator"), group),
                                  deal=False))
        self._check_lockstep(every, batches, tables)
        store = PartitionedFeatures(shard, self.exchange, cache_rows, tables)
        self.stats: list[BatchStats] = []
        skeleton = Data(num_nodes=shard.num_nodes)
        self._start(skeleton, batches, transform=transform,
                    transform_sampler_output=transform_sampler_output, node_store=store,
                    device=device, prefetch=prefetch, prefetch_threads=1, **kwargs)

    @staticmethod
    def _input_ids(input_id: Any, every: Tensor, share: Tensor, mask: bool
                   ) -> Optional[Tensor]:
        """What this rank's batches report as ``input_id``: ``input_id``'s entries, the
        node ids for a mask, else the positions in the whole input list (as PyG's
        loader on the whole graph would)."""
        if input_id is None:
            return every[share] if mask else share
        input_id = as_index_tensor(input_id, "input_id")
        if input_id.numel() != every.numel():
            raise ValueError(f"input_id must hold one id per input node "
                             f"({every.numel()}), got {input_id.numel()}")
        return input_id[share]

    def _check_lockstep(self, every: Tensor, batches: SeededBatches, tables: list[str]
                        ) -> None:
        """Raises ValueError on every rank unless all ranks run the same batches of the
        same sampling on the same graph and inputs (a collective)."""
        sampler = self.neighbor_sampler
        ranks.agree("DistNeighborLoader: every rank runs the same batches in lockstep", {
            "batches": len(batches),
            "batch_size": batches.batch_size,
            "inputs": digest(every.numpy()),
            "num_neighbors": sampler.num_neighbors,
            "replace": sampler.replace,
            "num_nodes": self.shard.num_nodes,
            "partition_book": digest(self.shard.book.part.numpy()),
            # The rows of every table travel packed in one message, unpacked by layout.
            "node_tables": [(n, str(self.shard.tables[n].dtype),
                             tuple(self.shard.tables[n].shape[1:]))
                            if n in self.shard.tables else (n, None, None) for n in tables],
        }, group=self.exchange.group)

    #: Making a batch is a collective: a prefetcher stopped early still makes the
    #: batches it could have made ahead (:class:`~graphbatch.loader.prefetch.Prefetcher`).
    lockstep = True

    def collate_fn(self, plan: BatchPlan) -> Any:
        with self.exchange.guard():
            return super().collate_fn(plan)

    def filter_fn(self, out: SampledSubgraph, plan: BatchPlan,
                  device: Optional[torch.device] = None) -> Data:
        with self.exchange.guard():
            return super().filter_fn(out, plan, device)

    def decorate(self, batch: Data, out: SampledSubgraph, plan: BatchPlan,
                 device: Optional[torch.device]) -> None:
        super().decorate(batch, out, plan, device)
        # Right after the batch's sampling and gather, in the one thread making batches.
        self.stats.append(BatchStats(plan.index, self.neighbor_sampler.last_stats,
                                     self.node_store.last_stats))

    def __iter__(self):
        self.stats = []
        return super().__iter__()

    def locality(self) -> dict[str, float]:
        """Totals of :attr:`stats` (the batches made so far this epoch) as shares and
        per-batch means: ``local_share``, ``cached_share``, ``fetched_share`` (of the
        batches' nodes), ``fetched_bytes_per_batch`` (feature bytes received),
        ``sample_remote_share`` (of the frontier nodes sampled, those owned elsewhere),
        ``sample_bytes_per_batch`` (ids exchanged for sampling) and ``batches``."""
        if not self.stats:
            raise ValueError("no batch made yet: iterate the loader first")
        total = {f"fetch_{k}": sum(asdict(s.fetch)[k] for s in self.stats)
                 for k in asdict(FetchStats())}
        total.update({f"sample_{k}": sum(asdict(s.sample)[k] for s in self.stats)
                      for k in asdict(SampleStats())})
        n = len(self.stats)
        nodes = max(total["fetch_nodes"], 1)
        return {
            "batches": n,
            "nodes_per_batch": total["fetch_nodes"] / n,
            "local_share": total["fetch_local"] / nodes,
            "cached_share": total["fetch_cached"] / nodes,
            "fetched_share": total["fetch_fetched"] / nodes,
            "fetched_bytes_per_batch": total["fetch_bytes"] / n,
            "sample_remote_share": total["sample_remote"] / max(total["sample_requests"], 1),
            "sample_bytes_per_batch": total["sample_bytes"] / n,
        }

    def __repr__(self) -> str:
        return (f"DistNeighborLoader(rank={self.shard.rank}/{self.shard.num_parts}, "
                f"num_neighbors={self.neighbor_sampler.num_neighbors})")
