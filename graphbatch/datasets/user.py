"""A user's own graph, by path: a ``torch.save``d ``Data`` (or dict of tensors), or a
folder holding ``raw/`` in the layout of one of the catalog's PyG dataset classes.

Splits: the graph's own masks where it carries all three (``train_mask``, ``val_mask``,
``test_mask``): 1-D masks are its one split (``split`` must be 0), 2-D [N, K] masks are
K split columns (``split`` picks one); else a 60/20/20 split drawn with seed ``split``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

from graphbatch.datasets import pyg_raw
from graphbatch.datasets.splits import random_split

MASKS = ("train_mask", "val_mask", "test_mask")
EXPECTED = ("a torch.save'd torch_geometric Data (or dict of tensors) with x, y and "
            "edge_index, or a folder holding raw/ with the raw files of a PyG dataset "
            f"kind graphbatch reads: {pyg_raw.ACCEPTED}")


def looks_like_path(text: str) -> bool:
    """Whether ``text`` names a file or folder rather than a catalog name: it exists, or
    holds a path separator, or starts with ``.``/``~``, or ends with ``.pt``/``.pth``."""
    return (os.path.exists(os.path.expanduser(text)) or os.sep in text or "/" in text
            or text.startswith((".", "~")) or text.endswith((".pt", ".pth")))


def _existing(path: Union[str, Path]) -> Path:
    p = Path(os.path.expanduser(str(path)))
    if not p.exists():
        raise FileNotFoundError(f"no file or folder at {str(p)!r}; expected {EXPECTED}")
    return p


def _torch_load(path: Path) -> Any:
    """``torch.load(path, weights_only=True)``, memory-mapped where the format allows.

    weights_only keeps a file from running code. A saved ``Data`` also needs PyG's
    storage classes allowed; PyG allows ``Data`` itself at import, and these are added
    the same way, for the process (``torch.serialization.safe_globals``, the scoped
    form, removes on exit what it was given, ``Data`` included, from PyG's list too).
    """
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    torch.serialization.add_safe_globals([Data, DataEdgeAttr, DataTensorAttr, GlobalStorage])
    try:
        return torch.load(path, mmap=True, weights_only=True)
    except Exception:  # noqa: BLE001 -- legacy (non-zip) files cannot be mapped; see below
        pass
    try:
        return torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any reason it cannot be read
        raise ValueError(f"{str(path)!r} cannot be read by torch.load(weights_only=True) "
                         f"({type(exc).__name__}: {exc}); expected {EXPECTED}") from None


def _checked(obj: Any, where: str) -> Data:
    """``obj`` as a ``Data`` of x [N, F] float32, y [N] int64, edge_index [2, E] int64
    and its masks as bool, checked; other attributes are left out."""
    if isinstance(obj, Data):
        obj = {k: obj[k] for k in obj.keys()}
    if not isinstance(obj, dict):
        raise ValueError(f"{where} holds a {type(obj).__name__}; expected {EXPECTED}")
    missing = [k for k in ("x", "y", "edge_index") if not isinstance(obj.get(k), Tensor)]
    if missing:
        raise ValueError(f"{where} has no tensor {', '.join(missing)} (it has "
                         f"{sorted(obj)}); a graph needs x [N, F], y [N] and edge_index [2, E]")
    x, y, edge_index = obj["x"], obj["y"], obj["edge_index"]
    if x.dim() != 2:
        raise ValueError(f"{where}: x must be [N, F], got shape {tuple(x.shape)}")
    n = x.size(0)
    if y.dim() == 2 and y.size(1) == 1:  # OGB-style [N, 1] labels
        y = y.view(-1)
    if y.shape != (n,) or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"{where}: y must be [N] = [{n}] integer class labels, got shape "
                         f"{tuple(y.shape)} and dtype {y.dtype}")
    if (edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_index.dtype.is_floating_point
            or edge_index.dtype == torch.bool):
        raise ValueError(f"{where}: edge_index must be [2, E] integer, got shape "
                         f"{tuple(edge_index.shape)} and dtype {edge_index.dtype}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        raise ValueError(f"{where}: edge_index holds node ids outside [0, {n}) "
                         f"(x has {n} rows)")
    out = Data(x=x.float(), y=y.long(), edge_index=edge_index.long(), num_nodes=n)
    present = [m for m in MASKS if obj.get(m) is not None]
    if present and len(present) < 3:
        raise ValueError(f"{where} has {', '.join(present)} but not "
                         f"{', '.join(m for m in MASKS if m not in present)}: give all three "
                         "masks, or none for a seeded 60/20/20 split")
    for m in present:
        mask = obj[m]
        if mask.dim() not in (1, 2) or mask.size(0) != n or mask.dtype.is_floating_point:
            raise ValueError(f"{where}: {m} must be [N] or [N, K] bool (N = {n}), got shape "
                             f"{tuple(mask.shape)} and dtype {mask.dtype}")
        out[m] = mask.bool()
    if present and len({out[m].shape for m in MASKS}) != 1:
        raise ValueError(f"{where}: the masks differ in shape: "
                         f"{[tuple(out[m].shape) for m in MASKS]}")
    return out


def with_split(data: Data, split: int, where: str) -> Data:
    """``data`` with 1-D masks of split ``split``: its own (1-D: the one split; 2-D:
    column ``split``), or else ``random_split(N, seed=split)``."""
    if not isinstance(split, int) or isinstance(split, bool):
        raise TypeError(f"split must be an int, got {split!r}")
    if data.get("train_mask") is None:
        if split < 0:
            raise ValueError(f"split must be >= 0 for {where} (the seed of its random "
                             f"60/20/20 split), got {split}")
        data.train_mask, data.val_mask, data.test_mask = random_split(data.num_nodes, seed=split)
        return data
    if data.train_mask.dim() == 1:
        if split != 0:
            raise ValueError(f"split must be 0 for {where} (it carries one split), got {split}")
        return data
    k = data.train_mask.size(1)
    if not 0 <= split < k:
        raise ValueError(f"split must be 0 to {k - 1} for {where} ({k} split columns), "
                         f"got {split}")
    for m in MASKS:
        data[m] = data[m][:, split].clone()
    return data


def _processed_dir(raw: Path, layout: pyg_raw.Layout, root: Path) -> Path:
    """Where PyG writes what it makes of ``raw``: under the data root, in a folder named
    by the raw files (path, names, sizes, times), so changed files are processed anew
    and the user's folder is never written to."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{raw.resolve()}|{layout.cls}|{layout.pyg_name}".encode())
    for name in layout.files:
        st = (raw / name).stat()
        h.update(f"|{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return Path(root) / "user" / h.hexdigest()


def _raw_folder(folder: Path) -> Path:
    raw = folder / "raw"
    if not raw.is_dir():
        raise FileNotFoundError(f"folder {str(folder)!r} has no raw/ folder; expected "
                                f"{EXPECTED}")
    return raw


def load(path: Union[str, Path], root: Path, split: int = 0) -> Data:
    """The graph at ``path`` with 1-D bool masks of split ``split`` (see the module's
    notes): ``x`` [N, F] float32, ``y`` [N] int64, ``edge_index`` [2, E] int64. PyG
    processes a raw folder once, into a folder under ``root``.

    Raises:
        FileNotFoundError: nothing at ``path``, no ``raw/`` in a folder, or a raw file
            missing (each named with the path).
        ValueError: a file or folder of no accepted kind, a graph missing x, y or
            edge_index or with inconsistent shapes, or a split it does not have.
    """
    p = _existing(path)
    if p.is_dir():
        raw = _raw_folder(p)
        layout = pyg_raw.detect(raw)
        data = pyg_raw.read(layout.cls, layout.pyg_name, p, repr(str(p)), raw, raw_dir=raw,
                            processed_dir=_processed_dir(raw, layout, root))
        data = _checked(data, f"the graph PyG made of {str(raw)!r}")
    else:
        data = _checked(_torch_load(p), repr(str(p)))
    return with_split(data, split, repr(str(p)))


def metric_of(path: Union[str, Path]) -> str:
    """``"roc_auc"`` for a raw folder of a binary imbalanced dataset (Tolokers,
    Minesweeper, Questions), else ``"accuracy"``."""
    p = _existing(path)
    if p.is_dir():
        return pyg_raw.detect(_raw_folder(p)).metric
    return "accuracy"
