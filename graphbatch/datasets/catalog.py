"""The dataset catalog: names ``graphbatch bench`` and the tests can load.

``synthetic`` is built in (generated, seeded). The real graphs are read from raw files
in PyG's layout, looked up in ``GRAPHBATCH_SHARED_DATASETS`` or ``../shared/datasets``
beside the source checkout, and copied into the data root first (again when the copy
there is incomplete), because PyG writes ``processed/`` beside ``raw/``. Nothing is
downloaded: a raw file missing from the shared folder is an error.
"""
from __future__ import annotations

import os
import shutil
import tempfile
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


SHARED_ENV = "GRAPHBATCH_SHARED_DATASETS"


def shared_datasets() -> Optional[Path]:
    """The folder of raw real datasets, or None where there is none (for why, see
    :func:`no_shared_datasets_reason`)."""
    env = os.environ.get(SHARED_ENV)
    path = Path(env) if env else _REPO.parent / "shared" / "datasets"
    return path if path.is_dir() else None


def no_shared_datasets_reason() -> str:
    """Why :func:`shared_datasets` finds no folder, for errors and test skips."""
    env = os.environ.get(SHARED_ENV)
    if env:
        return f"{SHARED_ENV} is set to {env!r}, which does not exist or is not a folder"
    return (f"raw datasets not found: set {SHARED_ENV} to a folder in PyG's layout, or put "
            "shared/datasets beside the repository (see datasets/README.md)")


def _pyg(cls_name: str, name: str, folder: str) -> Callable[[Path, Path], Data]:
    def load(root: Path, source: Path) -> Data:
        import torch_geometric.datasets as D

        cls = getattr(D, cls_name)

        class Offline(cls):  # type: ignore[misc, valid-type]
            # PyG calls download() for any raw file it lacks; the raw files come from
            # ``source`` only, never from the network without the user asking.
            def download(self) -> None:
                missing = sorted(Path(p).name for p in self.raw_paths if not Path(p).exists())
                raise FileNotFoundError(
                    f"dataset {name!r} needs raw files missing from {str(source)!r} "
                    f"(copied to {self.raw_dir!r}): {', '.join(missing)}")

        return Offline(str(root), name)[0]

    load.folder = folder  # type: ignore[attr-defined]
    return load


REAL: dict[str, Callable[[Path, Path], Data]] = {
    "Cora": _pyg("Planetoid", "Cora", "Cora"),
    "CiteSeer": _pyg("Planetoid", "CiteSeer", "CiteSeer"),
    "CS": _pyg("Coauthor", "CS", "CS"),
    "Physics": _pyg("Coauthor", "Physics", "Physics"),
    "Computers": _pyg("Amazon", "Computers", "Computers"),
    "Photo": _pyg("Amazon", "Photo", "Photo"),
}
NAMES = ["synthetic", *REAL]


def _sizes(folder: Path) -> dict[Path, int]:
    return {p.relative_to(folder): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def _holds(dest: Path, sizes: dict[Path, int]) -> bool:
    return dest.is_dir() and sizes.items() <= _sizes(dest).items()


def _copy(source: Path, dest: Path) -> None:
    """Makes ``dest`` hold every file of ``source`` at its size, copying when it does not
    (a copy cut short, or an empty folder). The copy goes to a temporary sibling renamed
    into place, so an interrupted one never looks complete."""
    sizes = _sizes(source)
    if _holds(dest, sizes):
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}-"))
    try:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        if not _holds(dest, sizes):  # else another process completed it meanwhile
            if dest.exists():
                shutil.rmtree(dest)
            os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load(name: str, root: Optional[Path] = None) -> Data:
    """Loads a catalog dataset by name (see :data:`NAMES`)."""
    if name == "synthetic":
        return planted_classes()
    if name not in REAL:
        raise ValueError(f"dataset must be one of {NAMES}, got {name!r}")
    shared = shared_datasets()
    if shared is None:
        raise FileNotFoundError(
            f"dataset {name!r} needs its raw files: {no_shared_datasets_reason()}")
    folder = REAL[name].folder  # type: ignore[attr-defined]
    source = shared / folder / "raw"
    if not source.is_dir():
        raise FileNotFoundError(f"dataset {name!r}: the shared datasets {str(shared)!r} have no "
                                f"{folder}/raw folder")
    root = Path(root) if root is not None else data_root()
    _copy(source, root / folder / "raw")
    return REAL[name](root, source)
