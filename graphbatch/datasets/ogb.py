"""OGB node datasets read from OGB's own files, without the ``ogb`` package and without
downloading.

The folder is what ``ogb.nodeproppred.PygNodePropPredDataset(name, root)`` leaves under
``root``: ``ogbn_arxiv`` (``ogbn_arxiv_pyg`` from ogb before 1.2.0), looked up in the
data root, then in the shared datasets folder. Its files (``master.csv`` of
snap-stanford/ogb gives which):

- ogbn-arxiv, ogbn-products: ``raw/edge.csv.gz`` ([E, 2] node ids, no header),
  ``raw/node-feat.csv.gz`` ([N, F] floats), ``raw/node-label.csv.gz`` ([N, 1] ints),
  ``raw/num-node-list.csv.gz`` and ``raw/num-edge-list.csv.gz`` (one line: N, E), and
  the official split ``split/<time | sales_ranking>/{train,valid,test}.csv.gz`` (node
  ids, one a line).
- ogbn-papers100M: ``raw/data.npz`` (``edge_index`` [2, E], ``node_feat`` [N, 128],
  ``num_nodes_list``), ``raw/node-label.npz`` (``node_label`` [N, 1] float, NaN where
  a node has no label) and ``split/time/{train,valid,test}.csv.gz``.

Edges are kept as OGB gives them: ogbn-arxiv is directed (citing -> cited), as OGB
stores it (PyG's examples usually make it undirected with ``ToUndirected``; do so
yourself for that setting); ogbn-products is undirected, stored once per pair, and both
directions are added the way OGB does (``add_inverse_edge``: each pair followed by its
reverse). ogbn-papers100M's unlabeled nodes (all but about 1.5M of 111M) get ``y = -1``;
no mask selects them.

Parsing the csv files takes seconds (arxiv) to about a minute (products), so the
converted graph is cached under ``<data root>/ogb/<name>.pt``, keyed by the source files'
sizes and modification times. papers100M is not: its files are binary already, and a
copy would be another 80 GB.
"""
from __future__ import annotations

import gzip
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from graphbatch.datasets import store

#: Bumped whenever the conversion changes, so that older cached files are rebuilt.
CONVERTER_VERSION = 1

_CSV_RAW = ("raw/edge.csv.gz", "raw/node-feat.csv.gz", "raw/node-label.csv.gz",
            "raw/num-node-list.csv.gz", "raw/num-edge-list.csv.gz")
_BINARY_RAW = ("raw/data.npz", "raw/node-label.npz")
_PARTS = ("train", "valid", "test")


@dataclass(frozen=True)
class Spec:
    """One OGB node dataset, as ``master.csv`` describes it."""

    name: str
    split: str  # the official split's folder under split/
    num_classes: int
    add_inverse_edge: bool
    binary: bool
    metric: str = "accuracy"

    @property
    def folders(self) -> tuple[str, str]:
        """The folder names OGB gives the dataset under its root (newest first)."""
        base = self.name.replace("-", "_")
        return base, base + "_pyg"

    @property
    def files(self) -> tuple[str, ...]:
        """Every file read, relative to the dataset folder."""
        raw = _BINARY_RAW if self.binary else _CSV_RAW
        return (*raw, *(f"split/{self.split}/{p}.csv.gz" for p in _PARTS))


SPECS: dict[str, Spec] = {s.name: s for s in [
    Spec("ogbn-arxiv", "time", 40, add_inverse_edge=False, binary=False),
    Spec("ogbn-products", "sales_ranking", 47, add_inverse_edge=True, binary=False),
    Spec("ogbn-papers100M", "time", 172, add_inverse_edge=False, binary=True),
]}


def candidates(name: str, roots: list[Path]) -> list[Path]:
    """The folders dataset ``name`` is looked for in, in order."""
    return [Path(r) / f for r in roots for f in SPECS[name].folders]


def _missing(folder: Path, spec: Spec) -> list[str]:
    return [f for f in spec.files if not (folder / f).is_file()]


def find(name: str, roots: list[Path]) -> Optional[Path]:
    """The first of :func:`candidates` holding every file of ``name``, or None."""
    spec = SPECS[name]
    return next((f for f in candidates(name, roots) if not _missing(f, spec)), None)


