"""Scale-out on ``torch.distributed``.

One machine, many processes (data parallel): every loader takes ``distributed=True``
and then its rank's share of each epoch (:mod:`graphbatch.ranks`); the graph and its
tables exist once per machine (:func:`shared_graph`). Many machines: the graph is
partitioned, each rank holds one partition, and sampling and feature fetching cross
partitions with collectives.
"""
from graphbatch.distributed.machine import SharedGraph, shared_graph
from graphbatch.ranks import RankShare

__all__ = ["RankShare", "SharedGraph", "shared_graph"]
