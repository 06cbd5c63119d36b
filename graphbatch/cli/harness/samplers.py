"""One training source per sampler: the loader of the run and how its batches feed the
loss (which rows are trained on, with which weights, which edge weights).

The same constructor arguments build graphbatch's loaders and, for ``--compare pyg``,
PyG's classes of the same names; only graphbatch's get extra arguments (the prebuilt
topology, GraphSAINT's random-walk roots, the device for zero-copy gathering).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import torch
from torch import Tensor
from torch_geometric.data import Data

import graphbatch
from graphbatch.cache import graph_digest
from graphbatch.graph import CSRGraph

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


def build_source(sampler: str, data: Data, graph: CSRGraph, s: dict[str, Any],
                 device: torch.device, impl: str = GRAPHBATCH) -> Source:
    """The training source of ``sampler`` with settings ``s`` (see
    :func:`~graphbatch.cli.harness.settings.resolve`), from graphbatch's loaders or, with
    ``impl="pyg"``, PyG's."""
    import time

    start = time.perf_counter()
    L = _loader_classes(impl)
    ours = impl == GRAPHBATCH
    extra: dict[str, Any] = {"graph": graph} if ours else {}
    if ours and device.type == "cuda":
        extra["device"] = device
    train_idx = data.train_mask.nonzero().view(-1)
    if sampler == "full":
        return Source([data.to(device)], "whole")
    if sampler == "neighbor":
        loader = L.NeighborLoader(data, num_neighbors=s["fanouts"], input_nodes=train_idx,
                                  batch_size=s["batch_size"], shuffle=True, **extra)
        return Source(loader, "seeds", time.perf_counter() - start)
    if sampler.startswith("saint-"):
        common = dict(num_steps=s["num_steps"], sample_coverage=s["sample_coverage"],
                      save_dir=_cache_dir(f"saint-{impl}"), log=False, **extra)
        if sampler == "saint-node":
            loader = L.GraphSAINTNodeSampler(data, s["batch_size"], **common)
        elif sampler == "saint-edge":
            loader = L.GraphSAINTEdgeSampler(data, s["batch_size"], **common)
        else:
            if ours:  # the paper's walks start at training nodes; PyG's anywhere
                common["roots"] = train_idx
            loader = L.GraphSAINTRandomWalkSampler(data, s["batch_size"], s["walk_length"],
                                                   **common)
        return Source(loader, "subgraph", time.perf_counter() - start)
    if sampler in ("cluster", "lazy"):
        # ClusterData names its file by the number of parts alone: one folder per graph.
        folder = _cache_dir(f"metis-{impl}/{graph_digest(graph)}")
        cluster_data = L.ClusterData(data, s["num_parts"], save_dir=folder, log=False,
                                     **({"graph": graph} if ours else {}))
        if sampler == "cluster":
            loader = L.ClusterLoader(cluster_data, batch_size=s["batch_size"], shuffle=True,
                                     **({"device": device} if "device" in extra else {}))
            return Source(loader, "subgraph", time.perf_counter() - start)
        loader = graphbatch.HaloLoader(data, num_hops=s["steps"], cluster_data=cluster_data,
                                       batch_size=s["batch_size"], shuffle=True,
                                       **({"device": device} if "device" in extra else {}))
        return Source(loader, "lazy", time.perf_counter() - start)
    raise ValueError(f"sampler must be one of the harness's, got {sampler!r}")