def not_found(name: str, roots: list[Path]) -> FileNotFoundError:
    """The error for a dataset whose files are not there: every file expected, and each
    folder looked in with what it lacks."""
    spec = SPECS[name]
    looked = []
    for folder in candidates(name, roots):
        if not folder.is_dir():
            looked.append(f"{str(folder)!r} (no such folder)")
        else:
            looked.append(f"{str(folder)!r} (lacks {', '.join(_missing(folder, spec))})")
    return FileNotFoundError(
        f"dataset {name!r}: OGB's files were not found (nothing is downloaded). Expected "
        f"in the dataset folder: {', '.join(spec.files)}. Looked in: {'; '.join(looked)}. "
        f"Put the folder ogb.nodeproppred.PygNodePropPredDataset({name!r}, root) leaves "
        f"in root (ogb downloads it) under the data root or the shared datasets folder.")


def _read_csv(path: Path, dtype: type) -> np.ndarray:
    """A headerless csv(.gz) as a 2-D array; a ValueError names the file if it is not
    numbers."""
    try:
        return np.loadtxt(path, delimiter=",", dtype=dtype, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{str(path)!r} is not a csv file of numbers: {exc}") from None


def _one_number(path: Path) -> int:
    values = _read_csv(path, np.int64).reshape(-1)
    if values.size != 1:
        raise ValueError(f"{str(path)!r} must hold one number (ogbn datasets are one graph), "
                         f"got {values.size}")
    return int(values[0])


def _masks(folder: Path, spec: Spec, num_nodes: int) -> dict[str, Tensor]:
    """The official split as [N] bool masks."""
    out = {}
    for part, key in zip(_PARTS, ("train_mask", "val_mask", "test_mask")):
        path = folder / f"split/{spec.split}/{part}.csv.gz"
        index = torch.from_numpy(_read_csv(path, np.int64).reshape(-1))
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= num_nodes):
            raise ValueError(f"{str(path)!r} holds node ids outside [0, {num_nodes})")
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[index] = True
        out[key] = mask
    return out


def _with_inverse(edge: np.ndarray) -> np.ndarray:
    """[2, 2E]: each column of ``edge`` [2, E] followed by its reverse, as OGB's
    ``add_inverse_edge`` orders them."""
    both = np.repeat(edge, 2, axis=1)
    both[0, 1::2] = edge[1]
    both[1, 1::2] = edge[0]
    return both


def _check_edges(edge: np.ndarray, num_nodes: int, path: Path) -> None:
    if edge.size and (edge.min() < 0 or edge.max() >= num_nodes):
        raise ValueError(f"{str(path)!r} holds node ids outside [0, {num_nodes})")


def _convert_csv(folder: Path, spec: Spec) -> dict[str, Tensor]:
    raw = folder / "raw"
    num_nodes = _one_number(raw / "num-node-list.csv.gz")
    num_edges = _one_number(raw / "num-edge-list.csv.gz")
    edge = _read_csv(raw / "edge.csv.gz", np.int64)
    if edge.shape != (num_edges, 2):
        raise ValueError(f"{str(raw / 'edge.csv.gz')!r} has shape {edge.shape}, "
                         f"num-edge-list.csv.gz says ({num_edges}, 2)")
    edge = np.ascontiguousarray(edge.T)
    _check_edges(edge, num_nodes, raw / "edge.csv.gz")
    if spec.add_inverse_edge:
        edge = _with_inverse(edge)
    x = _read_csv(raw / "node-feat.csv.gz", np.float32)
    y = _read_csv(raw / "node-label.csv.gz", np.int64)
    for key, value, file in (("x", x, "node-feat"), ("y", y, "node-label")):
        if value.shape[0] != num_nodes:
            raise ValueError(f"{str(raw / (file + '.csv.gz'))!r} has {value.shape[0]} rows, "
                             f"num-node-list.csv.gz says {num_nodes} nodes")
    return {"x": torch.from_numpy(x), "y": torch.from_numpy(y.reshape(-1)),
            "edge_index": torch.from_numpy(edge), **_masks(folder, spec, num_nodes)}


