"""Neighbor sampling across partitions: each hop asks the owners of the frontier's nodes.

:class:`PartitionedNeighborSampler` is the single-machine
:class:`~graphbatch.sampling.neighbor.NeighborSampler`'s hop loop
(:class:`~graphbatch.sampling.neighbor.HopSampler`) with another way to pick a hop's
neighbors. A rank groups its frontier by owner and sends each owner its nodes with
their frontier positions and the batch's key; every owner counts and picks among its
nodes' in-edges with the single-machine kernels' helpers and streams (stream
``(hop, frontier position)`` under the requester's batch key), and sends back the
picked source ids, edge ids and per-node counts, which the requester puts back in
frontier order. The owner's shard keeps every node's in-edges in the global order
(:mod:`graphbatch.distributed.partition`), so a batch is exactly
``NeighborSampler(whole graph).sample(seeds, seed, batch)``: same nodes in the same
order, same edges.

A hop is four collectives (request counts, requests, reply counts, replies) on the
loader's data group, issued by every rank at every hop, whether or not it has anything
to ask: every rank must sample the same number of batches with the same fanouts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from graphbatch.distributed import _partition_kernels as PK
from graphbatch.distributed.exchange import Exchange, ExchangeError
from graphbatch.distributed.partition import GraphShard
from graphbatch.sampling import _neighbor_kernels as K
from graphbatch.sampling.neighbor import HopSampler, check_num_neighbors, pick_offsets
from graphbatch.sampling.plan import BatchPlan
from graphbatch.sampling.subgraph import SampledSubgraph

_I64 = 8  # bytes of an id


@dataclass
class SampleStats:
    """What sampling one batch sent across partitions.

    Attributes:
        requests: frontier nodes whose neighbors were picked, summed over the hops.
        remote: of them, those owned by another rank.
        bytes: bytes of requests and replies exchanged with other ranks (ids, both
            directions; the per-rank count exchanges not included).
    """

    requests: int = 0
    remote: int = 0
    bytes: int = 0


class PartitionedNeighborSampler(HopSampler[SampledSubgraph]):
    """Samples up to ``num_neighbors[h]`` incoming neighbors per node at hop ``h`` from a
    graph partitioned across the ranks; see the module docstring.

    Every rank must call :meth:`sample` the same number of times, in the same order
    with respect to the other collectives of ``exchange``'s group.

    Args:
        shard: this rank's shard.
        num_neighbors: fanout per hop; ``-1`` takes every neighbor.
        exchange: the exchanges (its group's rank must be ``shard.rank``).
        replace: sample with replacement.
        subgraph_type: ``'directional'`` only, for now.
        disjoint: False only, for now.
        edge_weight: None only, for now.
    """

    def __init__(self, shard: GraphShard, num_neighbors: Sequence[int], exchange: Exchange,
                 replace: bool = False, subgraph_type: str = "directional",
                 disjoint: bool = False, edge_weight: Optional[Tensor] = None) -> None:
        if not isinstance(shard, GraphShard):
            raise TypeError(f"shard must be a GraphShard, got {type(shard).__name__}")
        if subgraph_type != "directional":
            raise NotImplementedError(
                f"subgraph_type={subgraph_type!r}: partitioned sampling supports "
                "'directional' only")
        if disjoint:
            raise NotImplementedError("disjoint=True: partitioned sampling supports "
                                      "disjoint=False only")
        if edge_weight is not None:
            raise NotImplementedError("edge_weight: partitioned sampling is unweighted only")
        check_shard_rank(shard, exchange)
        self.num_neighbors = check_num_neighbors(num_neighbors)
        self.exchange = exchange
        # The shard stands in for the graph: the hop loop reads its num_nodes, the
        # global id space its node table is keyed by.
        super().__init__(shard, replace, subgraph_type, disjoint)
        self.num_candidates = shard.in_degree()
        #: Of the last batch sampled (by the one thread that samples).
        self.last_stats = SampleStats()

    @property
    def num_hops(self) -> int:
        return len(self.num_neighbors)

    def share_memory_(self) -> "PartitionedNeighborSampler":
        raise NotImplementedError("partitioned sampling runs in the process that holds the "
                                  "process group; worker processes cannot sample")

    def sample(self, seeds: Union[Tensor, BatchPlan], seed: int = 0, batch: int = 0
               ) -> SampledSubgraph:
        """The subgraph around ``seeds`` ([B] int64 global node ids, any owner) or a
        loader's plan, as :meth:`HopSampler.sample
        <graphbatch.sampling.neighbor.HopSampler.sample>`. A collective;
        :attr:`last_stats` then tells what it exchanged."""
        self.last_stats = SampleStats()
        return super().sample(seeds, seed, batch)

    def sample_unchecked(self, seeds: Tensor, seed: int, batch: int) -> SampledSubgraph:
        self._batch = batch  # sent with each hop's requests, to catch ranks out of step
        return super().sample_unchecked(seeds, seed, batch)

    def _pick_hop(self, hop: int, frontier: np.ndarray, key: int, first_local: int,
                  tree: np.ndarray, stride: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """See :meth:`HopSampler._pick_hop`; picks by the frontier nodes' owners."""
        ex = self.exchange
        world = ex.world_size
        owner = self.graph.book.part.numpy()[frontier]
        order = np.argsort(owner, kind="stable")  # frontier positions grouped by owner
        send_counts = np.bincount(owner, minlength=world).astype(np.int64)
        header = np.empty((world, 4), dtype=np.int64)
        header[:, 0], header[:, 1], header[:, 2], header[:, 3] = send_counts, key, hop, self._batch
        got = ex.counts(header, f"hop {hop}'s request counts")
        behind = (got[:, 2] != hop) | (got[:, 3] != self._batch)
        if behind.any():
            s = int(np.flatnonzero(behind)[0])
            raise ExchangeError(f"rank {ex.rank}: rank {s} sent the requests of batch "
                                f"{int(got[s, 3])}, hop {int(got[s, 2])} with those of batch "
                                f"{self._batch}, hop {hop}; the ranks are out of lockstep")
        recv_counts = got[:, 0].copy()
        requests = np.stack([frontier[order], order])  # [2, f]: node, frontier position
        recv = ex.rows(torch.from_numpy(requests.T.copy()), send_counts, recv_counts,
                       f"hop {hop}'s requests").numpy()
        reply, reply_sizes = self._answer(hop, recv, recv_counts, got[:, 1])
        reply_counts = ex.counts(reply_sizes[:, None], f"hop {hop}'s reply sizes")[:, 0].copy()
        answers = ex.rows(torch.from_numpy(reply), reply_sizes, reply_counts,
                          f"hop {hop}'s replies").numpy()
        self._count(send_counts, recv_counts, reply_sizes, reply_counts)
        return self._reassemble(frontier.shape[0], first_local, order, send_counts,
                                reply_counts, answers)

    def _answer(self, hop: int, requests: np.ndarray, recv_counts: np.ndarray,
                keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The owner's side of a hop. ``requests`` ([R, 2] int64: owned node, the
        requester's frontier position) holds ``recv_counts[s]`` requests from each rank
        ``s``, whose batch key is ``keys[s]``. Returns the reply, [sum] int64, to rank
        ``s`` in turn ``counts (its requests') + picked sources + edge ids``, and
        ``[world_size]`` int64 each reply's size."""
        local = self.graph.local_index(requests[:, 0])
        counts = np.empty(local.shape[0], dtype=np.int64)
        fanout = self.num_neighbors[hop]
        K.count_picks(self.num_candidates.numpy(), local, fanout, self.replace, counts)
        offsets = pick_offsets(counts)
        pos = np.empty(int(offsets[-1]), dtype=np.int64)
        PK.pick_requests(self.graph.indptr.numpy(), local, offsets, fanout, self.replace,
                         np.repeat(keys, recv_counts), requests[:, 1].copy(), hop, pos)
        nbr, edge = self.graph.indices.numpy()[pos], self.graph.perm.numpy()[pos]
        bounds = pick_offsets(recv_counts)
        parts, sizes = [], np.empty(recv_counts.shape[0], dtype=np.int64)
        for s in range(recv_counts.shape[0]):
            lo, hi = bounds[s], bounds[s + 1]
            picks = slice(offsets[lo], offsets[hi])
            parts += [counts[lo:hi], nbr[picks], edge[picks]]
            sizes[s] = (hi - lo) + 2 * (offsets[hi] - offsets[lo])
        return np.concatenate(parts), sizes

    def _reassemble(self, f: int, first_local: int, order: np.ndarray,
                    send_counts: np.ndarray, reply_counts: np.ndarray, answers: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The requester's side: the owners' replies (``answers``, ``reply_counts[r]``
        int64 from each rank ``r``, for the ``send_counts[r]`` frontier positions
        ``order`` sent it) as ``(nbr, nbr_key, edge, dst)`` in frontier order."""
        counts_by_owner, nbr_by_owner, edge_by_owner = [], [], []
        start = 0
        for n, size in zip(send_counts.tolist(), reply_counts.tolist()):
            m = (size - n) // 2
            counts_by_owner.append(answers[start:start + n])
            nbr_by_owner.append(answers[start + n:start + n + m])
            edge_by_owner.append(answers[start + n + m:start + size])
            start += size
        sorted_counts = np.concatenate(counts_by_owner)
        counts = np.empty(f, dtype=np.int64)
        counts[order] = sorted_counts
        offsets = pick_offsets(counts)
        m = int(offsets[-1])
        nbr, edge = np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int64)
        PK.scatter_segments(np.concatenate(nbr_by_owner), np.concatenate(edge_by_owner),
                            pick_offsets(sorted_counts), order, offsets, nbr, edge)
        dst = np.repeat(np.arange(first_local, first_local + f, dtype=np.int64), counts)
        # Not disjoint: a node's dedup key is its id.
        return nbr, nbr, edge, dst

    def _count(self, send_counts: np.ndarray, recv_counts: np.ndarray,
               reply_sizes: np.ndarray, reply_counts: np.ndarray) -> None:
        """Adds a hop's requests and its bytes to and from other ranks to :attr:`last_stats`."""
        me = self.exchange.rank
        others = np.arange(send_counts.shape[0]) != me
        stats = self.last_stats
        stats.requests += int(send_counts.sum())
        stats.remote += int(send_counts[others].sum())
        ids = 2 * (send_counts[others].sum() + recv_counts[others].sum())
        stats.bytes += _I64 * int(ids + reply_sizes[others].sum() + reply_counts[others].sum())

    def _finish(self, nodes: np.ndarray, tree: np.ndarray, num_sampled_nodes: list[int],
                edge_index: np.ndarray, edge: np.ndarray,
                num_sampled_edges: Optional[list[int]]) -> SampledSubgraph:
        return SampledSubgraph.from_arrays(nodes, edge_index, edge,
                                           num_sampled_nodes=num_sampled_nodes,
                                           num_sampled_edges=num_sampled_edges)


def check_shard_rank(shard: GraphShard, exchange: Exchange) -> None:
    """Raises ValueError unless ``shard`` is the part of ``exchange``'s rank, among as
    many parts as ranks."""
    if shard.num_parts != exchange.world_size:
        raise ValueError(f"the shard is one of {shard.num_parts} parts, but there are "
                         f"{exchange.world_size} ranks; partition into one part per rank")
    if shard.rank != exchange.rank:
        raise ValueError(f"rank {exchange.rank} holds the shard of part {shard.rank}; "
                         f"every rank must load its own part (load_shard(root, rank))")
