"""Lazy propagation (LazyGNN, Xue et al., ICML 2023): a few APPNP steps a training
iteration, warm-started from the propagated features (and gradients) that earlier
iterations stored in host memory.

With ``Â = D^-1/2 (A + I) D^-1/2`` and ``X_in`` the input (LazyGNN: the MLP's logits):

* forward: ``X_0 = (1 - beta) M_fea + beta X_in`` (``X_0 = X_in`` for a node whose
  ``M_fea`` row was never written), then ``steps`` times
  ``X_{l+1} = (1 - alpha) Â X_l + alpha X_in``; output ``X_L``; ``M_fea <- X_L``.
* backward (the implicit-function view of APPNP's fixed point, not autograd through
  the steps): ``G_L = (1 - gamma) M_grad + gamma dL/dX_L`` (``dL/dX_L`` where ``M_grad``
  was never written), then ``steps`` times ``G_l = (1 - alpha) Â^T G_{l+1} + alpha dL/dX_L``;
  ``dL/dX_in = G_0`` and ``M_grad <- G_0``. No activations are kept: memory does not
  grow with ``steps``.

In a mini-batch the first ``num_targets`` rows are the targets and the rest their halo:
all rows are mixed and propagated, only the targets' memory rows are written, and only
the targets' gradients flow back to ``X_in``.
"""
from __future__ import annotations

import warnings
import weakref
from typing import Optional

import torch
from torch import Tensor

from graphbatch.lazy.state import LazyState


def sparse_operator(edge_index: Tensor, edge_weight: Tensor, num_nodes: int,
                    transpose: bool = False) -> Tensor:
    """The ``[n, n]`` sparse CSR matrix ``M`` with ``M[v, u] = w(u -> v)`` (``M @ X``
    sums each node's weighted incoming messages); its transpose with ``transpose``."""
    src, dst = edge_index
    rows, cols = (src, dst) if transpose else (dst, src)
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), edge_weight.to(torch.float32),
                                  (num_nodes, num_nodes), check_invariants=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return coo.coalesce().to_sparse_csr()


def appnp_steps(x_start: Tensor, x_in: Tensor, adj: Tensor, alpha: float, steps: int) -> Tensor:
    """``steps`` APPNP iterations ``X <- (1 - alpha) adj @ X + alpha x_in`` from ``x_start``."""
    x = x_start
    for _ in range(steps):
        x = (1 - alpha) * (adj @ x) + alpha * x_in
    return x


class _LazyStep(torch.autograd.Function):
    """The forward of the module docstring; the lazy backward writes ``M_grad``."""

    @staticmethod
    def forward(ctx, x_in: Tensor, x_start: Tensor, adj: Tensor, adj_t: Tensor, alpha: float,
                gamma: float, steps: int, num_targets: int, state: Optional[LazyState],
                target_ids: Optional[Tensor]) -> Tensor:
        ctx.adj_t, ctx.alpha, ctx.gamma, ctx.steps = adj_t, alpha, gamma, steps
        ctx.num_targets, ctx.state, ctx.target_ids = num_targets, state, target_ids
        return appnp_steps(x_start, x_in, adj, alpha, steps)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        g = grad_out
        state, ids = ctx.state, ctx.target_ids
        if state is not None and ctx.gamma != 1:
            stored, written = state.read("grad", ids, grad_out.device)
            head = g[:ctx.num_targets]
            mixed = (1 - ctx.gamma) * stored + ctx.gamma * head
            g = torch.cat([torch.where(written[:, None], mixed, head), g[ctx.num_targets:]])
        g = appnp_steps(g, grad_out, ctx.adj_t, ctx.alpha, ctx.steps)
        g[ctx.num_targets:] = 0
        if state is not None:
            state.write("grad", ids, g[:ctx.num_targets])
        return g, None, None, None, None, None, None, None, None, None


