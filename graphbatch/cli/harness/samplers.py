"""One training source per sampler: the loader of the run and how its batches feed the
loss (which rows are trained on, with which weights, which edge weights).

The same constructor arguments build graphbatch's loaders and, for ``--compare pyg``,
PyG's classes of the same names; only graphbatch's get extra arguments (the prebuilt
topology, GraphSAINT's random-walk roots, the device for zero-copy gathering).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import torch
from torch import Tensor
from torch_geometric.data import Data

import graphbatch
from graphbatch.cache import graph_digest
from graphbatch.graph import CSCGraph

GRAPHBATCH, PYG = "graphbatch", "pyg"


@dataclass
class Source:
    """What a run trains from.

    Attributes:
        loader: an iterable of ``Data`` batches (for ``full``, a one-element list).
        kind: ``"seeds"`` (the first ``batch_size`` rows are trained on),
            ``"subgraph"`` (the batch's ``train_mask`` rows, weighted by ``node_norm``
            where the batch has it), ``"whole"`` (``train_mask`` of the whole graph) or
            ``"lazy"`` (LazyGNN: the training targets among the first ``batch_size``).
        prep_s: seconds spent before the first epoch (pre-sampling, METIS).
    """

    loader: Iterable[Data]
    kind: str
    prep_s: float = 0.0


def loss_rows(source: Source, batch: Data) -> tuple[Tensor, Optional[Tensor]]:
    """``(rows, weights)``: the batch rows the loss covers ([k] int64) and their weights
    ([k] float32, or None for a plain mean)."""
    if source.kind == "seeds":
        return torch.arange(batch.batch_size, device=batch.y.device), None
    if source.kind == "lazy":
        rows = torch.arange(batch.batch_size, device=batch.y.device)
        return rows[batch.train_mask[: batch.batch_size]], None
    rows = batch.train_mask.nonzero().view(-1)
    norm = getattr(batch, "node_norm", None)
    return rows, (norm[rows] if norm is not None and source.kind == "subgraph" else None)


def _cache_dir(kind: str) -> str:
    from graphbatch.datasets import data_root

    path = Path(data_root()) / "cache" / kind
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def _loader_classes(impl: str) -> Any:
    if impl == GRAPHBATCH:
        return graphbatch
    import torch_geometric.loader

    return torch_geometric.loader


def build_source(sampler: str, data: Data, graph: CSCGraph, s: dict[str, Any],
                 device: torch.device, impl: str = GRAPHBATCH) -> Source:
    """The training source of ``sampler`` with settings ``s`` (see
    :func:`~graphbatch.cli.harness.settings.resolve`), from graphbatch's loaders or, with
    ``impl="pyg"``, PyG's; ``prep_s`` is the time building it took."""
    if sampler == "full":
        return Source([data.to(device)], "whole")
    start = time.perf_counter()
    loader, kind = _loader(sampler, data, graph, s, device, impl)
    return Source(loader, kind, time.perf_counter() - start)


def _loader(sampler: str, data: Data, graph: CSCGraph, s: dict[str, Any],
            device: torch.device, impl: str) -> tuple[Iterable[Data], str]:
    """``(loader, kind)`` of a mini-batch sampler (see :class:`Source`)."""
    L = _loader_classes(impl)
    ours = impl == GRAPHBATCH
    # graphbatch's own arguments: the prebuilt topology, zero-copy gathering on CUDA.
    on_device: dict[str, Any] = {"device": device} if ours and device.type == "cuda" else {}
    topology: dict[str, Any] = {"graph": graph} if ours else {}
    train_idx = data.train_mask.nonzero().view(-1)
    if sampler == "neighbor":
        return L.NeighborLoader(data, num_neighbors=s["fanouts"], input_nodes=train_idx,
                                batch_size=s["batch_size"], shuffle=True, **topology,
                                **on_device), "seeds"
    if sampler.startswith("saint-"):
        common = dict(num_steps=s["num_steps"], sample_coverage=s["sample_coverage"],
                      save_dir=_cache_dir(f"saint-{impl}"), log=False, **topology, **on_device)
        if sampler == "saint-node":
            return L.GraphSAINTNodeSampler(data, s["batch_size"], **common), "subgraph"
        if sampler == "saint-edge":
            return L.GraphSAINTEdgeSampler(data, s["batch_size"], **common), "subgraph"
        if ours:  # the paper's walks start at training nodes; PyG's anywhere
            common["roots"] = train_idx
        return L.GraphSAINTRandomWalkSampler(data, s["batch_size"], s["walk_length"],
                                             **common), "subgraph"
    if sampler in ("cluster", "lazy"):
        # ClusterData names its file by the number of parts alone: one folder per graph.
        folder = _cache_dir(f"metis-{impl}/{graph_digest(graph)}")
        cluster_data = L.ClusterData(data, s["num_parts"], save_dir=folder, log=False,
                                     **topology)
        if sampler == "cluster":
            return L.ClusterLoader(cluster_data, batch_size=s["batch_size"], shuffle=True,
                                   **on_device), "subgraph"
        return graphbatch.HaloLoader(data, num_hops=s["steps"], cluster_data=cluster_data,
                                     batch_size=s["batch_size"], shuffle=True,
                                     **on_device), "lazy"
    raise ValueError(f"sampler must be one of the harness's, got {sampler!r}")
