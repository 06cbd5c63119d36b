"""A user's own graph by path: a torch.save'd Data (its masks, 1-D or split columns, or a
seeded split), a folder in PyG's raw layout (the kind told by its file names, read in
place, processed into the data root), and errors that name the path and what was
expected. Also the harness's entry points: check_dataset and metric_of."""
from __future__ import annotations

import shutil

import pytest
import torch
from torch_geometric.data import Data

from conftest import needs_datasets
from graphbatch.datasets import NAMES, catalog, check_dataset, load, metric_of, random_split
from graphbatch.datasets.catalog import REAL, entry, source_folder
from graphbatch.datasets.pyg_raw import detect

pytestmark = pytest.mark.usefixtures("no_download")

N = 10


def _graph(**extra) -> Data:
    gen = torch.Generator().manual_seed(0)
    return Data(x=torch.randn(N, 4, generator=gen), y=torch.randint(3, (N,), generator=gen),
                edge_index=torch.randint(N, (2, 30), generator=gen), **extra)


def _masks(data):
    return data.train_mask, data.val_mask, data.test_mask


def test_saved_data_gets_a_seeded_split(tmp_path):
    path = tmp_path / "g.pt"
    graph = _graph(edge_attr=torch.ones(30, 2))
    torch.save(graph, path)
    for split in (0, 3):
        data = load(str(path), root=tmp_path / "root", split=split)
        assert torch.equal(data.x, graph.x) and torch.equal(data.edge_index, graph.edge_index)
        assert data.y.dtype == torch.int64 and data.x.dtype == torch.float32
        assert all(torch.equal(a, b) for a, b in zip(_masks(data), random_split(N, seed=split)))
    assert "edge_attr" not in data  # only what the harness reads
    assert load(path, root=tmp_path / "root").num_nodes == N  # a Path works too
    with pytest.raises(ValueError, match=r"split must be >= 0 for '.*g\.pt'"):
        load(str(path), split=-1)


def test_saved_data_keeps_its_masks(tmp_path):
    one = [torch.arange(N) < 6, (torch.arange(N) >= 6) & (torch.arange(N) < 8),
           torch.arange(N) >= 8]
    torch.save(_graph(train_mask=one[0], val_mask=one[1], test_mask=one[2]), tmp_path / "a.pt")
    data = load(str(tmp_path / "a.pt"))
    assert all(torch.equal(a, b) for a, b in zip(_masks(data), one))
    with pytest.raises(ValueError, match="split must be 0 for .* \\(it carries one split\\)"):
        load(str(tmp_path / "a.pt"), split=1)

    columns = [torch.stack([m.roll(k) for k in range(3)], 1) for m in one]  # [N, 3]
    torch.save({"x": torch.ones(N, 2, dtype=torch.float64), "y": torch.zeros(N, 1).long(),
                "edge_index": torch.tensor([[0, 1], [1, 0]]), "train_mask": columns[0],
                "val_mask": columns[1], "test_mask": columns[2]}, tmp_path / "b.pt")
    data = load(str(tmp_path / "b.pt"), split=2)
    assert data.x.dtype == torch.float32 and data.y.shape == (N,)
    assert all(torch.equal(a, b[:, 2]) and a.dim() == 1 for a, b in zip(_masks(data), columns))
    with pytest.raises(ValueError, match=r"split must be 0 to 2 for .* \(3 split columns\)"):
        load(str(tmp_path / "b.pt"), split=3)


@pytest.mark.parametrize("graph, message", [
    ({"x": torch.ones(N, 2), "edge_index": torch.zeros(2, 1).long()},
     r"has no tensor y \(it has \['edge_index', 'x'\]\)"),
    ({"y": torch.zeros(N).long()}, "has no tensor x, edge_index"),
    ({"x": torch.ones(N, 2), "y": torch.zeros(N), "edge_index": torch.zeros(2, 1).long()},
     "y must be .* integer class labels, got shape \\(10,\\) and dtype torch.float32"),
    ({"x": torch.ones(N, 2), "y": torch.zeros(N).long(), "edge_index": torch.tensor([[0], [N]])},
     r"edge_index holds node ids outside \[0, 10\)"),
    ({"x": torch.ones(N, 2), "y": torch.zeros(N).long(), "edge_index": torch.zeros(3, 1).long()},
     r"edge_index must be \[2, E\] integer, got shape \(3, 1\)"),
    ({**_graph().to_dict(), "train_mask": torch.ones(N, dtype=torch.bool)},
     "has train_mask but not val_mask, test_mask"),
    ([1, 2], "holds a list"),
])
def test_saved_graph_errors_name_the_file(tmp_path, graph, message):
    path = tmp_path / "bad.pt"
    torch.save(graph, path)
    with pytest.raises(ValueError, match=message) as info:
        load(str(path))
    assert str(path) in str(info.value)