class LazyPropagation(torch.nn.Module):
    """Lazy APPNP propagation with its state (see the module docstring).

    In training mode each call mixes with and updates the stored state; in eval mode
    it runs ``eval_steps`` plain APPNP steps from ``x_in`` and leaves the state alone.

    The defaults (``steps=2, alpha=0.1, beta=0.3, gamma=1.0, eval_steps=7``) did best
    across the dataset catalog as a whole (validation accuracy against APPNP with
    K = 10, 9 datasets, ``graphbatch bench lazy``); the authors' ``beta = gamma = 0.5``
    was 1.4 points below APPNP on Amazon Computers (validation; 89.8 against 91.3
    test, 91.1 with the defaults). No single setting is best on
    every graph: pass another, or let ``graphbatch bench lazy --beta ... --gamma ...
    --eval-steps ...`` choose one on your validation set.

    Args:
        num_nodes: nodes of the whole graph (rows of the state).
        num_channels: width of ``x_in``.
        steps: ``L``, propagation steps a training iteration (authors: 2).
        alpha: teleport weight (authors: 0.1; 0.01 on products and Flickr).
        beta: weight of ``x_in`` against the stored features (authors: 0.5 to 0.7;
            default 0.3, a deeper warm start); 1 disables the feature memory.
        gamma: weight of the new gradient against the stored one (authors: 0.5 to
            0.7); 1 (the default) disables the gradient memory: with full-batch or
            large training sets the fresh gradient did better than the stored mix.
        eval_steps: plain APPNP steps at evaluation (authors: 7; 20 to 50 did better
            on some homophilous graphs, fewer on heterophilous ones).
        pin: pin the state for zero-copy CUDA access (None: if CUDA is available).

    Shapes:
        ``x_in`` [n, C] float; ``edge_index`` [2, m] int64 local ids, ``edge_weight`` [m]
        the entries of ``Â`` (self-loops included, see :func:`normalized_adjacency`);
        ``n_id`` [n] the nodes' global ids (None: the whole graph in node order);
        ``num_targets``: the first rows are targets, the rest halo (None: all targets).
        Returns ``[n, C]``.
    """

    def __init__(self, num_nodes: int, num_channels: int, steps: int = 2, alpha: float = 0.1,
                 beta: float = 0.3, gamma: float = 1.0, eval_steps: int = 7,
                 pin: Optional[bool] = None) -> None:
        super().__init__()
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        for name, value in (("steps", steps), ("eval_steps", eval_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.steps, self.eval_steps = steps, eval_steps
        self.alpha, self.beta, self.gamma = float(alpha), float(beta), float(gamma)
        self.state = LazyState(num_nodes, num_channels, pin)
        self._cache: Optional[tuple] = None

    def forward(self, x_in: Tensor, edge_index: Tensor, edge_weight: Tensor,
                n_id: Optional[Tensor] = None, num_targets: Optional[int] = None) -> Tensor:
        n = x_in.size(0)
        if x_in.dim() != 2 or x_in.size(1) != self.state.num_channels:
            raise ValueError(f"x_in must have shape [n, {self.state.num_channels}], "
                             f"got {tuple(x_in.shape)}")
        if edge_weight is None or edge_weight.shape != (edge_index.size(1),):
            raise ValueError("edge_weight must hold the [m] entries of the normalized "
                             "adjacency (see graphbatch.lazy.normalized_adjacency)")
        adj = self._operator(edge_index, edge_weight, n)
        if not self.training:
            return appnp_steps(x_in, x_in, adj, self.alpha, self.eval_steps)
        adj_t = self._operator(edge_index, edge_weight, n, transpose=True)
        if n_id is None:
            if n != self.state.num_nodes:
                raise ValueError(f"without n_id, x_in must cover all {self.state.num_nodes} "
                                 f"nodes, got {n} rows")
            n_id = torch.arange(n)
        if n_id.shape != (n,):
            raise ValueError(f"n_id must have shape [{n}], got {tuple(n_id.shape)}")
        num_targets = n if num_targets is None else int(num_targets)
        if not 0 < num_targets <= n:
            raise ValueError(f"num_targets must be in [1, {n}], got {num_targets}")
        ids = self.state.check_ids(n_id)
        stored, written = self.state.read("fea", ids, x_in.device)
        with torch.no_grad():
            mixed = (1 - self.beta) * stored + self.beta * x_in
            x_start = torch.where(written[:, None], mixed, x_in)
        targets = ids[:num_targets]
        out = _LazyStep.apply(x_in, x_start, adj, adj_t, self.alpha, self.gamma, self.steps,
                              num_targets, self.state, targets)
        self.state.write("fea", targets, out[:num_targets])
        return out

    def _operator(self, edge_index: Tensor, edge_weight: Tensor, n: int,
                  transpose: bool = False) -> Tensor:
        """``Â`` (or ``Â^T``) as a sparse matrix, each built on first use (evaluation
        needs no ``Â^T``) and rebuilt only when given other tensors than last time (or
        the same ones modified in place): full-batch training passes the same graph
        every step."""
        key = (n, edge_index._version, edge_weight._version)
        cached = self._cache
        if (cached is None or cached[0]() is not edge_index or cached[1]() is not edge_weight
                or cached[2] != key):
            cached = self._cache = (weakref.ref(edge_index), weakref.ref(edge_weight), key, {})
        ops = cached[3]
        if transpose not in ops:
            ops[transpose] = sparse_operator(edge_index, edge_weight, n, transpose)
        return ops[transpose]

    def extra_repr(self) -> str:
        return (f"steps={self.steps}, alpha={self.alpha}, beta={self.beta}, "
                f"gamma={self.gamma}, eval_steps={self.eval_steps}")
