"""Scale-out on ``torch.distributed``.

One machine, many processes (data parallel): every loader takes ``distributed=True``
and then its rank's share of each epoch (:class:`~graphbatch.ranks.RankShare`); the
graph and its tables exist once per machine (:func:`shared_graph`).

Many machines: the graph is partitioned (:func:`partition_graph`, METIS or random),
each rank holds one partition (:func:`save_shards`, :func:`load_shard`), and
:class:`DistNeighborLoader` samples across partitions and fetches remote feature rows
with all-to-all collectives (:mod:`graphbatch.distributed.exchange` says why not RPC),
keeping a cache of the remote rows most often needed.
"""
from graphbatch.distributed.exchange import Exchange, ExchangeError, data_group
from graphbatch.distributed.machine import SharedGraph, load_graph, save_graph, shared_graph
from graphbatch.distributed.partition import (
    GraphShard, PartitionBook, load_shard, make_shard, partition_graph, save_shards,
)
from graphbatch.distributed.partitioned_loader import BatchStats, DistNeighborLoader, split_inputs
from graphbatch.distributed.partitioned_sampler import PartitionedNeighborSampler, SampleStats
from graphbatch.distributed.remote_features import FetchStats, PartitionedFeatures
from graphbatch.ranks import RankShare

__all__ = [
    "BatchStats", "DistNeighborLoader", "Exchange", "ExchangeError", "FetchStats", "GraphShard",
    "PartitionBook", "PartitionedFeatures", "PartitionedNeighborSampler", "RankShare",
    "SampleStats", "SharedGraph", "data_group", "load_graph", "load_shard", "make_shard",
    "partition_graph", "save_graph", "save_shards", "shared_graph", "split_inputs",
]
