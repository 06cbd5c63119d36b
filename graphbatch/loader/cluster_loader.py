"""Cluster-GCN: drop-ins for ``torch_geometric.loader.ClusterData`` and ``ClusterLoader``."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.index import ptr2index
from torch_geometric.utils import narrow, select

from graphbatch import ranks
from graphbatch._validate import as_int
from graphbatch.cache import cached, digest, graph_digest
from graphbatch.graph import CSCGraph
from graphbatch.loader.base import BatchLoader, check_data, graph_of
from graphbatch.loader.batches import SeededBatches
from graphbatch.sampling.cluster import (
    ClusterSampler, Partition, check_num_parts, metis_partition, positive_int_weights,
)


class ClusterData(torch.utils.data.Dataset):
    """A METIS partition of ``data`` into ``num_parts`` clusters (computed with
    ``pymetis``; no pyg-lib or torch-sparse needed), with PyG's public attributes.

    As in PyG: ``partition`` holds ``partptr``, ``node_perm``, ``indptr``, ``index``,
    ``edge_perm`` and ``sparse_format`` (and ``part``, each node's cluster); ``data`` is
    the graph permuted by cluster, without ``edge_index`` (node attributes ordered by
    ``node_perm``, so cluster ``i`` is rows ``partptr[i]:partptr[i + 1]``, edge
    attributes by ``edge_perm``); ``cluster_data[i]`` is cluster ``i`` sliced from it.
    ``data`` and ``partition``'s ``indptr``, ``index`` and ``edge_perm`` are built on
    first access: :class:`ClusterLoader` batches do not need them, and index
    ``original_data``, the graph as given, through ``n_id`` and ``e_id``.

    Args:
        data: the graph, a ``torch_geometric.data.Data`` with ``edge_index``.
        num_parts: clusters, from 1 to the number of nodes.
        recursive: recursive bisection instead of k-way partitioning.
        save_dir, filename: cache the partition in ``save_dir/filename`` (default
            ``part_{num_parts}[_recursive]/metis.pt``), keyed by graph and parameters; a
            corrupted or mismatched file is recomputed.
        log: report while METIS runs on a large graph.
        keep_inter_cluster_edges: ``cluster_data[i]`` keeps the edges between cluster
            ``i`` and other clusters, their other endpoint as an id of the permuted
            graph (as in PyG). :class:`ClusterLoader` batches are the same either way.
        sparse_format: ``'csr'`` or ``'csc'``: ``partition.indptr`` runs over sources
            or targets, and with ``keep_inter_cluster_edges`` ``cluster_data[i]`` keeps
            the edges out of or into the cluster.
        node_weight, edge_weight: optional positive integer weights for METIS.
        graph: a prebuilt :class:`CSCGraph` of ``data``.
        distributed: under ``torch.distributed``, rank 0 alone partitions (or reads
            the cache) and sends the partition to every rank.
    """

    def __init__(
        self,
        data: Data,
        num_parts: int,
        recursive: bool = False,
        save_dir: Optional[str] = None,
        filename: Optional[str] = None,
        log: bool = True,
        keep_inter_cluster_edges: bool = False,
        sparse_format: str = "csr",
        node_weight: Optional[Tensor] = None,
        edge_weight: Optional[Tensor] = None,
        graph: Optional[CSCGraph] = None,
        distributed: bool = False,
    ) -> None:
        check_data(data, "ClusterData")
        if sparse_format not in ("csr", "csc"):
            raise ValueError(f"sparse_format must be 'csr' or 'csc', got {sparse_format!r}")
        self.graph = graph_of(data, graph)
        num_parts = check_num_parts(num_parts, self.graph.num_nodes)
        for name, weight, size in (("node_weight", node_weight, self.graph.num_nodes),
                                   ("edge_weight", edge_weight, self.graph.num_edges)):
            positive_int_weights(weight, size, name)
        self.original_data = data
        self.num_parts = num_parts
        self.recursive = bool(recursive)
        self.keep_inter_cluster_edges = bool(keep_inter_cluster_edges)
        self.sparse_format = sparse_format
        self._data: Optional[Data] = None

        def compute() -> dict:
            part = metis_partition(self.graph, num_parts, recursive, node_weight, edge_weight, log)
            return {"part": part}

        def check(t: dict) -> bool:
            part = t["part"]
            return (part.shape == (self.graph.num_nodes,) and part.dtype == torch.int64
                    and (part.numel() == 0 or (int(part.min()) >= 0 and int(part.max()) < num_parts)))

        def partition() -> Tensor:
            if save_dir is None:
                return compute()["part"]
            folder = f"part_{num_parts}{'_recursive' if recursive else ''}"
            path = Path(save_dir) / folder / (filename or "metis.pt")
            key = {"graph": graph_digest(self.graph), "num_parts": num_parts,
                   "recursive": self.recursive,
                   "node_weight": None if node_weight is None else digest(node_weight.numpy()),
                   "edge_weight": None if edge_weight is None else digest(edge_weight.numpy())}
            return cached(path, key, compute, check, "METIS partition")["part"]

        part = ranks.on_rank_zero(partition) if distributed else partition()
        self.partition = Partition.from_parts(part, num_parts, data.edge_index, sparse_format)
        self.sampler = ClusterSampler(self.graph, self.partition)

    @property
    def data(self) -> Data:
        """``original_data`` permuted by cluster, as PyG's ``ClusterData.data``: node
        attributes indexed by ``partition.node_perm``, edge attributes by
        ``partition.edge_perm``, no ``edge_index`` (``partition`` holds it)."""
        if self._data is None:
            data, p = self.original_data, self.partition
            out = copy.copy(data)
            for key, value in data.items():
                if key == "edge_index":
                    continue
                if data.is_node_attr(key):
                    out[key] = select(value, p.node_perm, data.__cat_dim__(key, value))
                elif data.is_edge_attr(key):
                    out[key] = select(value, p.edge_perm, data.__cat_dim__(key, value))
            out.edge_index = None
            self._data = out
        return self._data

    def __getstate__(self) -> dict:
        # The permuted copy of the graph is rebuilt on first access: worker processes,
        # which get the cluster data pickled, should not each receive one.
        return {**self.__dict__, "_data": None}

    def __len__(self) -> int:
        return self.num_parts

    def __getitem__(self, idx: int) -> Data:
        """Cluster ``idx`` sliced from :attr:`data`, as PyG's: its node attributes,
        ``edge_index`` [2, m] int64 in ids local to the cluster (with
        ``keep_inter_cluster_edges``, the endpoint ``partition.index`` holds stays an
        id of the permuted graph) in ``partition`` order, and those edges' attributes."""
        idx = as_int(idx, "idx")
        if not 0 <= idx < self.num_parts:
            raise IndexError(f"cluster {idx} out of range for {self.num_parts} clusters")
        p, data = self.partition, self.data
        node_start, node_end = int(p.partptr[idx]), int(p.partptr[idx + 1])
        indptr = p.indptr[node_start:node_end + 1]
        edge_start, edge_end = int(indptr[0]), int(indptr[-1])
        local = ptr2index(indptr - edge_start)
        other = p.index[edge_start:edge_end]
        keep = None
        if not self.keep_inter_cluster_edges:
            keep = (other >= node_start) & (other < node_end)
            local, other = local[keep], other[keep] - node_start
        out = copy.copy(data)
        for key, value in data.items():
            if key == "num_nodes":
                out.num_nodes = node_end - node_start
            elif data.is_node_attr(key):
                out[key] = narrow(value, data.__cat_dim__(key, value), node_start,
                                  node_end - node_start)
            elif data.is_edge_attr(key):
                dim = data.__cat_dim__(key, value)
                value = narrow(value, dim, edge_start, edge_end - edge_start)
                out[key] = value if keep is None else select(value, keep, dim)
        rows = (local, other) if p.sparse_format == "csr" else (other, local)
        out.edge_index = torch.stack(rows)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_parts={self.num_parts})"


