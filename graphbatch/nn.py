"""Model-side helpers for graphbatch batches."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch_geometric.nn.conv.gcn_conv import gcn_norm


def diag_enhanced_norm(edge_index: Tensor, num_nodes: int, diag_lambda: float = 1.0
                       ) -> tuple[Tensor, Tensor]:
    """Cluster-GCN's diagonal enhancement (Chiang et al., Eq. 11) as edge weights.

    Returns ``(edge_index with a self-loop per node appended, edge_weight)`` for
    ``GCNConv(normalize=False)``: ``A~ = (D + I)^-1 (A + I)`` plus ``diag_lambda`` times
    its diagonal, so an edge ``u -> v`` weighs ``1 / (deg(v) + 1)`` and the diagonal
    (the appended self-loop and any the batch already has) ``(1 + diag_lambda) /
    (deg(v) + 1)`` per loop, ``deg`` counting incoming edges, loops included.

    Args:
        edge_index: ``[2, m]`` int64 local edges of a batch (messages flow row 0 -> 1).
        num_nodes: nodes in the batch.
        diag_lambda: the weight of the extra diagonal (0 gives plain ``(D + I)^-1 (A + I)``).
    """
    if diag_lambda < 0:
        raise ValueError(f"diag_lambda must be >= 0, got {diag_lambda}")
    deg = torch.bincount(edge_index[1], minlength=num_nodes).to(torch.float32) + 1.0
    loop_scale = torch.where(edge_index[0] == edge_index[1], 1.0 + diag_lambda, 1.0)
    weight = torch.cat([loop_scale / deg[edge_index[1]], (1.0 + diag_lambda) / deg])
    loop = torch.arange(num_nodes, device=edge_index.device)
    return torch.cat([edge_index, torch.stack([loop, loop])], 1), weight


def normalized_adjacency(edge_index: Tensor, num_nodes: int,
                         edge_weight: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """``Â = D^-1/2 (A + I) D^-1/2`` as ``(edge_index [2, m'] int64 with a self-loop on
    every node, edge_weight [m'] float32)``, messages flowing row 0 -> row 1 (GCN's
    normalization, with degrees counted at the targets)."""
    return gcn_norm(edge_index, edge_weight, num_nodes, add_self_loops=True)
