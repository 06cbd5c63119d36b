"""Seeded random node splits."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def random_split(num_nodes: int, seed: int = 0, train: float = 0.6, val: float = 0.2,
                 generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor, Tensor]:
    """Train, validation and test ``[num_nodes]`` boolean masks of a random permutation
    (the first ``train``, the next ``val``, the rest), drawn from ``generator`` or, by
    default, a generator seeded with ``seed``."""
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    perm = torch.randperm(num_nodes, generator=gen)
    bounds = (0, int(train * num_nodes), int((train + val) * num_nodes), num_nodes)
    masks = []
    for lo, hi in zip(bounds, bounds[1:]):
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[perm[lo:hi]] = True
        masks.append(mask)
    return tuple(masks)
