"""Graphs in PyG's raw layout: which of the catalog's PyG dataset classes a ``raw/``
folder is for (told by its file names), and reading one without any download."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from torch_geometric.data import Data


@dataclass(frozen=True)
class Layout:
    """The raw files of one PyG dataset: ``files[0]`` is the one no other layout has
    (``raw/`` holding it means this layout), the rest must be there too."""

    cls: str
    pyg_name: Optional[str]  # None: the class takes no name (Actor)
    files: tuple[str, ...]
    metric: str = "accuracy"


def _geom_gcn(prefix: str) -> tuple[str, ...]:
    # Actor and WebKB share the two table files; their split files tell them apart.
    splits = [f"{prefix}_split_0.6_0.2_{i}.npz" for i in range(10)]
    return (splits[0], "out1_node_feature_label.txt", "out1_graph_edges.txt", *splits[1:])


_PLANETOID = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")

#: The layouts of the catalog's PyG classes (Planetoid's are found by file name, since
#: PyG reads any ``ind.<name>.*`` set). Tolokers, Minesweeper and Questions are binary
#: and imbalanced: their paper reports ROC-AUC.
LAYOUTS: list[Layout] = [
    *(Layout("CitationFull", n, (f"{n}.npz",))
      for n in ("cora", "cora_ml", "citeseer", "dblp", "pubmed")),
    *(Layout("Amazon", n.capitalize(), (f"amazon_electronics_{n}.npz",))
      for n in ("computers", "photo")),
    Layout("Coauthor", "CS", ("ms_academic_cs.npz",)),
    Layout("Coauthor", "Physics", ("ms_academic_phy.npz",)),
    Layout("Actor", None, _geom_gcn("film")),
    *(Layout("WebKB", n.capitalize(), _geom_gcn(n)) for n in ("cornell", "texas", "wisconsin")),
    *(Layout("HeterophilousGraphDataset", n, (f"{n}.npz",),
             "roc_auc" if n in ("minesweeper", "tolokers", "questions") else "accuracy")
      for n in ("roman_empire", "amazon_ratings", "minesweeper", "tolokers", "questions")),
    *(Layout("Airports", n.upper() if n == "usa" else n.capitalize(),
             (f"{n}-airports.edgelist", f"labels-{n}-airports.txt"))
      for n in ("usa", "brazil", "europe")),
]

#: What a raw folder may hold, for error messages.
ACCEPTED = ("Planetoid (ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}), CitationFull "
            "(<cora|cora_ml|citeseer|dblp|pubmed>.npz), Amazon (amazon_electronics_"
            "<computers|photo>.npz), Coauthor (ms_academic_<cs|phy>.npz), Actor "
            "(out1_node_feature_label.txt, out1_graph_edges.txt, film_split_0.6_0.2_<0-9>.npz), "
            "WebKB (the same with <cornell|texas|wisconsin>_split_...), HeterophilousGraphDataset "
            "(<roman_empire|amazon_ratings|minesweeper|tolokers|questions>.npz), Airports "
            "(<usa|brazil|europe>-airports.edgelist, labels-<...>-airports.txt)")


def _planetoid(raw: Path) -> list[Layout]:
    names = sorted(p.name[len("ind."):-len(".x")] for p in raw.glob("ind.*.x"))
    return [Layout("Planetoid", n, tuple(f"ind.{n}.{part}" for part in _PLANETOID))
            for n in names]


def detect(raw: Path) -> Layout:
    """The layout of folder ``raw`` (a ``raw/`` folder).

    Raises:
        ValueError: its files are of no layout, or of several (each named).
        FileNotFoundError: the layout's other files are missing (named, with ``raw``).
    """
    found = [layout for layout in [*_planetoid(raw), *LAYOUTS]
             if (raw / layout.files[0]).is_file()]
    if not found:
        present = sorted(p.name for p in raw.iterdir())[:10]
        raise ValueError(f"{str(raw)!r} holds no raw files of a dataset kind graphbatch "
                         f"reads (it has {present}); accepted: {ACCEPTED}")
    if len(found) > 1:
        kinds = ", ".join(f"{x.cls}({x.pyg_name!r}): {x.files[0]}" for x in found)
        raise ValueError(f"{str(raw)!r} holds the raw files of several datasets ({kinds}); "
                         "keep one per folder")
    layout = found[0]
    missing = [f for f in layout.files if not (raw / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{str(raw)!r} looks like {layout.cls}({layout.pyg_name!r}) "
                                f"raw files but lacks {', '.join(missing)}")
    return layout


def read(cls_name: str, pyg_name: Optional[str], folder: Path, what: str, source: Path,
         raw_dir: Optional[Path] = None, processed_dir: Optional[Path] = None) -> Data:
    """The graph PyG's ``cls_name`` makes of raw files, never downloading: a missing
    raw file is a FileNotFoundError naming it and ``source`` (where it should come from).

    The class is given ``folder``'s parent and ``pyg_name``, or ``folder`` itself where
    it takes no name. ``raw_dir`` and ``processed_dir``, where given, replace the
    folders PyG derives from that (a user's raw folder is read in place, and what PyG
    writes goes elsewhere)."""
    import torch_geometric.datasets as D

    cls = getattr(D, cls_name)

    class Offline(cls):  # type: ignore[misc, valid-type]
        # PyG calls download() for any raw file it lacks; raw files come from ``source``
        # only, never from the network without the user asking.
        def download(self) -> None:
            missing = sorted(Path(p).name for p in self.raw_paths if not Path(p).exists())
            copied = "" if Path(self.raw_dir) == source else f" (copied to {self.raw_dir!r})"
            raise FileNotFoundError(
                f"dataset {what} needs raw files missing from {str(source)!r}{copied}: "
                f"{', '.join(missing)}")

    if raw_dir is not None:
        Offline.raw_dir = property(lambda self: str(raw_dir))  # type: ignore[assignment]
    if processed_dir is not None:
        Offline.processed_dir = property(lambda self: str(processed_dir))  # type: ignore
    if pyg_name is None:
        return Offline(str(folder))[0]
    return Offline(str(folder.parent), pyg_name)[0]
