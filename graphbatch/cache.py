"""Verified on-disk caches of tensors: keyed by what made them, checksummed, written
atomically. A file that is unreadable, corrupted or made for another key is reported
with a warning and recomputed."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor

FORMAT_VERSION = 1


def digest(*arrays: np.ndarray) -> str:
    """A short hash of arrays' bytes (for cache keys)."""
    h = hashlib.blake2b(digest_size=16)
    for array in arrays:
        h.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return h.hexdigest()


def graph_digest(graph) -> str:
    """A hash of a :class:`~graphbatch.graph.CSCGraph`'s topology, for cache keys."""
    return digest(np.int64(graph.num_nodes).reshape(1), *graph.numpy())


def _checksum(tensors: dict[str, Tensor]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].numpy().tobytes())
    return h.hexdigest()


def _load(path: Path, key: dict, check: Callable[[dict[str, Tensor]], bool],
          what: str) -> Optional[dict]:
    try:
        saved = torch.load(path, weights_only=True)
        tensors = saved["tensors"]
        ok = (json.loads(saved["key"]) == key and saved["checksum"] == _checksum(tensors)
              and check(tensors))
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is a bad cache
        warnings.warn(f"{what} cache {str(path)!r} is unreadable ({exc}); recomputing")
        return None
    if not ok:
        warnings.warn(f"{what} cache {str(path)!r} does not match this graph and these "
                      "parameters, or is corrupted; recomputing")
        return None
    return tensors


def _check_writable(folder: Path, what: str) -> None:
    """Creates ``folder`` and raises, naming it, unless a file can be written there.

    Called before the computation, which may take minutes: finding out only when its
    result is saved would lose it, with an error from torch that names no path."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise type(exc)(
            f"cannot write the {what} cache to {str(folder)!r} (from save_dir): {exc}"
        ) from exc


def _write(path: Path, payload: dict) -> None:
    """Saves ``payload`` to ``path`` through a temporary file renamed into place, so
    readers never see a half-written file. The temporary name is unique: threads or
    processes making the same cache at once each write and rename their own."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        # Not mkstemp: its files are private (0600), and a cache folder may be shared.
        with open(tmp, "xb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cached(path: Optional[Path], key: dict, compute: Callable[[], dict[str, Tensor]],
           check: Callable[[dict[str, Tensor]], bool], what: str) -> dict[str, Tensor]:
    """``compute()`` (a dict of CPU tensors), read from ``path`` when a valid file for
    ``key`` is there, else computed and written there (unless ``path`` is None).
    ``check`` validates loaded tensors (shapes, ranges); ``what`` names the cache in
    messages. ``path`` lies in the user's ``save_dir``.

    Raises an ``OSError`` naming the folder before computing when it cannot be written;
    when writing fails after computing (a full disk), warns and returns the result."""
    key = {"version": FORMAT_VERSION, **key}
    if path is not None and path.exists():
        tensors = _load(path, key, check, what)
        if tensors is not None:
            return tensors
    if path is not None:
        _check_writable(path.parent, what)
    tensors = compute()
    if path is not None:
        try:
            _write(path, {"key": json.dumps(key), "tensors": tensors,
                          "checksum": _checksum(tensors)})
        except (OSError, RuntimeError) as exc:  # torch reports failed writes as RuntimeError
            warnings.warn(f"could not write the {what} cache {str(path)!r} ({exc}); "
                          "using the result without caching it")
    return tensors


def key_filename(prefix: str, key: dict) -> str:
    """A file name derived from ``key``."""
    return prefix + hashlib.blake2b(json.dumps(key, sort_keys=True).encode(),
                                    digest_size=8).hexdigest() + ".pt"
