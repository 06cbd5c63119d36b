"""Node feature rows of a partitioned graph: owned rows read here, others fetched.

:class:`PartitionedFeatures` gathers any global node ids, as the
:class:`~graphbatch.features.FeatureStore` interface the loaders use: a row this rank
owns is read from its shard, a row in the cache from the cache, and the rest are
fetched from their owners in one exchange per batch (ids out, rows back, every table's
row packed as bytes into one message).

**Cache.** Filled once, when the store is made, with the remote nodes that have the
most edges into this partition (the halo frequency): an in-edge from a remote node is
a way for every sampled owned node to reach it, so these are the rows a batch is most
likely to need (SALIENT++ ranks by expected access computed by simulating the sampler;
the edge count is its one-hop, sampler-free proxy, and needs no sampling before
training). A static cache costs no bookkeeping per batch and never goes stale (the
rows are read-only features); ``cache_rows`` bounds its memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from graphbatch._validate import as_int
from graphbatch.distributed.exchange import Exchange
from graphbatch.distributed.partition import GraphShard
from graphbatch.distributed.partitioned_sampler import check_shard_rank
from graphbatch.features.elsewhere import RowsElsewhere

_I64 = 8  # bytes of an id


@dataclass
class FetchStats:
    """Where the rows of one gather came from.

    Attributes:
        nodes: rows gathered (``local + cached + fetched``).
        local: owned by this rank.
        cached: owned elsewhere, found in the cache.
        fetched: fetched from their owners.
        bytes: feature bytes received from other ranks (``fetched`` rows of every table).
        id_bytes: id bytes sent to other ranks (8 per fetched row).
    """

    nodes: int = 0
    local: int = 0
    cached: int = 0
    fetched: int = 0
    bytes: int = 0
    id_bytes: int = 0


def halo_frequency(shard: GraphShard) -> tuple[np.ndarray, np.ndarray]:
    """The remote nodes with an edge into ``shard``'s nodes, most edges first (ties by
    id): ``(nodes, edges)``, ``[h]`` int64 each."""
    src = shard.indices.numpy()
    remote = src[shard.book.part.numpy()[src] != shard.rank]
    nodes, edges = np.unique(remote, return_counts=True)
    order = np.argsort(-edges, kind="stable")
    return nodes[order], edges[order]


class PartitionedFeatures(RowsElsewhere):
    """The node tables of a partitioned graph, gathered by global id; see the module
    docstring. ``gather_all`` is a collective: every rank must call it, once per batch,
    in the same order (:class:`~graphbatch.distributed.partitioned_loader.DistNeighborLoader`
    does); ``gather`` is one too.

    Args:
        shard: this rank's shard, whose ``tables`` are served.
        exchange: the exchanges (its group's rank must be ``shard.rank``).
        cache_rows: remote rows to cache (0: none), chosen by :func:`halo_frequency`.
            Filled here, with one exchange: a collective.
        names: the shard's tables to serve (default: all; the same on every rank), so
            that tables batches do not need (split masks, say) are never fetched.
    """

    def __init__(self, shard: GraphShard, exchange: Exchange, cache_rows: int = 0,
                 names: Optional[Sequence[str]] = None) -> None:
        check_shard_rank(shard, exchange)
        cache_rows = as_int(cache_rows, "cache_rows")
        if cache_rows < 0:
            raise ValueError(f"cache_rows must be >= 0, got {cache_rows}")
        names = list(shard.tables) if names is None else list(names)
        for name in names:
            if name not in shard.tables:
                raise KeyError(f"names: no table {name!r}; the shard holds {list(shard.tables)}")
        self.shard = shard
        self.exchange = exchange
        self.num_rows = shard.num_nodes
        self._names = names
        self._local = {name: shard.tables[name].contiguous() for name in names}
        # Each table's row as bytes, so one message carries every table's rows.
        self._row_elems = [int(np.prod(t.shape[1:], dtype=np.int64))
                           for t in self._local.values()]
        self._row_bytes = [n * t.element_size()
                           for n, t in zip(self._row_elems, self._local.values())]
        self.row_bytes = sum(self._row_bytes)
        candidates = halo_frequency(shard)[0][:cache_rows]
        self.cache_nodes = np.sort(candidates)
        self._cache = self._fetch(self.cache_nodes, "the cache's rows")
        #: Of the last gather (by the one thread that gathers).
        self.last_stats = FetchStats()

    def __getitem__(self, name: str) -> Tensor:
        raise NotImplementedError(
            f"table {name!r} is partitioned across the ranks: gather rows by id instead")

    def __repr__(self) -> str:
        return (f"PartitionedFeatures(rank={self.shard.rank}, num_rows={self.num_rows}, "
                f"names={self._names}, cache_rows={self.cache_nodes.shape[0]})")

    def __getstate__(self) -> dict:
        raise TypeError("PartitionedFeatures holds a process group; it cannot be pickled "
                        "(worker processes cannot fetch rows)")

    def gather_all(self, index: Tensor, device: Optional[torch.device] = None,
                   names: Optional[list[str]] = None) -> dict[str, Tensor]:
        """Rows ``index`` ([n] int64 global node ids, in range) of tables ``names``
        (default: all), each ``[n, ...]`` in the table's dtype; a collective, after
        which :attr:`last_stats` tells where the rows came from."""
        names = self._names if names is None else names
        ids = index.numpy()
        owner = self.shard.book.part.numpy()[ids]
        is_local = owner == self.shard.rank
        slot = np.searchsorted(self.cache_nodes, ids)
        in_cache = ~is_local & (slot < self.cache_nodes.shape[0])
        in_cache[in_cache] = self.cache_nodes[slot[in_cache]] == ids[in_cache]
        missing = ~(is_local | in_cache)
        fetched = self._fetch(ids[missing], "feature rows")
        stats = FetchStats(ids.shape[0], int(is_local.sum()), int(in_cache.sum()),
                           int(missing.sum()))
        stats.bytes = stats.fetched * self.row_bytes
        stats.id_bytes = stats.fetched * _I64
        self.last_stats = stats
        local_rows = torch.from_numpy(self.shard.local_index(ids[is_local]))
        cache_rows = torch.from_numpy(slot[in_cache])
        where = [torch.from_numpy(m) for m in (is_local, in_cache, missing)]
        out = {}
        for name in names:
            table = self._local[name]
            rows = torch.empty((ids.shape[0], *table.shape[1:]), dtype=table.dtype)
            rows[where[0]] = table[local_rows]
            rows[where[1]] = self._cache[name][cache_rows]
            rows[where[2]] = fetched[name]
            out[name] = rows if device is None else rows.to(device, non_blocking=True)
        return out

    def _fetch(self, ids: np.ndarray, what: str) -> dict[str, Tensor]:
        """Rows of remote nodes ``ids`` ([k] int64, none owned here) from their owners,
        every table, by name: one exchange of ids, one of rows (a collective)."""
        ex = self.exchange
        owner = self.shard.book.part.numpy()[ids]
        order = np.argsort(owner, kind="stable")
        send_counts = np.bincount(owner, minlength=ex.world_size).astype(np.int64)
        recv_counts = ex.counts(send_counts[:, None], f"{what}: id counts")[:, 0].copy()
        asked = ex.rows(torch.from_numpy(ids[order]), send_counts, recv_counts,
                        f"{what}: ids").numpy()
        local = torch.from_numpy(self.shard.local_index(asked))
        packed = torch.cat([torch.empty((local.shape[0], 0), dtype=torch.uint8)] + [
            table[local].reshape(local.shape[0], n).view(torch.uint8)
            for table, n in zip(self._local.values(), self._row_elems)], dim=1)
        # Replies: as many rows back as ids came (sizes known to both sides).
        got = ex.rows(packed, recv_counts, send_counts, f"{what}: rows")
        del packed
        # Each table's bytes, back in the order of ids, one table at a time: one copy
        # of the reply at most besides it.
        back = torch.empty(order.shape[0], dtype=torch.int64)
        back[torch.from_numpy(order)] = torch.arange(order.shape[0])
        out, start = {}, 0
        for (name, table), nbytes in zip(self._local.items(), self._row_bytes):
            part = got[:, start:start + nbytes][back].view(table.dtype)
            out[name] = part.view(ids.shape[0], *table.shape[1:])
            start += nbytes
        return out
