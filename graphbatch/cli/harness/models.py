"""The harness's models: two-layer networks of standard PyG layers.

Every model is called as ``model(x, edge_index, edge_weight)``: ``x`` [n, F] float32,
``edge_index`` [2, m] int64 in local ids, ``edge_weight`` [m] float32 or None, and
returns logits [n, C]. ``edge_weight`` carries GraphSAINT's ``edge_norm``: GCN and
APPNP fold it into their symmetric normalization (which then estimates the whole
graph's degrees from the subgraph's); GraphSAGE's mean and GAT's attention normalize
over the sampled neighbors themselves and take no edge weight.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import APPNP, GATConv, GCNConv, SAGEConv

MODELS = ("sage", "gcn", "gat", "appnp")


class _TwoConvs(torch.nn.Module):
    """Two ``conv`` layers, ReLU between, dropout before each."""

    conv: type
    takes_edge_weight: bool

    def __init__(self, in_channels: int, hidden: int, out_channels: int, dropout: float = 0.5):
        super().__init__()
        self.conv1 = self.conv(in_channels, hidden)
        self.conv2 = self.conv(hidden, out_channels)
        self.dropout = dropout

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor] = None) -> Tensor:
        weight = (edge_weight,) if self.takes_edge_weight else ()
        x = F.dropout(x, self.dropout, self.training)
        x = F.relu(self.conv1(x, edge_index, *weight))
        x = F.dropout(x, self.dropout, self.training)
        return self.conv2(x, edge_index, *weight)


class SAGE(_TwoConvs):
    """Two ``SAGEConv`` layers (mean aggregation, Hamilton et al., 2017)."""

    conv, takes_edge_weight = SAGEConv, False


class GCN(_TwoConvs):
    """Two ``GCNConv`` layers (Kipf and Welling, 2017)."""

    conv, takes_edge_weight = GCNConv, True


class GAT(torch.nn.Module):
    """Two ``GATConv`` layers (Velickovic et al., 2018): ``heads`` heads of
    ``hidden // heads`` channels, concatenated, then one averaged output head."""

    takes_edge_weight = False

    def __init__(self, in_channels: int, hidden: int, out_channels: int, dropout: float = 0.5,
                 heads: int = 8):
        super().__init__()
        self.conv1 = GATConv(in_channels, max(1, hidden // heads), heads=heads, dropout=dropout)
        self.conv2 = GATConv(max(1, hidden // heads) * heads, out_channels, heads=1,
                             dropout=dropout)
        self.dropout = dropout

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor] = None) -> Tensor:
        x = F.dropout(x, self.dropout, self.training)
        x = F.elu(self.conv1(x, edge_index))
        x = F.dropout(x, self.dropout, self.training)
        return self.conv2(x, edge_index)


class APPNPNet(torch.nn.Module):
    """A two-layer MLP, then ``K`` steps of PyG's ``APPNP`` (Klicpera et al., 2019)."""

    takes_edge_weight = True

    def __init__(self, in_channels: int, hidden: int, out_channels: int, dropout: float = 0.5,
                 K: int = 10, alpha: float = 0.1):
        super().__init__()
        self.lin1 = torch.nn.Linear(in_channels, hidden)
        self.lin2 = torch.nn.Linear(hidden, out_channels)
        self.prop = APPNP(K, alpha, dropout=0.0)
        self.dropout = dropout

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor] = None) -> Tensor:
        x = F.dropout(x, self.dropout, self.training)
        x = F.relu(self.lin1(x))
        x = F.dropout(x, self.dropout, self.training)
        return self.prop(self.lin2(x), edge_index, edge_weight)


def build_model(name: str, in_channels: int, out_channels: int, settings: dict) -> torch.nn.Module:
    """Model ``name`` (one of :data:`MODELS`) with ``settings``' ``hidden``, ``dropout``
    and, for GAT, ``heads``; for APPNP, ``K`` and ``alpha``."""
    hidden, dropout = settings["hidden"], settings["dropout"]
    if name == "sage":
        return SAGE(in_channels, hidden, out_channels, dropout)
    if name == "gcn":
        return GCN(in_channels, hidden, out_channels, dropout)
    if name == "gat":
        return GAT(in_channels, hidden, out_channels, dropout, settings["heads"])
    if name == "appnp":
        return APPNPNet(in_channels, hidden, out_channels, dropout, settings["K"],
                        settings["alpha"])
    raise ValueError(f"model must be one of {list(MODELS)}, got {name!r}")
