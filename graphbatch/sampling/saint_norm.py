"""GraphSAINT normalization coefficients, estimated by pre-sampling, cached on disk.

Subgraphs are drawn until the nodes are covered ``sample_coverage`` times on average,
counting ``C(v)`` per node and ``C(e)`` per edge. For an edge ``e = u -> v``,
aggregated at ``v``, the aggregator normalization is ``edge_norm[e] = C(v) / C(e)``
(the aggregating node's count, as in the official code; PyG uses the source's), so that
``E[sum over sampled u of edge_norm * w(u, v) x_u | v sampled]`` is the full-graph
aggregation. The loss normalization is ``node_norm[v] = num_subgraphs / C(v) / N``,
so ``E[sum over v in the subgraph of node_norm[v] * loss_v]`` is the mean loss.
Counts are floored at 1: an edge never seen in pre-sampling (its estimated probability
0) gets ``C(v) / 1`` rather than PyG's 1e4 cap, which let a few unseen edges carry
weight 1e4 and wrecked training (Amazon Computers, coverage 50: 0.1% of the edges
capped, test accuracy 48% against 88% without normalization); a node never seen gets the
norm of a node seen once.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from graphbatch.graph import CSRGraph
from graphbatch.sampling.saint import SAINTSampler

FORMAT_VERSION = 1


@dataclass
class SAINTNorm:
    """``node_norm`` [N] float32, ``edge_norm`` [E] float32 (original edge order), and
    how many subgraphs were drawn to estimate them."""

    node_norm: Tensor
    edge_norm: Tensor
    num_samples: int


def graph_digest(graph: CSRGraph) -> str:
    """A hash of the topology, for cache keys."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.int64(graph.num_nodes).tobytes())
    for array in graph.numpy():
        h.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return h.hexdigest()


def estimate(sampler: SAINTSampler, sample_coverage: int, seed: int, log: bool = True) -> SAINTNorm:
    """Pre-samples subgraphs (each one parallel inside) until the mean node coverage
    reaches ``sample_coverage``, and turns the counts into normalizations."""
    graph = sampler.graph
    n, m = graph.num_nodes, graph.num_edges
    node_count = np.zeros(n, dtype=np.float64)
    edge_count = np.zeros(m, dtype=np.float64)
    goal = n * sample_coverage
    covered, num_samples = 0, 0
    with tqdm(total=goal, desc="GraphSAINT pre-sampling", unit="node", disable=not log,
              leave=False) as bar:
        while covered < goal:
            sub = sampler.sample(seed, num_samples)
            node_count[sub.node.numpy()] += 1  # ids are distinct within a subgraph
            edge_count[sub.edge.numpy()] += 1
            covered += sub.node.numel()
            num_samples += 1
            bar.update(sub.node.numel())
    indptr, _, perm = graph.numpy()
    target = np.empty(m, dtype=np.int64)
    target[perm] = np.repeat(np.arange(n), np.diff(indptr))
    np.maximum(node_count, 1, out=node_count)
    np.maximum(edge_count, 1, out=edge_count)
    edge_norm = node_count[target] / edge_count
    node_norm = num_samples / node_count / n
    return SAINTNorm(torch.from_numpy(node_norm.astype(np.float32)),
                     torch.from_numpy(edge_norm.astype(np.float32)), num_samples)


def _checksum(norm: SAINTNorm) -> str:
    h = hashlib.blake2b(digest_size=16)
    for t in (norm.node_norm, norm.edge_norm):
        h.update(t.numpy().tobytes())
    h.update(str(norm.num_samples).encode())
    return h.hexdigest()


def _load(path: Path, key: dict, graph: CSRGraph) -> Optional[SAINTNorm]:
    """The cached normalization at ``path`` if it is intact and made for ``key``."""
    try:
        saved = torch.load(path, weights_only=True)
        norm = SAINTNorm(saved["node_norm"], saved["edge_norm"], int(saved["num_samples"]))
        ok = (json.loads(saved["key"]) == key
              and saved["checksum"] == _checksum(norm)
              and norm.node_norm.shape == (graph.num_nodes,)
              and norm.edge_norm.shape == (graph.num_edges,))
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is a bad cache
        warnings.warn(f"GraphSAINT cache {str(path)!r} is unreadable ({exc}); recomputing")
        return None
    if not ok:
        warnings.warn(f"GraphSAINT cache {str(path)!r} does not match this graph and "
                      "these parameters, or is corrupted; recomputing")
        return None
    return norm


def normalization(sampler: SAINTSampler, sample_coverage: int, seed: int,
                  save_dir: Optional[str] = None, log: bool = True) -> SAINTNorm:
    """:func:`estimate`, read from or written to ``save_dir`` when given. The cache key
    is the graph's digest, the sampler's parameters and ``sample_coverage``."""
    if save_dir is None:
        return estimate(sampler, sample_coverage, seed, log)
    key = {"version": FORMAT_VERSION, "graph": graph_digest(sampler.graph),
           "sample_coverage": sample_coverage, **sampler.params()}
    name = "saint_" + hashlib.blake2b(json.dumps(key, sort_keys=True).encode(),
                                      digest_size=8).hexdigest() + ".pt"
    path = Path(save_dir) / name
    if path.exists():
        cached = _load(path, key, sampler.graph)
        if cached is not None:
            return cached
    norm = estimate(sampler, sample_coverage, seed, log)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"key": json.dumps(key), "node_norm": norm.node_norm, "edge_norm": norm.edge_norm,
                "num_samples": norm.num_samples, "checksum": _checksum(norm)}, tmp)
    os.replace(tmp, path)  # atomic: readers never see a half-written file
    return norm
