"""Cluster-GCN: drop-ins for ``torch_geometric.loader.ClusterData`` and ``ClusterLoader``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor
from torch_geometric.data import Data

from graphbatch._validate import as_int, check_positive_int
from graphbatch.cache import cached, digest, graph_digest
from graphbatch.features import FeatureStore
from graphbatch.graph import CSRGraph
from graphbatch.loader.assemble import assemble
from graphbatch.loader.base import BatchLoader, check_data, graph_of
from graphbatch.loader.batches import SeededBatches
from graphbatch.sampling.cluster import (
    ClusterSampler, Partition, check_num_parts, metis_partition, positive_int_weights,
)
from graphbatch.sampling.subgraph import SampledSubgraph


class ClusterData(torch.utils.data.Dataset):
    """A METIS partition of ``data`` into ``num_parts`` clusters (computed with
    ``pymetis``; no pyg-lib or torch-sparse needed).

    Same arguments as PyG's. ``partition`` holds ``partptr``, ``node_perm`` (and ``part``,
    each node's cluster). Unlike PyG, ``data`` is kept as given, not permuted: batches
    carry ``n_id`` and ``e_id`` back to it. ``cluster_data[i]`` is cluster ``i``'s
    induced subgraph.

    Args:
        data: the graph, a ``torch_geometric.data.Data`` with ``edge_index``.
        num_parts: clusters, from 1 to the number of nodes.
        recursive: recursive bisection instead of k-way partitioning.
        save_dir, filename: cache the partition in ``save_dir/filename`` (default
            ``part_{num_parts}[_recursive]/metis.pt``), keyed by graph and parameters; a
            corrupted or mismatched file is recomputed.
        log: report while METIS runs on a large graph.
        keep_inter_cluster_edges: only ``False`` (each stored cluster is its induced
            subgraph); ``ClusterLoader`` batches keep the edges between their clusters.
        sparse_format: ``'csr'`` or ``'csc'``, recorded in ``partition``.
        node_weight, edge_weight: optional positive integer weights for METIS.
        graph: a prebuilt :class:`CSRGraph` of ``data``.
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
        graph: Optional[CSRGraph] = None,
    ) -> None:
        check_data(data, "ClusterData")
        if sparse_format not in ("csr", "csc"):
            raise ValueError(f"sparse_format must be 'csr' or 'csc', got {sparse_format!r}")
        if keep_inter_cluster_edges:
            raise NotImplementedError(
                "keep_inter_cluster_edges=True is not supported yet; ClusterLoader batches "
                "already keep the edges between the clusters they join")
        self.graph = graph_of(data, graph)
        num_parts = check_num_parts(num_parts, self.graph.num_nodes)
        for name, weight, size in (("node_weight", node_weight, self.graph.num_nodes),
                                   ("edge_weight", edge_weight, self.graph.num_edges)):
            positive_int_weights(weight, size, name)
        self.data = data
        self.num_parts = num_parts
        self.recursive = bool(recursive)
        self.keep_inter_cluster_edges = False

        def compute() -> dict:
            part = metis_partition(self.graph, num_parts, recursive, node_weight, edge_weight, log)
            return {"part": part}

        def check(t: dict) -> bool:
            part = t["part"]
            return (part.shape == (self.graph.num_nodes,) and part.dtype == torch.int64
                    and (part.numel() == 0 or (int(part.min()) >= 0 and int(part.max()) < num_parts)))

        if save_dir is None:
            part = compute()["part"]
        else:
            folder = f"part_{num_parts}{'_recursive' if recursive else ''}"
            path = Path(save_dir) / folder / (filename or "metis.pt")
            key = {"graph": graph_digest(self.graph), "num_parts": num_parts,
                   "recursive": self.recursive,
                   "node_weight": None if node_weight is None else digest(node_weight.numpy()),
                   "edge_weight": None if edge_weight is None else digest(edge_weight.numpy())}
            part = cached(path, key, compute, check, "METIS partition")["part"]
        self.partition = Partition.from_parts(part, num_parts, sparse_format)
        self.sampler = ClusterSampler(self.graph, self.partition)

    def __len__(self) -> int:
        return self.num_parts

    def __getitem__(self, idx: int) -> Data:
        idx = as_int(idx, "idx")
        if not 0 <= idx < self.num_parts:
            raise IndexError(f"cluster {idx} out of range for {self.num_parts} clusters")
        out = self.sampler.sample(torch.tensor([idx]))
        return assemble(self.data, out, FeatureStore({}), FeatureStore({}))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_parts={self.num_parts})"


class ClusterLoader(BatchLoader):
    """Batches of ``batch_size`` random clusters of a :class:`ClusterData`, with every
    edge among their nodes (the edges between the chosen clusters restored), node
    attributes sliced by ``n_id`` and edge attributes by ``e_id``.

    Args:
        cluster_data: the partition.
        **kwargs: ``batch_size`` (clusters per batch), ``shuffle``, ``drop_last``,
            ``generator``, ``num_workers`` and the other ``DataLoader`` arguments, and
            ``node_store``, ``edge_store``, ``device``, ``prefetch``,
            ``prefetch_threads``, ``transform``, ``filter_per_worker`` as for
            :class:`~graphbatch.loader.base.BatchLoader`.
    """

    def __init__(self, cluster_data: ClusterData, **kwargs: Any) -> None:
        if not isinstance(cluster_data, ClusterData):
            raise TypeError(
                f"cluster_data must be a graphbatch.ClusterData, got {type(cluster_data).__name__}")
        batch_size = check_positive_int(kwargs.pop("batch_size", 1), "batch_size")
        batches = SeededBatches(
            cluster_data.num_parts, batch_size, bool(kwargs.pop("shuffle", False)),
            bool(kwargs.pop("drop_last", False)), kwargs.get("generator"),
            kwargs.pop("sampler", None),
        )
        self.cluster_data = cluster_data
        super().__init__(cluster_data.data, cluster_data.graph, batches,
                         shared=(cluster_data.sampler,), **kwargs)

    def sample(self, item: tuple) -> tuple[SampledSubgraph, Tensor]:
        _, _, clusters = item
        clusters = torch.sort(clusters).values  # nodes grouped by cluster id, as in PyG
        return self.cluster_data.sampler.sample(clusters), clusters

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_parts={self.cluster_data.num_parts})"
