"""LazyGNN's memory: the propagated features and gradients of every node, in host memory."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from graphbatch._validate import check_positive_int
from graphbatch.features import FeatureStore


class LazyState:
    """``M_fea`` and ``M_grad`` ([N, C] float32 each) and whether each node's rows were
    written yet ([N] bool each), held in a :class:`~graphbatch.features.FeatureStore`:
    host memory, pinned where CUDA is available, so a GPU gathers and scatters the rows
    of a batch in place (zero-copy) and the device holds only the batch's rows. The
    host views (:meth:`written`, indexing, :meth:`reset`) wait for the device writes
    queued on the state first; with ``pin=False`` the rows go through the CPU.

    Args:
        num_nodes: ``N``.
        num_channels: ``C``, the width of what is propagated (LazyGNN: the classes).
        pin: as for :class:`~graphbatch.features.FeatureStore` (None: if CUDA is available).
    """

    def __init__(self, num_nodes: int, num_channels: int, pin: Optional[bool] = None) -> None:
        self.num_nodes = check_positive_int(num_nodes, "num_nodes")
        self.num_channels = check_positive_int(num_channels, "num_channels")
        self.store = FeatureStore({
            "fea": torch.zeros(num_nodes, num_channels),
            "grad": torch.zeros(num_nodes, num_channels),
            "has_fea": torch.zeros(num_nodes, dtype=torch.bool),
            "has_grad": torch.zeros(num_nodes, dtype=torch.bool),
        }, pin=pin)

    def check_ids(self, n_id: Tensor) -> Tensor:
        """Validates node ids ([n] integer, in range, on any device); returns them on the CPU."""
        return self.store.check_index(n_id.cpu() if isinstance(n_id, Tensor) else n_id, "n_id")

    def read(self, name: str, n_id: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
        """Rows ``n_id`` of ``'fea'`` or ``'grad'`` ([n, C] float32) and whether they were
        written ([n] bool), on ``device``; ``n_id`` as returned by :meth:`check_ids`."""
        rows = self.store.gather_unchecked(name, n_id, device)
        written = self.store.gather_unchecked(f"has_{name}", n_id, device)
        return rows.to(device), written.to(device)

    def write(self, name: str, n_id: Tensor, values: Tensor) -> None:
        """Stores ``values`` ([n, C], any device, detached) as rows ``n_id`` (distinct) of
        ``'fea'`` or ``'grad'`` and marks them written."""
        values = values.detach()
        self.store.scatter_(name, n_id, values)
        self.store.scatter_(f"has_{name}", n_id,
                            torch.ones(n_id.numel(), dtype=torch.bool, device=values.device))

    def written(self, name: str) -> Tensor:
        """``[N]`` bool: the nodes whose ``'fea'`` or ``'grad'`` rows were written."""
        return self.store[f"has_{name}"]

    def __getitem__(self, name: str) -> Tensor:
        """The whole ``'fea'`` or ``'grad'`` table ([N, C] float32, host memory)."""
        return self.store[name]

    def reset(self) -> None:
        """Forgets everything: every node's next visit starts fresh."""
        for name in self.store.names:
            self.store[name].zero_()
