"""A graph and its tables once per machine, however many processes train on it.

``torchrun --nproc_per_node N`` starts N processes; each loading the dataset and
building its topology would hold N copies. :func:`shared_graph` has one process per
machine (local rank 0) build the graph and write it as ``.npy`` files; every process
then maps those files, so the pages exist once, in the page cache (or in ``/dev/shm``
if the directory is there), and are read in place: the topology by the samplers, the
node and edge tables by the loaders' feature stores (which also pass them to worker
processes as files). Writing to a mapped tensor changes only the writer's copy of the
page (copy-on-write), never the file or the other processes' view.
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch_geometric.data import Data

from graphbatch import ranks
from graphbatch.features import FeatureStore
from graphbatch.features.store import data_tables
from graphbatch.graph import CSCGraph

_MANIFEST = "graph.json"
_FORMAT = 1


@dataclass
class SharedGraph:
    """A graph mapped from the files :func:`save_graph` wrote.

    Attributes:
        data: the ``Data``, every tensor attribute mapped copy-on-write from its file.
        graph: its topology (:meth:`CSCGraph.load`).
        node_store, edge_store: its node and edge tables, read from the files in place.
        directory: where the files are.
    """

    data: Data
    graph: CSCGraph
    node_store: FeatureStore
    edge_store: FeatureStore
    directory: Path

    def loader_args(self) -> dict[str, Any]:
        """The loader arguments that make a loader read the shared copies:
        ``graph``, ``node_store``, ``edge_store``."""
        return {"graph": self.graph, "node_store": self.node_store, "edge_store": self.edge_store}


def save_graph(data: Data, directory: Union[str, Path], graph: CSCGraph | None = None) -> None:
    """Writes ``data`` (its tensor attributes as ``.npy`` files, its plain ``int``,
    ``float``, ``str``, ``bool`` and ``None`` attributes in a manifest) and its topology
    (``graph``, or built now) to ``directory``, replacing what is there. The files
    appear together: they are written beside it, then renamed into place."""
    if not isinstance(data, Data):
        raise TypeError(f"data must be a torch_geometric.data.Data, got {type(data).__name__}")
    graph = CSCGraph.from_data(data) if graph is None else graph
    directory = Path(directory)
    tensors, scalars = [], {}
    for key, value in data.items():
        if isinstance(value, Tensor):
            tensors.append(key)
        elif value is None or isinstance(value, (bool, int, float, str)):
            scalars[key] = value
        else:
            raise TypeError(f"data.{key} is a {type(value).__name__}; shared_graph writes "
                            "tensors and plain int, float, str, bool or None attributes")
    staging = directory.parent / f".{directory.name}.writing-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for key in tensors:
        np.save(staging / f"{key}.npy", data[key].detach().cpu().numpy())
    graph.save(staging / "csc")
    manifest = {"format": _FORMAT, "num_nodes": int(data.num_nodes), "tensors": tensors,
                "scalars": scalars}
    (staging / _MANIFEST).write_text(json.dumps(manifest))
    if directory.exists():
        shutil.rmtree(directory)
    os.rename(staging, directory)


def load_graph(directory: Union[str, Path]) -> SharedGraph:
    """Maps the graph :func:`save_graph` wrote to ``directory``."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / _MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"directory={str(directory)!r} holds no saved graph: {exc}") from exc
    if manifest.get("format") != _FORMAT:
        raise ValueError(f"directory={str(directory)!r}: format {manifest.get('format')!r}, "
                         f"expected {_FORMAT}")
    data = Data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for key in manifest["tensors"]:
            data[key] = torch.from_numpy(np.load(directory / f"{key}.npy", mmap_mode="c"))
    for key, value in manifest["scalars"].items():
        data[key] = value
    data.num_nodes = manifest["num_nodes"]
    graph = CSCGraph.load(directory / "csc")
    stores = []
    for kind in ("node", "edge"):
        names = data_tables(data, kind, graph.num_nodes, graph.num_edges)
        stores.append(FeatureStore({k: directory / f"{k}.npy" for k in names},
                                   num_rows=graph.num_nodes if kind == "node" else graph.num_edges))
    return SharedGraph(data, graph, stores[0], stores[1], directory)


def _local_rank() -> int:
    rank, _ = ranks.world()
    return int(os.environ.get("LOCAL_RANK", rank))


def _raise_on_all(error: Optional[BaseException], what: str) -> None:
    """Raises on every rank if any rank's step ``what`` failed (``error``): a collective,
    so that no rank goes on to the next collective alone."""
    _, world_size = ranks.world()
    errors: list[Any] = [None] * world_size
    dist.all_gather_object(errors, None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    failed = [(r, e) for r, e in enumerate(errors) if e is not None]
    if failed:
        raise RuntimeError(f"shared_graph: {what} failed on " + "; ".join(
            f"rank {r} ({e})" for r, e in failed))


def shared_graph(build: Callable[[], Data], directory: Union[str, Path],
                 reuse: bool = False) -> SharedGraph:
    """The graph ``build()`` returns, built by one process per machine and mapped by all.

    Call it on every rank (it is a collective; on nccl, after
    ``torch.cuda.set_device``, as for any object collective): local rank 0
    (``LOCAL_RANK``, as torchrun sets it) calls ``build`` and writes the result to
    ``directory`` (a path on the machine's own disk, or under ``/dev/shm``); the other
    ranks never load the dataset. After a barrier every rank maps the files. An error
    in ``build``, or in mapping the files on any rank, is raised on every rank.

    Args:
        build: makes the ``Data`` (loads a dataset, generates a graph).
        directory: where the files go; what is there is replaced.
        reuse: map the files already in ``directory`` if it holds a saved graph (you
            promise it is the one ``build`` would make), without building.
    """
    directory = Path(directory)
    error = None
    if _local_rank() == 0 and not (reuse and (directory / _MANIFEST).is_file()):
        try:
            save_graph(build(), directory)
        except Exception as exc:  # noqa: BLE001 -- raised on every rank
            error = exc
    _raise_on_all(error, "building the graph")
    shared = None
    try:
        shared = load_graph(directory)
    except Exception as exc:  # noqa: BLE001 -- raised on every rank
        error = exc
    _raise_on_all(error, "mapping the graph's files")
    return shared