def _convert_binary(folder: Path, spec: Spec) -> dict[str, Tensor]:
    raw = folder / "raw"
    with np.load(raw / "data.npz") as graph:
        edge = graph["edge_index"].astype(np.int64, copy=False)
        x = graph["node_feat"].astype(np.float32, copy=False)
    num_nodes = x.shape[0]
    _check_edges(edge, num_nodes, raw / "data.npz")
    with np.load(raw / "node-label.npz") as labels:
        label = labels["node_label"].reshape(-1)
    if label.shape[0] != num_nodes:
        raise ValueError(f"{str(raw / 'node-label.npz')!r} has {label.shape[0]} labels for "
                         f"{num_nodes} nodes")
    y = np.where(np.isnan(label), -1, label).astype(np.int64)
    return {"x": torch.from_numpy(x), "y": torch.from_numpy(y),
            "edge_index": torch.from_numpy(edge), **_masks(folder, spec, num_nodes)}


def _file_stats(folder: Path, spec: Spec) -> dict[str, list[int]]:
    stats = {}
    for f in spec.files:
        st = os.stat(folder / f)
        stats[f] = [st.st_size, st.st_mtime_ns]
    return stats


def _key(folder: Path, spec: Spec) -> dict:
    return {"dataset": spec.name, "converter": CONVERTER_VERSION,
            "folder": str(folder.resolve()), "files": _file_stats(folder, spec)}


def cache_path(name: str, root: Path) -> Path:
    return Path(root) / "ogb" / f"{name}.pt"


def _check(tensors: dict[str, Tensor]) -> bool:
    if set(tensors) != {"x", "y", "edge_index", "train_mask", "val_mask", "test_mask"}:
        return False
    n = tensors["x"].size(0)
    return (tensors["x"].dim() == 2 and tensors["y"].shape == (n,)
            and tensors["edge_index"].dim() == 2 and tensors["edge_index"].size(0) == 2
            and all(tensors[m].shape == (n,) for m in ("train_mask", "val_mask", "test_mask")))


def load(name: str, roots: list[Path], cache_root: Path) -> Data:
    """OGB dataset ``name`` from the first folder of :func:`candidates` that holds its
    files: ``x`` [N, F] float32, ``y`` [N] int64, ``edge_index`` [2, E] int64 (as
    OGB gives it, see the module's notes), and the official split as [N] bool
    ``train_mask``, ``val_mask``, ``test_mask``.

    Raises:
        FileNotFoundError: no folder holds every file (see :func:`not_found`).
        ValueError: a file's contents disagree with the others (named).
    """
    spec = SPECS[name]
    folder = find(name, roots)
    if folder is None:
        raise not_found(name, roots)
    if spec.binary:
        tensors = _convert_binary(folder, spec)
    else:
        tensors = store.load_or_build(cache_path(name, cache_root), _key(folder, spec),
                                      lambda: _convert_csv(folder, spec), _check,
                                      f"converted {name}")
    return Data(**tensors, num_nodes=tensors["x"].size(0))


def _npy_shape(archive: Path, member: str) -> tuple[int, ...]:
    """A .npz member's shape from its header alone (members may be compressed)."""
    with zipfile.ZipFile(archive) as z, z.open(member + ".npy") as f:
        version = np.lib.format.read_magic(f)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _, _ = read(f)
    return shape


def _first_line_width(path: Path) -> int:
    with gzip.open(path, "rt") as f:
        return len(f.readline().split(","))


def describe(name: str, roots: list[Path], cache_root: Path) -> dict[str, Any]:
    """Counts for listings, from the small files and headers only (no csv of features
    or edges is parsed): ``nodes``, ``edges`` (directed, as :func:`load` gives them),
    ``features``, ``classes``, ``cached`` and ``folder``; ``-`` counts and ``folder``
    None where the files are absent."""
    spec = SPECS[name]
    folder = find(name, roots)
    cached = "-" if spec.binary else ("yes" if cache_path(name, cache_root).is_file() else "no")
    if folder is None:
        return {"nodes": "-", "edges": "-", "features": "-", "classes": "-",
                "cached": cached, "folder": None}
    raw = folder / "raw"
    if spec.binary:
        nodes, features = _npy_shape(raw / "data.npz", "node_feat")
        edges = _npy_shape(raw / "data.npz", "edge_index")[1]
    else:
        nodes = _one_number(raw / "num-node-list.csv.gz")
        edges = _one_number(raw / "num-edge-list.csv.gz") * (2 if spec.add_inverse_edge else 1)
        features = _first_line_width(raw / "node-feat.csv.gz")
    return {"nodes": nodes, "edges": edges, "features": features, "classes": spec.num_classes,
            "cached": cached, "folder": folder}
