"""The dataset catalog: names ``graphbatch bench`` and the tests can load, and paths.

- Synthetic graphs in named sizes (:mod:`graphbatch.datasets.sizes`): generated,
  seeded, cached in the data root after the first build.
- The real graphs, read from raw files in PyG's layout, looked up in
  ``GRAPHBATCH_SHARED_DATASETS`` or ``../shared/datasets`` beside the source checkout,
  and copied into the data root first (again when the copy there is incomplete),
  because PyG writes ``processed/`` beside ``raw/``.
- OGB node datasets (:mod:`graphbatch.datasets.ogb`), read from OGB's own files in the
  data root or the shared folder.
- A user's own graph by path (:mod:`graphbatch.datasets.user`).

Nothing is downloaded: a missing file is an error naming it and where it was looked for.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from torch_geometric.data import Data

from graphbatch.datasets import ogb, pyg_raw, sizes, user
from graphbatch.datasets.splits import random_split

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


#: How a dataset's train/val/test masks are chosen: the masks PyG gives (one split),
#: the dataset's own fixed split columns, a seeded 60/20/20 draw, or OGB's official split.
PUBLIC, FIXED, RANDOM, OFFICIAL = "public", "fixed", "random", "official"
#: Where a dataset comes from: PyG's raw files, a generator, or OGB's files.
PYG, GENERATED, OGB = "pyg", "generated", "ogb"


@dataclass(frozen=True)
class Entry:
    """One dataset of the catalog.

    For PyG datasets, ``folder`` holds ``raw/``, both in the shared folder and in the
    data root; the PyG class is given ``folder``'s parent and ``pyg_name``, or
    ``folder`` itself where the class takes no name (``Actor``), which puts ``raw/``
    where the shared folder has it. For generated ones ``cls`` is the generator; for
    OGB ones ``split_name`` is the official split's folder.
    """

    name: str
    cls: str
    pyg_name: Optional[str]
    folder: str
    split: str
    num_splits: Optional[int] = 1  # None: any seed of the random split
    metric: str = "accuracy"
    source: str = PYG
    split_name: Optional[str] = None

    def describe_split(self) -> str:
        """The split as the ``graphbatch datasets`` table shows it."""
        if self.split == FIXED:
            return f"fixed, {self.num_splits} given"
        if self.split == OFFICIAL:
            return f"official ({self.split_name})"
        return "public" if self.split == PUBLIC else "random 60/20/20"


def _random(name: str, cls: str, pyg_name: Optional[str], folder: str) -> Entry:
    return Entry(name, cls, pyg_name, folder, RANDOM, num_splits=None)


def _fixed(name: str, cls: str, pyg_name: Optional[str], folder: str,
           metric: str = "accuracy") -> Entry:
    return Entry(name, cls, pyg_name, folder, FIXED, num_splits=10, metric=metric)


_ENTRIES = [
    Entry("Cora", "Planetoid", "Cora", "Cora", PUBLIC),
    Entry("CiteSeer", "Planetoid", "CiteSeer", "CiteSeer", PUBLIC),
    _random("Cora_ML", "CitationFull", "Cora_ML", "CitationFull/cora_ml"),
    _random("CiteSeer-full", "CitationFull", "CiteSeer", "CitationFull/citeseer"),
    _random("DBLP", "CitationFull", "DBLP", "CitationFull/dblp"),
    _random("Computers", "Amazon", "Computers", "Computers"),
    _random("Photo", "Amazon", "Photo", "Photo"),
    _random("CS", "Coauthor", "CS", "CS"),
    _random("Physics", "Coauthor", "Physics", "Physics"),
    _fixed("Actor", "Actor", None, "Actor"),
    _fixed("Cornell", "WebKB", "Cornell", "WebKB/cornell"),
    _fixed("Texas", "WebKB", "Texas", "WebKB/texas"),
    _fixed("Wisconsin", "WebKB", "Wisconsin", "WebKB/wisconsin"),
    # Both are binary and imbalanced; their paper (Platonov et al., 2023) reports ROC-AUC.
    _fixed("Tolokers", "HeterophilousGraphDataset", "Tolokers", "Heterophilous/tolokers",
           metric="roc_auc"),
    _fixed("Minesweeper", "HeterophilousGraphDataset", "Minesweeper",
           "Heterophilous/minesweeper", metric="roc_auc"),
    _random("Airports-USA", "Airports", "USA", "Airports/usa"),
    _random("Airports-Brazil", "Airports", "Brazil", "Airports/brazil"),
    _random("Airports-Europe", "Airports", "Europe", "Airports/europe"),
]
REAL: dict[str, Entry] = {e.name: e for e in _ENTRIES}
#: The synthetic graphs: ``synthetic`` (``planted_classes()``, whose own seeded 60/20/20
#: masks are its one split) and the other sizes (``planted_graph``, a 60/20/20 split
#: drawn with seed ``split``).
SYNTHETICS: dict[str, Entry] = {
    name: Entry(name, size.generator, None, "synthetic", RANDOM,
                num_splits=1 if size.has_masks else None, source=GENERATED)
    for name, size in sizes.SIZES.items()}
SYNTHETIC = SYNTHETICS["synthetic"]
OGBS: dict[str, Entry] = {
    name: Entry(name, "ogb", None, spec.folders[0], OFFICIAL, metric=spec.metric, source=OGB,
                split_name=spec.split)
    for name, spec in ogb.SPECS.items()}
#: Every catalog name: synthetic sizes, the real PyG datasets, OGB's (present or not).
NAMES = [*SYNTHETICS, *REAL, *OGBS]


def entry(name: str) -> Entry:
    """The catalog entry of ``name``; a ValueError lists the known names."""
    for table in (SYNTHETICS, REAL, OGBS):
        if name in table:
            return table[name]
    raise ValueError(f"dataset must be one of {NAMES} or a path to a graph, got {name!r}")


def _read(e: Entry, root: Path, source: Path) -> Data:
    return pyg_raw.read(e.cls, e.pyg_name, root / e.folder, repr(e.name), source)


def _check_split(e: Entry, split: int) -> None:
    if not isinstance(split, int) or isinstance(split, bool):
        raise TypeError(f"split must be an int, got {split!r}")
    if e.num_splits is None:
        if split < 0:
            raise ValueError(f"split must be >= 0 for {e.name!r} (the seed of its random "
                             f"60/20/20 split), got {split}")
    elif not 0 <= split < e.num_splits:
        valid = "0" if e.num_splits == 1 else f"0 to {e.num_splits - 1}"
        raise ValueError(f"split must be {valid} for {e.name!r} ({e.describe_split()} "
                         f"split), got {split}")


def _with_split(e: Entry, data: Data, split: int) -> Data:
    """``data`` with 1-D train/val/test masks of split ``split``."""
    if e.split == RANDOM:
        data.train_mask, data.val_mask, data.test_mask = random_split(data.num_nodes, seed=split)
    elif e.split == FIXED:
        # Checked against the data too: the entry's count is what the table promises.
        given = data.train_mask.size(1)
        if given != e.num_splits:
            raise ValueError(f"dataset {e.name!r} has {given} split columns, the catalog "
                             f"expects {e.num_splits}")
        for key in ("train_mask", "val_mask", "test_mask"):
            data[key] = data[key][:, split].clone()
    return data


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


def source_folder(name: str) -> Optional[Path]:
    """Where the raw files of real dataset ``name`` are read from, or None without a
    shared folder."""
    shared = shared_datasets()
    return None if shared is None else shared / entry(name).folder / "raw"


def _root(root: Optional[Union[str, Path]]) -> Path:
    return Path(root) if root is not None else data_root()


def ogb_roots(root: Optional[Union[str, Path]] = None) -> list[Path]:
    """Where OGB datasets are looked for: the data root, then the shared folder."""
    shared = shared_datasets()
    return [_root(root)] if shared is None else [_root(root), shared]


def _is_name(name_or_path: object) -> bool:
    return isinstance(name_or_path, str) and any(
        name_or_path in table for table in (SYNTHETICS, REAL, OGBS))


def _as_path(name_or_path: Union[str, Path]) -> Optional[str]:
    """None for a catalog name, the path for a path; a ValueError for an unknown name."""
    if isinstance(name_or_path, Path):
        return str(name_or_path)
    if not isinstance(name_or_path, str):
        raise TypeError(f"dataset must be a name or a path, got {name_or_path!r}")
    if _is_name(name_or_path):
        return None
    if user.looks_like_path(name_or_path):
        return name_or_path
    raise ValueError(f"dataset must be one of {NAMES} or a path to a graph, "
                     f"got {name_or_path!r}")


def load(name_or_path: Union[str, Path], root: Optional[Union[str, Path]] = None,
         split: int = 0) -> Data:
    """Loads a catalog dataset by name (see :data:`NAMES`) or a graph by path, with
    ``x`` [N, F] float32, ``y`` [N] int64, ``edge_index`` [2, E] int64 and 1-D [N] bool
    ``train_mask``, ``val_mask`` and ``test_mask`` of its standard split: PyG's public
    split for Planetoid, OGB's official split, column ``split`` of the split columns a
    dataset ships (0 to 9), ``synthetic``'s own masks, or else a 60/20/20 split drawn
    with seed ``split``. Paths: see :mod:`graphbatch.datasets.user`.

    ``root`` (default :func:`data_root`) is where copies, caches and PyG's processed
    files go, and the first place OGB datasets are looked for.

    Raises:
        ValueError: an unknown name (listing the known ones) or a split out of range.
        FileNotFoundError: a dataset's files, or the path, are not there (named).
    """
    path = _as_path(name_or_path)
    if path is not None:
        return user.load(path, _root(root), split)
    name = name_or_path
    e = entry(name)
    _check_split(e, split)
    if e.source == GENERATED:
        return sizes.load(name, _root(root), split)
    if e.source == OGB:
        return ogb.load(name, ogb_roots(root), _root(root))
    shared = shared_datasets()
    if shared is None:
        raise FileNotFoundError(
            f"dataset {name!r} needs its raw files: {no_shared_datasets_reason()}")
    source = shared / e.folder / "raw"
    if not source.is_dir():
        raise FileNotFoundError(f"dataset {name!r}: the shared datasets {str(shared)!r} have no "
                                f"{e.folder}/raw folder")
    root = _root(root)
    _copy(source, root / e.folder / "raw")
    return _with_split(e, _read(e, root, source), split)


def metric_of(name_or_path: Union[str, Path]) -> str:
    """The standard metric of a catalog dataset or of the graph at a path:
    ``"accuracy"`` or ``"roc_auc"``."""
    path = _as_path(name_or_path)
    return entry(name_or_path).metric if path is None else user.metric_of(path)


def check_dataset(text: str) -> str:
    """``text`` itself when it is a catalog name or an existing path (an argparse
    ``type``), else a ValueError listing every known name."""
    if _is_name(text) or os.path.exists(os.path.expanduser(text)):
        return text
    if user.looks_like_path(text):
        raise ValueError(f"no file or folder at {text!r}; a dataset is one of {NAMES}, or "
                         f"a path to {user.EXPECTED}")
    raise ValueError(f"unknown dataset {text!r}: not one of {NAMES}, nor an existing path")
