"""Shared helpers: seeded random graphs and brute-force references.

Test modules import the plain functions (``from conftest import make_graph``); pytest's
default ``prepend`` import mode puts this directory on ``sys.path``.
"""
from __future__ import annotations

import socket
from collections import defaultdict

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from graphbatch.datasets.catalog import no_shared_datasets_reason, shared_datasets


def random_edge_index(
    num_nodes: int,
    num_edges: int,
    seed: int,
    num_isolated: int = 0,
    num_self_loops: int = 0,
    num_duplicates: int = 0,
    skew: float = 1.2,
) -> torch.Tensor:
    """``[2, E]`` int64 edges with heavy-tailed in- and out-degrees.

    Endpoints are drawn from a Zipf-like law over a random permutation of the nodes
    (so the hubs are not the low ids), ``num_isolated`` nodes are never used,
    ``num_self_loops`` loops ``(v, v)`` and ``num_duplicates`` exact copies of earlier
    edges are added at random places, so duplicate edges exist as distinct edge ids.
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(num_nodes)
    isolated = perm[:num_isolated]
    active = perm[num_isolated:]
    assert active.size > 0
    p = 1.0 / np.arange(1, active.size + 1) ** skew
    p /= p.sum()
    src = rng.choice(active, size=num_edges, p=p)
    dst = rng.choice(rng.permutation(active), size=num_edges, p=p)
    loops = rng.choice(active, size=num_self_loops)
    src = np.concatenate([src, loops])
    dst = np.concatenate([dst, loops])
    if num_duplicates:
        dup = rng.integers(0, src.size, size=num_duplicates)
        src = np.concatenate([src, src[dup]])
        dst = np.concatenate([dst, dst[dup]])
    order = rng.permutation(src.size)
    ei = torch.from_numpy(np.stack([src[order], dst[order]]).astype(np.int64))
    assert not np.isin(isolated, ei.numpy()).any()
    return ei


def make_graph(
    num_nodes: int = 400,
    num_edges: int = 2500,
    seed: int = 0,
    num_isolated: int = 20,
    num_self_loops: int = 15,
    num_duplicates: int = 40,
) -> Data:
    """A seeded random ``Data`` with ``x``, ``y``, ``edge_attr`` and a positive edge ``weight``.

    ``num_edges`` counts the random edges only; loops and duplicates come on top.
    The node count and edge count are kept different so PyG never confuses node and
    edge attributes.
    """
    ei = random_edge_index(num_nodes, num_edges, seed, num_isolated, num_self_loops, num_duplicates)
    gen = torch.Generator().manual_seed(seed)
    e = ei.size(1)
    assert e != num_nodes
    return Data(
        x=torch.randn(num_nodes, 8, generator=gen),
        y=torch.randint(0, 5, (num_nodes,), generator=gen),
        edge_index=ei,
        edge_attr=torch.randn(e, 3, generator=gen),
        weight=torch.rand(e, generator=gen, dtype=torch.float64) + 0.1,
        num_nodes=num_nodes,
    )


def incoming_reference(edge_index: torch.Tensor, num_nodes: int) -> list[list[tuple[int, int]]]:
    """For each node, its incoming edges as ``(source, edge id)`` in original edge order."""
    ref: list[list[tuple[int, int]]] = [[] for _ in range(num_nodes)]
    src, dst = edge_index.tolist()
    for e, (s, d) in enumerate(zip(src, dst)):
        ref[d].append((s, e))
    return ref


def in_degree(edge_index: torch.Tensor, num_nodes: int, edge_weight=None) -> np.ndarray:
    """In-degree per node; with ``edge_weight``, only edges of positive weight count."""
    dst = edge_index[1].numpy()
    if edge_weight is not None:
        dst = dst[edge_weight.numpy() > 0]
    return np.bincount(dst, minlength=num_nodes)


def induced_reference(edge_index, node, tree=None) -> list[tuple[int, int, int]]:
    """Every graph edge among the sampled nodes, as sorted ``(local src, local dst, edge id)``.

    With ``tree`` (disjoint mode), only edges whose endpoints lie in the same tree.
    """
    node = node.tolist()
    tree = [0] * len(node) if tree is None else tree.tolist()
    local = {(t, v): i for i, (t, v) in enumerate(zip(tree, node))}
    by_node = defaultdict(list)
    for i, (t, v) in enumerate(zip(tree, node)):
        by_node[v].append((t, i))
    out = []
    for e, (s, d) in enumerate(zip(*edge_index.tolist())):
        for t, i in by_node.get(d, ()):
            j = local.get((t, s))
            if j is not None:
                out.append((j, i, e))
    return sorted(out)


@pytest.fixture(scope="session")
def graph_data() -> Data:
    return make_graph()


def val_test_accuracy(pred: torch.Tensor, y: torch.Tensor, masks) -> tuple[float, float]:
    """(validation, test) accuracy of predictions ``pred`` for (train, val, test) masks."""
    return tuple((pred[m] == y[m]).float().mean().item() for m in masks[1:])


#: Marks tests that train on the real datasets of ``../shared/datasets``.
needs_datasets = pytest.mark.skipif(
    shared_datasets() is None, reason=no_shared_datasets_reason())


@pytest.fixture
def no_download(monkeypatch):
    """Any download attempt fails the test loudly (Planetoid downloads through fs.cp)."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("torch_geometric.io.fs.cp", refuse)
