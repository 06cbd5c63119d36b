"""On-disk caches (graphbatch.cache.cached): concurrent writers, an unwritable save_dir
found before the computation, and a failed write that keeps the computed result."""
from __future__ import annotations

import os
import threading

import pytest
import torch

from conftest import make_graph
from graphbatch import ClusterData, GraphSAINTNodeSampler
from graphbatch.cache import cached
from graphbatch.loader import cluster_loader
from graphbatch.sampling import saint_norm

KEY = {"what": "test"}
RESULT = {"a": torch.arange(6, dtype=torch.float32), "b": torch.tensor(3)}


def _check(t: dict) -> bool:
    return t["a"].shape == (6,)


def _fail(*args, **kwargs):
    raise AssertionError("computed, though the cache should have been used or refused first")


def _unwritable(tmp_path):
    """A folder that can never be created, even by root (who ignores permissions): its
    parent is a regular file."""
    (tmp_path / "afile").write_bytes(b"")
    return tmp_path / "afile" / "sub"


def test_threads_writing_the_same_cache_all_succeed(tmp_path, monkeypatch):
    """Every thread computes, then all save before any renames (a barrier in torch.save),
    the order in which a temporary name shared by the threads fails."""
    n = 4
    path = tmp_path / "cache" / "c.pt"
    barrier = threading.Barrier(n, timeout=60)  # a thread failing before it: broken, not hung
    real_save = torch.save

    def save_then_wait(*args, **kwargs):
        real_save(*args, **kwargs)
        barrier.wait()

    errors, results = [], []

    def worker():
        try:
            results.append(cached(path, KEY, lambda: dict(RESULT), _check, "test"))
        except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
            errors.append(exc)

    with monkeypatch.context() as m:
        m.setattr(torch, "save", save_then_wait)
        threads = [threading.Thread(target=worker) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    assert len(results) == n
    assert os.listdir(path.parent) == ["c.pt"]  # no temporary file left behind
    loaded = cached(path, KEY, _fail, _check, "test")
    assert loaded.keys() == RESULT.keys()
    assert all(torch.equal(loaded[k], RESULT[k]) for k in RESULT)


def test_unwritable_folder_is_refused_before_computing(tmp_path):
    folder = _unwritable(tmp_path)
    with pytest.raises(OSError, match="save_dir") as info:
        cached(folder / "c.pt", KEY, _fail, _check, "test")
    assert str(folder) in str(info.value)


@pytest.mark.parametrize("step", ["save", "replace"])
def test_failed_write_warns_and_returns_the_result(tmp_path, monkeypatch, step):
    path = tmp_path / "c.pt"
    calls = []

    def compute():
        calls.append(1)
        return dict(RESULT)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(*((torch, "save") if step == "save" else (os, "replace")), disk_full)
    with pytest.warns(UserWarning, match="could not write") as record:
        out = cached(path, KEY, compute, _check, "test")
    assert str(path) in str(record[0].message)
    assert calls == [1]
    assert all(torch.equal(out[k], RESULT[k]) for k in RESULT)
    assert os.listdir(tmp_path) == []  # the temporary file is removed


def test_saint_unwritable_save_dir_fails_before_presampling(tmp_path, monkeypatch):
    folder = _unwritable(tmp_path)
    monkeypatch.setattr(saint_norm, "estimate", _fail)
    with pytest.raises(OSError, match="save_dir") as info:
        GraphSAINTNodeSampler(make_graph(), batch_size=40, num_steps=2, sample_coverage=5,
                              save_dir=str(folder), log=False)
    assert str(folder) in str(info.value)


def test_cluster_unwritable_save_dir_fails_before_metis(tmp_path, monkeypatch):
    folder = _unwritable(tmp_path)
    monkeypatch.setattr(cluster_loader, "metis_partition", _fail)
    with pytest.raises(OSError, match="save_dir") as info:
        ClusterData(make_graph(), num_parts=4, save_dir=str(folder), log=False)
    assert str(folder) in str(info.value)