def test_not_a_torch_file(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello")
    with pytest.raises(ValueError, match="cannot be read by torch.load") as info:
        load(str(path))
    assert str(path) in str(info.value) and "expected a torch.save'd" in str(info.value)


@pytest.mark.parametrize("text", ["missing.pt", "./nowhere", "no/such/folder"])
def test_missing_path(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"no file or folder at '.*{text[-6:]}'; "
                                                "expected a torch.save'd"):
        load(text)
    with pytest.raises(ValueError) as info:
        check_dataset(text)
    assert repr(text) in str(info.value) and all(repr(n) in str(info.value) for n in NAMES)


def test_unknown_name_is_not_a_path():
    with pytest.raises(ValueError, match="dataset must be one of .* or a path to a graph, "
                                         "got 'PubMed'"):
        load("PubMed")
    with pytest.raises(ValueError) as info:
        check_dataset("PubMed")
    assert "'PubMed'" in str(info.value) and all(repr(n) in str(info.value) for n in NAMES)


def test_check_dataset_accepts_names_and_existing_paths(tmp_path):
    assert all(check_dataset(n) == n for n in NAMES)
    assert check_dataset(str(tmp_path)) == str(tmp_path)


def _airports(folder, labels=(0, 1, 1, 2, 0, 3)):
    """A made-up Airports 'brazil' raw folder: node ids are not 0..N-1 in the files."""
    raw = folder / "raw"
    raw.mkdir(parents=True)
    ids = [10, 11, 12, 13, 14, 15]
    (raw / "labels-brazil-airports.txt").write_text(
        "node label\n" + "".join(f"{i} {c}\n" for i, c in zip(ids, labels)))
    (raw / "brazil-airports.edgelist").write_text("10 11\n11 12\n12 13\n13 14\n14 15\n15 10\n")
    return raw


def test_raw_folder_is_read_in_place(tmp_path):
    folder = tmp_path / "mine"
    raw = _airports(folder)
    before = sorted(p.name for p in folder.rglob("*"))
    root = tmp_path / "root"
    data = load(str(folder), root=root, split=1)
    assert data.num_nodes == 6 and data.y.tolist() == [0, 1, 1, 2, 0, 3]
    assert data.edge_index.size(1) == 6 and torch.equal(data.x, torch.eye(6))
    assert all(torch.equal(a, b) for a, b in zip(_masks(data), random_split(6, seed=1)))
    assert sorted(p.name for p in folder.rglob("*")) == before  # nothing written there
    assert len(list((root / "user").iterdir())) == 1
    assert metric_of(str(folder)) == "accuracy" and detect(raw).cls == "Airports"
    # Changed raw files are processed anew, not read from the old processed files.
    (raw / "labels-brazil-airports.txt").write_text(
        "node label\n" + "".join(f"{i} 1\n" for i in range(10, 16)))
    assert load(str(folder), root=root).y.tolist() == [1] * 6
    assert len(list((root / "user").iterdir())) == 2


def test_raw_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no raw/ folder; expected"):
        load(str(tmp_path))
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "edges.txt").write_text("0 1\n")
    with pytest.raises(ValueError, match=r"holds no raw files of a dataset kind .*\['edges.txt'\]"):
        load(str(tmp_path))
    (raw / "cornell_split_0.6_0.2_0.npz").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as info:
        load(str(tmp_path))
    message = str(info.value)
    assert str(raw) in message and "WebKB('Cornell')" in message
    assert "out1_graph_edges.txt" in message and "cornell_split_0.6_0.2_9.npz" in message
    (raw / "tolokers.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="holds the raw files of several datasets"):
        load(str(tmp_path))


@needs_datasets
def test_every_catalog_folder_is_detected():
    for name, e in REAL.items():
        layout = detect(source_folder(name))
        assert layout.cls == e.cls, name
        assert (layout.pyg_name or "").lower() == (e.pyg_name or "").lower(), name
        assert layout.metric == e.metric, name


@needs_datasets
@pytest.mark.parametrize("name, split", [("Cornell", 3), ("Airports-Brazil", 2), ("Cora", 0)])
def test_catalog_dataset_by_path_is_the_same(tmp_path, name, split):
    """A copy of a catalog dataset's raw folder, loaded by path: the catalog's graph and
    split (fixed columns, seeded random, Planetoid's public)."""
    folder = tmp_path / "copy"
    shutil.copytree(source_folder(name), folder / "raw")
    ours = load(str(folder), root=tmp_path / "root", split=split)
    theirs = load(name, root=tmp_path / "catalog", split=split)
    for k in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(ours[k], theirs[k]), k
    assert metric_of(str(folder)) == entry(name).metric


@needs_datasets
def test_metric_of_a_roc_auc_folder(tmp_path):
    shutil.copytree(source_folder("Tolokers"), tmp_path / "raw")
    assert metric_of(str(tmp_path)) == "roc_auc"


def test_metric_of_names_and_files(tmp_path):
    assert metric_of("Tolokers") == "roc_auc" and metric_of("synthetic-small") == "accuracy"
    torch.save(_graph(), tmp_path / "g.pt")
    assert metric_of(str(tmp_path / "g.pt")) == "accuracy"
    with pytest.raises(ValueError, match="got 'nope'"):
        metric_of("nope")
    assert catalog.metric_of(tmp_path / "g.pt") == "accuracy"
