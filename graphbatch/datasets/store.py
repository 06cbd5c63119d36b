"""Built or converted graphs kept on disk: :func:`graphbatch.cache.cached`'s verified
files (keyed by what made them, checksummed, written atomically), read back memory-mapped.

``cached`` reads a file whole and hashes a copy of each tensor; at ogbn-products' size
that is 3 GB read and 2 GB more copied on every load. Here a valid file is mapped
(``torch.load(mmap=True)``: pages come from the page cache as they are touched, and
writes to the tensors stay private to the process) and hashed in place, to the very
digest ``cached`` writes. Anything else (no file, a file for other parameters, a
corrupted or unreadable one) goes to ``cached``, which warns, builds and writes.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import Tensor

from graphbatch import cache


def checksum(tensors: dict[str, Tensor]) -> str:
    """:func:`graphbatch.cache._checksum`'s digest, hashed from the tensors' memory
    without copying it (``tobytes`` would copy each tensor whole)."""
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(memoryview(tensors[name].contiguous().numpy()).cast("B"))
    return h.hexdigest()


def _full_key(key: dict) -> dict:
    return {"version": cache.FORMAT_VERSION, **key}


def _mapped(path: Path) -> Optional[dict]:
    try:
        return torch.load(path, mmap=True, weights_only=True)
    except Exception:  # noqa: BLE001 -- unreadable: cached() reports and rebuilds it
        return None


def peek(path: Path, key: dict) -> Optional[dict[str, tuple[int, ...]]]:
    """The shapes of the tensors cached at ``path`` for ``key``, or None where there is
    no such file. Reads the file's index only (no checksum): for listings."""
    saved = _mapped(path) if path.is_file() else None
    try:
        if saved is None or json.loads(saved["key"]) != _full_key(key):
            return None
        return {name: tuple(t.shape) for name, t in saved["tensors"].items()}
    except (KeyError, TypeError, ValueError):
        return None


def load_or_build(path: Path, key: dict, build: Callable[[], dict[str, Tensor]],
                  check: Callable[[dict[str, Tensor]], bool], what: str) -> dict[str, Tensor]:
    """The tensors ``build()`` returns (CPU tensors by name), memory-mapped from ``path``
    when it holds a valid file for ``key``, else built and written there by
    :func:`graphbatch.cache.cached` (which warns about a stale or corrupted file first).

    ``check`` validates shapes and dtypes; ``what`` names the data in messages. Raises
    an ``OSError`` naming the folder, before building, where it cannot be written."""
    saved = _mapped(path) if path.is_file() else None
    if saved is not None:
        try:
            tensors = saved["tensors"]
            if (json.loads(saved["key"]) == _full_key(key)
                    and saved["checksum"] == checksum(tensors) and check(tensors)):
                return tensors
        except Exception:  # noqa: BLE001 -- malformed: cached() reports and rebuilds it
            pass
    return cache.cached(path, key, build, check, what)
