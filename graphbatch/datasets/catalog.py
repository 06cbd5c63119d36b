"""The dataset catalog: names ``graphbatch bench`` and the tests can load.

``synthetic`` is built in (generated, seeded). The real graphs are read from raw files
in PyG's layout, looked up in ``GRAPHBATCH_SHARED_DATASETS`` or ``../shared/datasets``
beside the source checkout, and copied into the data root first, because PyG writes
``processed/`` beside ``raw/``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Optional

from torch_geometric.data import Data

from graphbatch.datasets.synthetic import planted_classes

_REPO = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """Where generated and copied data go: ``GRAPHBATCH_DATA_ROOT``, else ``datasets/`` of
    the source checkout, else ``~/.cache/graphbatch``."""
    env = os.environ.get("GRAPHBATCH_DATA_ROOT")
    if env:
        return Path(env)
    if (_REPO / "datasets" / "README.md").is_file():
        return _REPO / "datasets"
    return Path.home() / ".cache" / "graphbatch"


def shared_datasets() -> Optional[Path]:
    """The folder of raw real datasets, or None where there is none."""
    env = os.environ.get("GRAPHBATCH_SHARED_DATASETS")
    path = Path(env) if env else _REPO.parent / "shared" / "datasets"
    return path if path.is_dir() else None


def _pyg(cls_name: str, name: str, folder: str) -> Callable[[Path], Data]:
    def load(root: Path) -> Data:
        import torch_geometric.datasets as D

        return getattr(D, cls_name)(str(root), name)[0]

    load.folder = folder  # type: ignore[attr-defined]
    return load


REAL: dict[str, Callable[[Path], Data]] = {
    "Cora": _pyg("Planetoid", "Cora", "Cora"),
    "CiteSeer": _pyg("Planetoid", "CiteSeer", "CiteSeer"),
    "CS": _pyg("Coauthor", "CS", "CS"),
    "Physics": _pyg("Coauthor", "Physics", "Physics"),
    "Computers": _pyg("Amazon", "Computers", "Computers"),
    "Photo": _pyg("Amazon", "Photo", "Photo"),
}
NAMES = ["synthetic", *REAL]


def load(name: str, root: Optional[Path] = None) -> Data:
    """Loads a catalog dataset by name (see :data:`NAMES`)."""
    if name == "synthetic":
        return planted_classes()
    if name not in REAL:
        raise ValueError(f"dataset must be one of {NAMES}, got {name!r}")
    source = shared_datasets()
    if source is None:
        raise FileNotFoundError(
            f"dataset {name!r} needs the raw files: set GRAPHBATCH_SHARED_DATASETS to a folder "
            "in PyG's layout (see datasets/README.md)"
        )
    root = Path(root) if root is not None else data_root()
    folder = REAL[name].folder  # type: ignore[attr-defined]
    if not (root / folder / "raw").is_dir():
        shutil.copytree(source / folder / "raw", root / folder / "raw")
    return REAL[name](root)