class ClusterLoader(BatchLoader):
    """Batches of ``batch_size`` random clusters of a :class:`ClusterData`, with every
    edge among their nodes (the edges between the chosen clusters restored), node
    attributes sliced by ``n_id`` and edge attributes by ``e_id``.

    The subgraph PyG's loader makes of the same clusters (``keep_inter_cluster_edges``
    changes neither): nodes grouped by cluster in ascending cluster id (PyG keeps the
    sampled order), each cluster's in ``partition.node_perm`` order; edges grouped by
    target cluster, then source cluster. ``n_id`` [n] and ``e_id`` [m] (int64, not in
    PyG's batches) index ``cluster_data.original_data``, the graph as given, not the
    permuted ``cluster_data.data``.

    Args:
        cluster_data: the partition.
        **kwargs: ``batch_size`` (clusters per batch), ``shuffle``, ``drop_last``,
            ``generator``, ``num_workers`` and the other ``DataLoader`` arguments,
            ``distributed`` (this rank's share of the clusters, see
            :class:`~graphbatch.loader.batches.SeededBatches`), and
            ``node_store``, ``edge_store``, ``device``, ``prefetch``,
            ``prefetch_threads``, ``transform``, ``filter_per_worker`` as for
            :class:`~graphbatch.loader.base.BatchLoader`.
    """

    def __init__(self, cluster_data: ClusterData, **kwargs: Any) -> None:
        if not isinstance(cluster_data, ClusterData):
            raise TypeError(
                f"cluster_data must be a graphbatch.ClusterData, got {type(cluster_data).__name__}")
        batches = SeededBatches.from_loader_args(cluster_data.num_parts, kwargs)
        self.cluster_data = cluster_data
        super().__init__(cluster_data.original_data, cluster_data.graph, batches,
                         cluster_data.sampler, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_parts={self.cluster_data.num_parts})"
