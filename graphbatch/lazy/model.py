"""The LazyGNN model: an MLP to class logits, then lazy propagation."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from graphbatch.lazy.propagation import LazyPropagation


class LazyGNN(torch.nn.Module):
    """LazyGNN (Xue et al., ICML 2023): ``X_in = MLP(x)``, then
    :class:`~graphbatch.lazy.LazyPropagation` over the class logits.

    The MLP is ``num_layers - 1`` blocks of Linear, BatchNorm (optional), ReLU and
    dropout, then a Linear to ``out_channels``, as in the authors' code (dropout also on
    the input when ``input_dropout``).

    Args:
        in_channels, hidden_channels, out_channels: MLP widths (``out_channels``: classes).
        num_nodes: nodes of the whole graph (the state's rows).
        num_layers: MLP layers (authors: 3 or 4).
        dropout: after each hidden layer (authors: 0.3 to 0.7).
        batch_norm: BatchNorm after each hidden Linear (keeps the stored state from
            going stale as the MLP's output drifts in scale; ``graphbatch bench
            lazy`` turns it off on the public Planetoid splits, whose 120 to 140
            training nodes it costs points: Cora 79% against 81%).
        input_dropout: dropout on the input features.
        steps, alpha, beta, gamma, eval_steps, pin: as for
            :class:`~graphbatch.lazy.LazyPropagation`, whose defaults
            (``steps=2, alpha=0.1, beta=0.3, gamma=1.0, eval_steps=7``) were chosen on
            the dataset catalog as a whole.

    Shapes:
        ``x`` [n, in_channels]; the other arguments as for ``LazyPropagation``.
        Returns logits ``[n, out_channels]``.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_nodes: int, num_layers: int = 3, dropout: float = 0.5,
                 batch_norm: bool = True, input_dropout: float = 0.0, steps: int = 2,
                 alpha: float = 0.1, beta: float = 0.3, gamma: float = 1.0,
                 eval_steps: int = 7, pin: Optional[bool] = None) -> None:
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
        widths = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.lins = torch.nn.ModuleList(
            torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.norms = torch.nn.ModuleList(
            torch.nn.BatchNorm1d(hidden_channels) if batch_norm else torch.nn.Identity()
            for _ in range(num_layers - 1))
        self.dropout, self.input_dropout = dropout, input_dropout
        self.prop = LazyPropagation(num_nodes, out_channels, steps, alpha, beta, gamma,
                                    eval_steps, pin)

    def reset_parameters(self) -> None:
        for module in [*self.lins, *self.norms]:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        self.prop.state.reset()

    def mlp(self, x: Tensor) -> Tensor:
        """``X_in``: the MLP's logits, ``[n, out_channels]``."""
        x = F.dropout(x, self.input_dropout, self.training)
        for lin, norm in zip(self.lins[:-1], self.norms):
            x = F.dropout(F.relu(norm(lin(x))), self.dropout, self.training)
        return self.lins[-1](x)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor,
                n_id: Optional[Tensor] = None, num_targets: Optional[int] = None) -> Tensor:
        return self.prop(self.mlp(x), edge_index, edge_weight, n_id, num_targets)
