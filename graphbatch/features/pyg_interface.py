"""graphbatch's :class:`~graphbatch.features.FeatureStore` through PyG's
``torch_geometric.data.FeatureStore`` interface, so code written against PyG's remote
backends (``loader((feature_store, graph_store), ...)``, ``store['x', index]``) reads
graphbatch's tables: memory-mapped, half precision, pinned, gathered in parallel."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch_geometric.data import FeatureStore as PyGFeatureStore
from torch_geometric.data import TensorAttr

from graphbatch.features.store import FeatureStore


class PyGInterface(PyGFeatureStore):
    """The tables of ``store`` as the attributes of node type ``group_name`` (None:
    a homogeneous graph's). Reads by a tensor of ids are graphbatch's parallel gathers
    (validated); ``put_tensor`` with an index writes rows of an existing table,
    without one it adds a table; ``remove_tensor`` removes one."""

    def __init__(self, store: FeatureStore, group_name: Optional[str] = None) -> None:
        super().__init__()
        self.__dict__["store"] = store
        self.__dict__["group_name"] = group_name

    def _name(self, attr: TensorAttr) -> str:
        if attr.group_name != self.group_name:
            raise KeyError(f"no group {attr.group_name!r}; this store holds group "
                           f"{self.group_name!r}")
        if attr.attr_name not in self.store:
            raise KeyError(f"no attribute {attr.attr_name!r}; the store holds {self.store.names}")
        return attr.attr_name

    @staticmethod
    def _whole(index: object) -> bool:
        return index is None or (isinstance(index, slice) and index == slice(None))

    def _get_tensor(self, attr: TensorAttr) -> Tensor:
        name = self._name(attr)
        if self._whole(attr.index):
            return self.store[name]
        if isinstance(attr.index, slice):
            return self.store[name][attr.index]
        return self.store.gather(name, attr.index)

    def _put_tensor(self, tensor: Tensor, attr: TensorAttr) -> bool:
        if attr.group_name != self.group_name:
            raise KeyError(f"no group {attr.group_name!r}; this store holds group "
                           f"{self.group_name!r}")
        tensor = torch.as_tensor(tensor)
        if attr.attr_name not in self.store:
            if not self._whole(attr.index):
                raise KeyError(f"no attribute {attr.attr_name!r} to write rows of")
            self.store.add(attr.attr_name, tensor)
            return True
        index = (torch.arange(self.store.num_rows) if self._whole(attr.index)
                 else self.store.check_index(torch.arange(self.store.num_rows)[attr.index]
                                             if isinstance(attr.index, slice) else attr.index))
        self.store.scatter_(attr.attr_name, index, tensor)
        return True

    def _remove_tensor(self, attr: TensorAttr) -> bool:
        try:
            self.store.remove(self._name(attr))
        except KeyError:
            return False
        return True

    def _get_tensor_size(self, attr: TensorAttr) -> Optional[tuple[int, ...]]:
        try:
            return tuple(self.store[self._name(attr)].shape)
        except KeyError:
            return None

    def get_all_tensor_attrs(self) -> list[TensorAttr]:
        return [self._tensor_attr_cls.cast(group_name=self.group_name, attr_name=name)
                for name in self.store.names]
