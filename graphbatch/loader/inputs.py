"""What loaders take as their inputs (seed nodes, walk roots, targets), validated once."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from graphbatch._validate import as_index_tensor, check_node_range


def resolve_input_nodes(input_nodes: Any, num_nodes: int, name: str = "input_nodes") -> Tensor:
    """``input_nodes`` (None, an index tensor or sequence, or a boolean mask) as ``[B]``
    int64 node ids; errors name the argument ``name``."""
    if input_nodes is None:
        return torch.arange(num_nodes)
    if isinstance(input_nodes, (tuple, str)):
        raise NotImplementedError(
            f"{name} naming a node type (heterogeneous graphs) is not supported yet; for a "
            f"Data give the nodes themselves, got {type(input_nodes).__name__}"
        )
    if isinstance(input_nodes, Tensor) and input_nodes.dtype == torch.bool:
        if input_nodes.dim() != 1 or input_nodes.numel() != num_nodes:
            raise ValueError(
                f"{name} as a boolean mask must have shape [{num_nodes}] (num_nodes), "
                f"got {tuple(input_nodes.shape)}"
            )
        nodes = input_nodes.nonzero().view(-1)
    else:
        nodes = as_index_tensor(input_nodes, name)
        check_node_range(nodes, num_nodes, name)
    if nodes.numel() == 0:
        raise ValueError(f"{name} selects no node; give at least one")
    return nodes
