"""Stores whose rows live elsewhere: a user's PyG feature store, other ranks.

The loaders read node features through the :class:`~graphbatch.features.FeatureStore`
interface. A store that does not hold its tables (there is nothing to pin, share or
release here) implements :meth:`RowsElsewhere.gather_all`; the rest of the interface
follows from it and from its table names.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from graphbatch.features.store import FeatureStore


class RowsElsewhere(FeatureStore):
    """The :class:`FeatureStore` interface over ``gather_all``. A subclass sets
    ``num_rows`` and ``_names`` (its tables) instead of calling ``FeatureStore``'s
    constructor, and implements :meth:`gather_all`."""

    num_rows: int
    _names: list[str]
    pin = False  # nothing here to pin

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def share_memory_(self) -> "RowsElsewhere":
        return self

    def release(self) -> None:
        pass

    def gather(self, name: str, index: object, device: Optional[torch.device] = None) -> Tensor:
        if name not in self._names:
            raise KeyError(f"no table {name!r}; the store holds {self._names}")
        return self.gather_unchecked(name, self.check_index(index), device)

    def gather_unchecked(self, name: str, index: Tensor,
                         device: Optional[torch.device] = None) -> Tensor:
        return self.gather_all(index, device, [name])[name]

    def gather_all(self, index: Tensor, device: Optional[torch.device] = None,
                   names: Optional[list[str]] = None) -> dict[str, Tensor]:
        """Rows ``index`` ([n] int64, in range) of tables ``names`` (default: all),
        each ``[n, ...]`` in its table's dtype, on ``device``."""
        raise NotImplementedError
