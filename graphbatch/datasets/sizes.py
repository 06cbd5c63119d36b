"""The catalog's synthetic graphs in named sizes: seeded, built once, then memory-mapped
from ``<data root>/synthetic/<name>.pt``.

The file is keyed by the generator, its version and its parameters: a changed parameter,
a newer generator or a corrupted file is rebuilt (with a warning), never used.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Union

from torch import Tensor
from torch_geometric.data import Data

from graphbatch.datasets import store
from graphbatch.datasets.splits import random_split
from graphbatch.datasets.synthetic import PAIR_CHUNK, planted_classes, planted_graph

#: Bumped whenever a generator's output for the same parameters changes, so that files
#: made by the old one are rebuilt.
GENERATOR_VERSION = {"planted_classes": 1, "planted_graph": 1}


@dataclass(frozen=True)
class Size:
    """One named synthetic graph: its generator and the generator's arguments.

    ``planted_classes`` (``synthetic`` only) draws its own seeded 60/20/20 masks, the
    graph's one split; ``planted_graph`` graphs get ``random_split(N, seed=split)``.
    """

    name: str
    generator: str
    params: dict[str, Any]

    @property
    def num_nodes(self) -> int:
        return self.params["num_nodes"]

    @property
    def num_features(self) -> int:
        return self.params["num_features"]

    @property
    def num_classes(self) -> int:
        return self.params["num_classes"]

    @property
    def has_masks(self) -> bool:
        """Whether the graph carries its own masks (else they are drawn per split)."""
        return self.generator == "planted_classes"

    def nominal_edges(self) -> int:
        """Directed edges before self-loops and duplicate pairs are dropped (the built
        graph has 0.05% (products size) to 2% (3,000 nodes) fewer: duplicates gather at
        the hubs, more so on small graphs)."""
        pairs = self.num_nodes * self.params["avg_degree"] / 2
        return 2 * (int(pairs) if self.generator == "planted_classes" else int(round(pairs)))

    def key(self) -> dict:
        """What the cached file must have been made from."""
        key = {"dataset": self.name, "generator": self.generator,
               "generator_version": GENERATOR_VERSION[self.generator], "params": self.params}
        if self.generator == "planted_graph":
            key["pair_chunk"] = PAIR_CHUNK
        return key

    def path(self, root: Path) -> Path:
        return Path(root) / "synthetic" / f"{self.name}.pt"

    def build(self) -> dict[str, Tensor]:
        """Runs the generator: ``x`` [N, F] float32, ``y`` [N] int64, ``edge_index``
        [2, E] int64, and for ``planted_classes`` its [N] bool masks."""
        make = planted_classes if self.generator == "planted_classes" else planted_graph
        data = make(**self.params)
        keys = ["x", "y", "edge_index"]
        if self.has_masks:
            keys += ["train_mask", "val_mask", "test_mask"]
        return {k: data[k] for k in keys}

    def check(self, tensors: dict[str, Tensor]) -> bool:
        """Whether loaded tensors have the names, shapes and dtypes ``build`` gives."""
        n, f = self.num_nodes, self.num_features
        masks = ("train_mask", "val_mask", "test_mask") if self.has_masks else ()
        if set(tensors) != {"x", "y", "edge_index", *masks}:
            return False
        x, y, ei = tensors["x"], tensors["y"], tensors["edge_index"]
        return (x.shape == (n, f) and x.dtype.is_floating_point and y.shape == (n,)
                and ei.dim() == 2 and ei.size(0) == 2 and not ei.dtype.is_floating_point
                and all(tensors[m].shape == (n,) for m in masks))

    def scaled(self, num_nodes: int) -> "Size":
        """The same generator and parameters at ``num_nodes`` nodes (tests build the big
        sizes' logic this way)."""
        return replace(self, name=f"{self.name}@{num_nodes}",
                       params={**self.params, "num_nodes": num_nodes})


def _planted(name: str, num_nodes: int, avg_degree: float, num_classes: int,
             num_features: int, homophily: float, feature_signal: float) -> Size:
    return Size(name, "planted_graph", dict(
        num_nodes=num_nodes, avg_degree=avg_degree, num_classes=num_classes,
        num_features=num_features, homophily=homophily, feature_signal=feature_signal,
        seed=0))


# Homophily and feature signal are set so that neither features nor the graph alone
# give the labels: logistic regression on x reaches 59% / 51% / 68% test accuracy
# (synthetic-small; 20k-node versions of -1m and -products), and on x with 2 hops of
# mean aggregation 81% / 79% / 87%.
SIZES: dict[str, Size] = {s.name: s for s in [
    # `make demo`'s graph: its content is planted_classes()'s, unchanged.
    Size("synthetic", "planted_classes", dict(
        num_nodes=100_000, num_classes=10, avg_degree=12.0, num_features=64,
        homophily=0.5, feature_signal=0.15, seed=0)),
    _planted("synthetic-small", 3_000, 10.0, 5, 32, 0.5, 0.25),
    _planted("synthetic-1m", 1_000_000, 20.0, 10, 64, 0.3, 0.2),
    # ogbn-products: 2,449,029 nodes, 61,859,140 undirected edges (123,718,280 as PyG's
    # edge_index has them), 100 features, 47 classes.
    _planted("synthetic-products", 2_449_029, 50.55, 47, 100, 0.2, 0.3),
]}


def load(name: str, root: Path, split: int = 0) -> Data:
    """Synthetic graph ``name`` (see :data:`SIZES`), built on first use and cached under
    ``root``: ``x`` [N, F] float32, ``y`` [N] int64,
    ``edge_index`` [2, E] int64 (undirected, coalesced), and [N] bool masks: the
    generator's own for ``synthetic``, else ``random_split(N, seed=split)``.

    ``split`` is the caller's to check (the catalog does)."""
    size = SIZES[name]
    tensors = store.load_or_build(size.path(root), size.key(), size.build, size.check,
                                  f"synthetic graph {name!r}")
    data = Data(**tensors, num_nodes=size.num_nodes)
    if not size.has_masks:
        data.train_mask, data.val_mask, data.test_mask = random_split(size.num_nodes, seed=split)
    return data


def describe(name: str, root: Path) -> dict[str, Any]:
    """Counts for listings, without building: exact where the graph is cached (read
    from the file's index), else nominal (edges as ``"~E"``, see
    :meth:`Size.nominal_edges`). ``cached``: ``"yes"`` or ``"no"``."""
    size = SIZES[name]
    path = size.path(root)
    shapes = store.peek(path, size.key())
    edges: Union[int, str] = (shapes["edge_index"][1] if shapes is not None
                              else f"~{size.nominal_edges()}")
    return {"nodes": size.num_nodes, "edges": edges, "features": size.num_features,
            "classes": size.num_classes, "cached": "yes" if shapes is not None else "no",
            "path": path}
