"""The dataset catalog: every real dataset of the shared folder, its standard split and
metric, and ``graphbatch datasets``."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
import torch_geometric.datasets as D

from conftest import needs_datasets
from graphbatch.cli.main import main
from graphbatch.datasets import NAMES, load, metric_of, random_split, shared_datasets
from graphbatch.datasets.catalog import REAL, entry, source_folder

pytestmark = pytest.mark.usefixtures("no_download")

#: (nodes, edges, features, classes) as the shared folder's README gives them.
STATS = {
    "Cora": (2708, 10556, 1433, 7), "CiteSeer": (3327, 9104, 3703, 6),
    "Cora_ML": (2995, 16316, 2879, 7), "CiteSeer-full": (4230, 10674, 602, 6),
    "DBLP": (17716, 105734, 1639, 4), "Computers": (13752, 491722, 767, 10),
    "Photo": (7650, 238162, 745, 8), "CS": (18333, 163788, 6805, 15),
    "Physics": (34493, 495924, 8415, 5), "Actor": (7600, 30019, 932, 5),
    "Cornell": (183, 298, 1703, 5), "Texas": (183, 325, 1703, 5),
    "Wisconsin": (251, 515, 1703, 5), "Tolokers": (11758, 1038000, 10, 2),
    "Minesweeper": (10000, 78804, 7, 2), "Airports-USA": (1190, 13599, 1190, 4),
    "Airports-Brazil": (131, 1074, 131, 4), "Airports-Europe": (399, 5995, 399, 4),
}
#: Loaded in every run; the rest (seconds each to process) only in the slow CLI test.
BIG = {"DBLP", "CS", "Physics"}
FIXED = ["Actor", "Cornell", "Texas", "Wisconsin", "Tolokers", "Minesweeper"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """One data root for the module, so each dataset is processed once."""
    return tmp_path_factory.mktemp("root")


def _check_masks(data) -> None:
    masks = (data.train_mask, data.val_mask, data.test_mask)
    for m in masks:
        assert m.dtype == torch.bool and m.shape == (data.num_nodes,) and m.any()
    assert not (masks[0] & masks[1]).any() and not (masks[0] & masks[2]).any()
    assert not (masks[1] & masks[2]).any()


SYNTHETIC = ["synthetic", "synthetic-small", "synthetic-1m", "synthetic-products"]
OGB = ["ogbn-arxiv", "ogbn-products", "ogbn-papers100M"]


def test_catalog_lists_every_dataset_of_the_readme():
    assert sorted(REAL) == sorted(STATS) and NAMES == [*SYNTHETIC, *REAL, *OGB]


@needs_datasets
def test_catalog_covers_every_shared_folder():
    """Each raw/ folder of the shared datasets belongs to exactly one catalog entry."""
    shared = shared_datasets()
    folders = sorted(str(p.parent.relative_to(shared)) for p in shared.rglob("raw"))
    assert folders == sorted(e.folder for e in REAL.values())


@needs_datasets
@pytest.mark.parametrize("name", [n for n in STATS if n not in BIG])
def test_dataset_loads_with_its_standard_split(name, root):
    data = load(name, root=root)
    nodes, edges, features, classes = STATS[name]
    assert (data.num_nodes, data.num_edges, data.num_features) == (nodes, edges, features)
    assert int(data.y.max()) + 1 == classes
    _check_masks(data)
    if entry(name).split == "public":
        assert int(data.train_mask.sum()) == 20 * classes  # Planetoid: 20 per class
        assert (int(data.val_mask.sum()), int(data.test_mask.sum())) == (500, 1000)


@needs_datasets
@pytest.mark.parametrize("name", sorted(BIG))
def test_big_dataset_has_its_raw_files(name):
    """Too slow to process in every run (the slow CLI test loads them): the files and
    the PyG class are checked instead."""
    e = entry(name)
    assert any(source_folder(name).iterdir()) and hasattr(D, e.cls)
    assert (e.split, e.metric) == ("random", "accuracy")


def _pyg_masks(name: str, root):
    """The [N, 10] masks as PyG itself gives them, read from the copy ``load`` made."""
    e = entry(name)
    folder = root / e.folder
    cls = getattr(D, e.cls)
    data = cls(str(folder))[0] if e.pyg_name is None else cls(str(folder.parent),
                                                              e.pyg_name)[0]
    return data.train_mask, data.val_mask, data.test_mask


@needs_datasets
@pytest.mark.parametrize("name", FIXED)
def test_fixed_split_is_the_column_pyg_gives(name, root):
    load(name, root=root)  # copies the raw files
    pyg = _pyg_masks(name, root)
    assert all(m.shape[1] == 10 for m in pyg)
    for k in (0, 3, 9):
        data = load(name, root=root, split=k)
        _check_masks(data)
        for ours, theirs in zip((data.train_mask, data.val_mask, data.test_mask), pyg):
            assert torch.equal(ours, theirs[:, k])


@needs_datasets
def test_random_split_is_seeded_by_split(root):
    trains = []
    for k in (0, 4):
        data = load("Photo", root=root, split=k)
        expected = random_split(data.num_nodes, seed=k)
        assert all(torch.equal(a, b) for a, b in
                   zip((data.train_mask, data.val_mask, data.test_mask), expected))
        trains.append(data.train_mask)
    assert not torch.equal(*trains)


@pytest.mark.parametrize("name, split, message", [
    ("Cornell", 10, "split must be 0 to 9 for 'Cornell' (fixed, 10 given split), got 10"),
    ("Tolokers", -1, "split must be 0 to 9 for 'Tolokers' (fixed, 10 given split), got -1"),
    ("Cora", 1, "split must be 0 for 'Cora' (public split), got 1"),
    ("synthetic", 2, "split must be 0 for 'synthetic'"),
    ("CS", -1, "split must be >= 0 for 'CS' (the seed of its random 60/20/20 split), got -1"),
])
def test_split_out_of_range(name, split, message, tmp_path):
    with pytest.raises(ValueError) as info:
        load(name, root=tmp_path / "root", split=split)
    assert message in str(info.value)
    assert not (tmp_path / "root").exists()  # refused before any copy


def test_split_of_the_wrong_type():
    with pytest.raises(TypeError, match=r"split must be an int, got '1'"):
        load("Cora", split="1")


def test_unknown_name_lists_the_known_names():
    with pytest.raises(ValueError) as info:
        load("PubMed")
    message = str(info.value)
    assert "'PubMed'" in message and all(repr(n) in message for n in NAMES)


def test_metric_table():
    metrics = {n: metric_of(n) for n in NAMES}
    assert metrics == {n: entry(n).metric for n in NAMES}
    assert {n for n, m in metrics.items() if m == "roc_auc"} == {"Tolokers", "Minesweeper"}
    assert set(metrics.values()) == {"roc_auc", "accuracy"}


@needs_datasets
def test_datasets_command_json(tmp_path, monkeypatch, capsys):
    """Two datasets present (one in a nested folder), the rest absent: every entry is a
    row, counts where present and '-' where absent."""
    shared = tmp_path / "shared"
    for name in ("Cornell", "Airports-Brazil"):
        shutil.copytree(source_folder(name), shared / entry(name).folder / "raw")
    monkeypatch.setenv("GRAPHBATCH_SHARED_DATASETS", str(shared))
    monkeypatch.setenv("GRAPHBATCH_DATA_ROOT", str(tmp_path / "root"))
    assert main(["datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == NAMES
    cornell = rows["Cornell"]
    assert (cornell["nodes"], cornell["edges"], cornell["features"],
            cornell["classes"]) == STATS["Cornell"]
    assert cornell["present"] == "yes" and cornell["metric"] == "accuracy"
    assert cornell["source"] == str(shared / "WebKB" / "cornell" / "raw")
    assert rows["Airports-Brazil"]["nodes"] == 131
    assert rows["Tolokers"]["metric"] == "roc_auc"
    cora = rows["Cora"]
    assert cora["present"] == "no" and cora["nodes"] == cora["classes"] == "-"
    assert cora["cached"] == "-"
    for name in SYNTHETIC:  # listed by their parameters, never built to be listed
        assert rows[name]["present"] == "yes" and rows[name]["cached"] == "no"
        assert str(rows[name]["edges"]).startswith("~")
    assert not (tmp_path / "root" / "synthetic").exists()
    for name in OGB:
        assert rows[name]["present"] == "no" and rows[name]["edges"] == "-"
        assert rows[name]["split"].startswith("official")


@pytest.mark.slow
@needs_datasets
def test_datasets_command_table_loads_every_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRAPHBATCH_DATA_ROOT", str(tmp_path))
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["name", "nodes"] and len(lines) == 2 + len(NAMES)
    for line in lines[2:]:
        name, *counts = line.split()[:5]
        if name in STATS:
            assert tuple(map(int, counts)) == STATS[name], name
