"""OGB node datasets from OGB's own on-disk layout, written here in miniature (a few
nodes): edges as OGB gives them (arxiv directed, products with OGB's inverse edges),
official splits as 1-D masks, papers100M's binary files, the converted graph cached,
and every missing file named with the folders looked in."""
from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
import torch

from graphbatch.cli import datasets_cmd
from graphbatch.datasets import catalog, load, ogb

pytestmark = pytest.mark.usefixtures("no_download")

N = 7
EDGES = np.array([[0, 1], [1, 2], [2, 0], [3, 4], [5, 6], [6, 5], [4, 0]])
X = np.round(np.arange(N * 3, dtype=np.float32).reshape(N, 3) / 7 - 1, 6)
Y = np.array([3, 0, 1, 3, 2, 0, 1])
SPLIT = {"train": [0, 2, 4], "valid": [1, 5], "test": [3, 6]}


def _csv(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.asarray(rows)
    with gzip.open(path, "wt") as f:
        for row in rows.reshape(len(rows), -1):
            f.write(",".join(str(v) for v in row) + "\n")


def write_csv_dataset(folder, split_name: str) -> None:
    """OGB's csv layout (arxiv, products): no headers, one graph."""
    raw = folder / "raw"
    _csv(raw / "edge.csv.gz", EDGES)
    _csv(raw / "node-feat.csv.gz", X)
    _csv(raw / "node-label.csv.gz", Y.reshape(-1, 1))
    _csv(raw / "num-node-list.csv.gz", [N])
    _csv(raw / "num-edge-list.csv.gz", [len(EDGES)])
    for part, ids in SPLIT.items():
        _csv(folder / "split" / split_name / f"{part}.csv.gz", ids)


def write_papers(folder) -> None:
    """papers100M's binary layout: data.npz, node-label.npz with NaN for unlabeled."""
    raw = folder / "raw"
    raw.mkdir(parents=True)
    np.savez_compressed(raw / "data.npz", edge_index=EDGES.T, node_feat=X,
                        num_nodes_list=np.array([N]), num_edges_list=np.array([len(EDGES)]),
                        node_year=np.zeros((N, 1), dtype=np.int64))
    label = Y.astype(np.float32).reshape(-1, 1)
    label[[1, 5]] = np.nan
    np.savez_compressed(raw / "node-label.npz", node_label=label)
    for part, ids in {"train": [0, 2, 4], "valid": [3], "test": [6]}.items():
        _csv(folder / "split" / "time" / f"{part}.csv.gz", ids)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A data root and an empty shared folder (no real datasets), both fresh."""
    root, shared = tmp_path / "root", tmp_path / "shared"
    root.mkdir()
    shared.mkdir()
    monkeypatch.setenv("GRAPHBATCH_DATA_ROOT", str(root))
    monkeypatch.setenv("GRAPHBATCH_SHARED_DATASETS", str(shared))
    return root, shared


def _masks(data):
    return {part: torch.nonzero(m).view(-1).tolist() for part, m in
            zip(SPLIT, (data.train_mask, data.val_mask, data.test_mask))}


def test_arxiv_is_read_as_ogb_stores_it(env):
    root, _ = env
    write_csv_dataset(root / "ogbn_arxiv", "time")
    data = load("ogbn-arxiv")
    assert torch.equal(data.edge_index, torch.from_numpy(EDGES.T))  # directed, in file order
    assert data.x.dtype == torch.float32 and torch.equal(data.x, torch.from_numpy(X))
    assert data.y.dtype == torch.int64 and torch.equal(data.y, torch.from_numpy(Y))
    for m in (data.train_mask, data.val_mask, data.test_mask):
        assert m.dtype == torch.bool and m.shape == (N,)
    assert _masks(data) == SPLIT and data.num_nodes == N


def test_products_gets_ogbs_inverse_edges(env):
    root, _ = env
    write_csv_dataset(root / "ogbn_products", "sales_ranking")
    ei = load("ogbn-products").edge_index
    assert ei.shape == (2, 2 * len(EDGES))
    assert torch.equal(ei[:, 0::2], torch.from_numpy(EDGES.T))
    assert torch.equal(ei[:, 1::2], torch.from_numpy(EDGES.T).flip(0))


def test_papers100m_binary_layout(env):
    root, _ = env
    write_papers(root / "ogbn_papers100M")
    data = load("ogbn-papers100M")
    assert torch.equal(data.edge_index, torch.from_numpy(EDGES.T))
    assert torch.equal(data.x, torch.from_numpy(X))
    expected = torch.from_numpy(Y).clone()
    expected[[1, 5]] = -1  # unlabeled
    assert data.y.dtype == torch.int64 and torch.equal(data.y, expected)
    assert _masks(data) == {"train": [0, 2, 4], "valid": [3], "test": [6]}
    assert not (root / "ogb").exists()  # binary already: not converted to a cache


@pytest.mark.parametrize("folder", ["ogbn_arxiv", "ogbn_arxiv_pyg"])
def test_found_in_the_shared_folder(env, folder):
    root, shared = env
    write_csv_dataset(shared / folder, "time")
    assert load("ogbn-arxiv").num_nodes == N
    assert (root / "ogb" / "ogbn-arxiv.pt").is_file()  # the cache goes to the data root


def test_converted_graph_is_cached(env, monkeypatch):
    root, _ = env
    folder = root / "ogbn_arxiv"
    write_csv_dataset(folder, "time")
    first = load("ogbn-arxiv")
    with monkeypatch.context() as m:
        def no_parse(*args, **kwargs):
            raise AssertionError("parsed the csv files again")

        m.setattr(ogb, "_read_csv", no_parse)
        again = load("ogbn-arxiv")
    assert all(torch.equal(first[k], again[k]) for k in ("x", "y", "edge_index", "train_mask"))
    # A changed raw file is converted anew (its size and time are the key).
    labels = folder / "raw" / "node-label.csv.gz"
    _csv(labels, (Y.reshape(-1, 1) + 1))
    os.utime(labels, ns=(1, 1))
    with pytest.warns(UserWarning, match="does not match"):
        assert torch.equal(load("ogbn-arxiv").y, torch.from_numpy(Y) + 1)


def test_missing_file_is_named_with_its_folder(env):
    root, shared = env
    folder = root / "ogbn_arxiv"
    write_csv_dataset(folder, "time")
    (folder / "raw" / "node-label.csv.gz").unlink()
    with pytest.raises(FileNotFoundError) as info:
        load("ogbn-arxiv")
    message = str(info.value)
    assert f"{str(folder)!r} (lacks raw/node-label.csv.gz)" in message
    assert f"{str(shared / 'ogbn_arxiv')!r} (no such folder)" in message


@pytest.mark.parametrize("name", list(ogb.SPECS))
def test_absent_dataset_names_every_file_and_folder(env, name):
    root, shared = env
    spec = ogb.SPECS[name]
    with pytest.raises(FileNotFoundError) as info:
        load(name)
    message = str(info.value)
    assert all(f in message for f in spec.files)
    for base in (root, shared):
        for folder in spec.folders:
            assert repr(str(base / folder)) in message
    assert "nothing is downloaded" in message
    assert len(spec.files) == (5 if name == "ogbn-papers100M" else 8)


def test_split_is_the_official_one(env):
    root, _ = env
    write_csv_dataset(root / "ogbn_arxiv", "time")
    with pytest.raises(ValueError, match=r"split must be 0 for 'ogbn-arxiv' \(official \(time\)"):
        load("ogbn-arxiv", split=1)


def test_bad_contents_are_named(env):
    root, _ = env
    folder = root / "ogbn_arxiv"
    write_csv_dataset(folder, "time")
    _csv(folder / "split" / "time" / "test.csv.gz", [3, N])
    with pytest.raises(ValueError, match=r"test.csv.gz' holds node ids outside \[0, 7\)"):
        load("ogbn-arxiv")
    write_csv_dataset(folder, "time")
    _csv(folder / "raw" / "num-node-list.csv.gz", [N + 1])
    with pytest.raises(ValueError, match="node-feat.csv.gz' has 7 rows, num-node-list.csv.gz "
                                         "says 8 nodes"):
        load("ogbn-arxiv")


def test_listing_counts_from_the_small_files(env, monkeypatch):
    root, _ = env
    write_csv_dataset(root / "ogbn_products", "sales_ranking")
    write_papers(root / "ogbn_papers100M")

    def no_parse(*args, **kwargs):
        raise AssertionError("parsed a whole csv file to list it")

    monkeypatch.setattr(ogb, "_convert_csv", no_parse)
    monkeypatch.setattr(ogb, "_convert_binary", no_parse)
    rows = {n: datasets_cmd.row(n) for n in ogb.SPECS}
    products, papers, arxiv = rows["ogbn-products"], rows["ogbn-papers100M"], rows["ogbn-arxiv"]
    assert [products[k] for k in ("nodes", "edges", "features", "classes")] == [N, 14, 3, 47]
    assert products["present"] == "yes" and products["cached"] == "no"
    assert products["source"] == str(root / "ogbn_products")
    assert products["split"] == "official (sales_ranking)"
    assert [papers[k] for k in ("nodes", "edges", "features", "classes")] == [N, 7, 3, 172]
    assert papers["cached"] == "-"
    assert arxiv["present"] == "no" and arxiv["nodes"] == arxiv["edges"] == "-"
    assert arxiv["source"] == str(root / "ogbn_arxiv")


def test_entries():
    for name in ogb.SPECS:
        assert catalog.metric_of(name) == "accuracy" and name in catalog.NAMES
        assert catalog.entry(name).num_splits == 1
