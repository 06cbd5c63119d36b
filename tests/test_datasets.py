"""The dataset catalog's copy of the shared raw files: an incomplete copy is made again,
never completed by a download, and a missing shared folder is named in the error."""
from __future__ import annotations

import shutil

import pytest
import torch

from conftest import needs_datasets
from graphbatch.datasets import load, shared_datasets

pytestmark = pytest.mark.usefixtures("no_download")


def _same(a, b) -> bool:
    return all(torch.equal(a[k], b[k]) for k in ("x", "y", "edge_index", "train_mask",
                                                 "val_mask", "test_mask"))


@pytest.fixture(scope="module")
def clean_cora(tmp_path_factory):
    return load("Cora", root=tmp_path_factory.mktemp("clean"))


@needs_datasets
@pytest.mark.parametrize("present", ["one", "all"])
def test_incomplete_raw_copy_is_made_again(tmp_path, clean_cora, present):
    """A raw folder left by an interrupted copy: one truncated file, or all files with one
    truncated (the same names, so only the sizes tell)."""
    assert clean_cora.num_nodes == 2708
    source, raw = shared_datasets() / "Cora" / "raw", tmp_path / "Cora" / "raw"
    names = sorted(p.name for p in source.iterdir())
    raw.mkdir(parents=True)
    for name in names if present == "all" else names[:1]:
        shutil.copyfile(source / name, raw / name)
    first = raw / names[0]
    first.write_bytes(first.read_bytes()[:100])
    data = load("Cora", root=tmp_path)
    assert data.num_nodes == 2708 and _same(data, clean_cora)
    inode = raw.stat().st_ino
    load("Cora", root=tmp_path)
    assert raw.stat().st_ino == inode  # a complete copy is kept
    assert sorted(p.name for p in (tmp_path / "Cora").iterdir()) == ["processed", "raw"]


@needs_datasets
def test_interrupted_copy_leaves_no_raw_folder(tmp_path, monkeypatch, clean_cora):
    """The disk fills after the first file: nothing that looks like a raw folder is left,
    and the next load copies again."""
    real_copyfile = shutil.copyfile
    copied = []

    def copy_then_fail(src, dst, **kwargs):
        if copied:
            raise OSError(28, "No space left on device")
        copied.append(src)
        return real_copyfile(src, dst, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(shutil, "copyfile", copy_then_fail)
        with pytest.raises(OSError):
            load("Cora", root=tmp_path)
    assert copied and list((tmp_path / "Cora").iterdir()) == []
    assert _same(load("Cora", root=tmp_path), clean_cora)


@needs_datasets
def test_raw_file_missing_from_the_shared_folder(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shutil.copytree(shared_datasets() / "Cora" / "raw", shared / "Cora" / "raw")
    (shared / "Cora" / "raw" / "ind.cora.graph").unlink()
    monkeypatch.setenv("GRAPHBATCH_SHARED_DATASETS", str(shared))
    with pytest.raises(FileNotFoundError) as info:
        load("Cora", root=tmp_path / "root")
    message = str(info.value)
    assert "ind.cora.graph" in message and str(shared / "Cora" / "raw") in message
    assert "ind.cora.x" not in message  # only the missing file is named


def test_shared_folder_variable_names_a_missing_folder(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-folder"
    monkeypatch.setenv("GRAPHBATCH_SHARED_DATASETS", str(missing))
    assert shared_datasets() is None
    with pytest.raises(FileNotFoundError) as info:
        load("Cora", root=tmp_path / "root")
    assert f"GRAPHBATCH_SHARED_DATASETS is set to {str(missing)!r}" in str(info.value)
    assert not (tmp_path / "root").exists()


def test_shared_folder_without_the_dataset(tmp_path, monkeypatch):
    (tmp_path / "shared").mkdir()
    monkeypatch.setenv("GRAPHBATCH_SHARED_DATASETS", str(tmp_path / "shared"))
    with pytest.raises(FileNotFoundError, match="have no Cora/raw folder"):
        load("Cora", root=tmp_path / "root")
