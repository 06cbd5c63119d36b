"""``graphbatch bench lazy``: LazyGNN against APPNP (K = 10) and a 2-layer GCN, trained
full-batch on a catalog dataset's standard split: the dataset's metric on the test set
(accuracy, or ROC-AUC of the probability of class 1 on Tolokers and Minesweeper) at the
best validation metric, mean and standard deviation over seeds, epoch time and the
memory autograd keeps per step. LazyGNN and APPNP share the MLP (2 layers, BatchNorm
per ``--batch-norm``); all three propagate with the same sparse ``Â``.

Each model is chosen per dataset among as many settings as the others (6 by default),
by mean validation metric over the seeds, never the test metric: a model searched more
widely would gain from validation noise alone. :func:`select` chooses for all three.

* LazyGNN: ``(beta, gamma)`` among (0.3, 1.0), its constructor's default, and the
  authors' (0.5, 0.5), times the evaluation steps 7 (the default), 10 and 20. The
  defaults did best across 9 catalog datasets by validation accuracy against APPNP
  (mean gap +0.1 points, worst -0.7 on CiteSeer; the authors' setting: +0.04 and -1.4
  on Amazon Computers, where (0.3, 1.0) reaches 91.1 against APPNP's 91.3).
* APPNP: ``alpha`` among 0.1 and 0.2, times the same evaluation steps (it trains with
  K = 10 and may evaluate with other counts; ``--appnp-eval-steps`` to give its own).
* GCN: dropout among 0.5 and 0.8, times weight decay among 5e-4, 1e-3 and 5e-3.

Evaluation steps cost no training: every run evaluates each of them, from one
propagation of the MLP's output read at each count (:func:`evaluate`). Features with
few nonzeros are kept sparse (:data:`SPARSE_FEATURES`), and APPNP and GCN backpropagate
through ``Â`` with its stored transpose: the same numbers as dense autograd, 2 to 5
times faster on bag-of-words graphs.

Splits: ``load(name, split=--split)``: the public split for Cora and CiteSeer, the
dataset's shipped split columns for Actor, WebKB and the heterophilous graphs, a
seeded 60/20/20 split otherwise. Every model trains ``--epochs`` epochs with Adam
(``--lr``; weight decay ``--weight-decay``, GCN's its own). ``--out`` and ``--csv`` write
the rows (numbers, units in the key names) and, in the JSON, every run of every setting.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from graphbatch.cli import results
from graphbatch.cli._args import add_check, nonnegative_int, positive_int
from graphbatch.cli.harness.measure import metric as score
from graphbatch.cli.report import print_table
from graphbatch.datasets import catalog, load
from graphbatch.lazy import LazyGNN, appnp_steps, normalized_adjacency, sparse_operator

MODELS = ("LazyGNN", "APPNP", "GCN")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--datasets", nargs="+", default=["Cora", "CiteSeer", "CS", "Computers"],
                   help=f"catalog datasets, each on its standard split (one of {catalog.NAMES})")
    p.add_argument("--split", type=nonnegative_int, default=0,
                   help="which of each dataset's standard splits (as for `graphbatch "
                        "datasets`): the seed of a random 60/20/20 split, the column of a "
                        "fixed one; the public Planetoid split has only 0")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--seeds", type=positive_int, default=5)
    p.add_argument("--epochs", type=positive_int, default=200)
    p.add_argument("--hidden", type=positive_int, default=64)
    p.add_argument("--dropout", type=float, default=0.5,
                   help="LazyGNN's and APPNP's dropout (GCN's: --gcn-dropout)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=5e-4,
                   help="LazyGNN's and APPNP's weight decay (GCN's: --gcn-weight-decay)")
    p.add_argument("--alpha", type=float, default=0.1, help="LazyGNN's teleport weight")
    p.add_argument("--steps", type=positive_int, nargs="+", default=[2],
                   help="LazyGNN's propagation steps a training iteration (L), one per "
                        "candidate, each with every (--beta, --gamma) pair")
    p.add_argument("--beta", type=float, nargs="+", default=[0.3, 0.5],
                   help="LazyGNN's beta, one per candidate (paired with --gamma)")
    p.add_argument("--gamma", type=float, nargs="+", default=[1.0, 0.5],
                   help="LazyGNN's gamma, one per candidate; the candidate with the best "
                        "mean validation metric is reported")
    p.add_argument("--eval-steps", type=positive_int, nargs="+", default=[7, 10, 20],
                   help="LazyGNN's and APPNP's propagation steps at evaluation; each is "
                        "evaluated in the same training runs")
    p.add_argument("--appnp-alpha", type=float, nargs="+", default=[0.1, 0.2],
                   help="APPNP's teleport weight, one per candidate")
    p.add_argument("--appnp-eval-steps", type=positive_int, nargs="+", default=None,
                   help="APPNP's propagation steps at evaluation, if not --eval-steps")
    p.add_argument("--gcn-dropout", type=float, nargs="+", default=[0.5, 0.8],
                   help="GCN's dropout, one per candidate, each with every --gcn-weight-decay")
    p.add_argument("--gcn-weight-decay", type=float, nargs="+", default=[5e-4, 1e-3, 5e-3],
                   help="GCN's weight decay, one per candidate")
    p.add_argument("--batch-norm", choices=("auto", "on", "off"), default="auto",
                   help="BatchNorm in the MLP of LazyGNN and APPNP; auto: off on the public "
                        "Planetoid splits (140 to 120 training nodes), on otherwise")
    results.add_output_arguments(p)
    add_check(p, _check)


def _check(args: argparse.Namespace) -> Optional[str]:
    # Settings that cannot be compared, unknown datasets and splits a dataset lacks end
    # in a usage error before any dataset loads.
    try:
        check_budgets(args)
        for name in args.datasets:
            check_split(name, args.split)
    except ValueError as exc:
        return str(exc)
    return None


def check_split(name: str, split: int) -> None:
    """Refuses an unknown dataset (listing the known names) and a split it lacks."""
    e = catalog.entry(name)
    if e.num_splits is not None and split >= e.num_splits:
        valid = "0" if e.num_splits == 1 else f"0 to {e.num_splits - 1}"
        raise ValueError(f"--split {split}: {name} has split {valid} ({e.describe_split()})")


#: Features with at most this share of nonzeros (bag-of-words: Cora 1.3%, Coauthor CS
#: 0.9%) are kept as a sparse CSR matrix, which makes the first layer's products
#: 20 to 30 times cheaper (CS: 15 ms against 470 ms forward); denser ones (Amazon 35%)
#: stay dense.
SPARSE_FEATURES = 0.1


class _SparseMM(torch.autograd.Function):
    """``a @ b`` for a sparse CSR ``a`` and a dense ``b``, the gradient of ``b`` taken with
    ``a``'s transpose given as CSR (``a.t() @ g`` in torch converts ``a`` at every
    backward: 250 ms on Coauthor CS's features)."""

    @staticmethod
    def forward(ctx, a: Tensor, a_t: Tensor, b: Tensor) -> Tensor:
        ctx.a_t = a_t
        return a @ b

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, None, ctx.a_t @ grad


class Operator:
    """A sparse CSR matrix with its transpose: ``op @ x`` is ``matrix @ x`` and
    backpropagates with the stored transpose."""

    def __init__(self, matrix: Tensor, transpose: Tensor) -> None:
        self.matrix, self.transpose = matrix, transpose

    def __matmul__(self, x: Tensor) -> Tensor:
        return _SparseMM.apply(self.matrix, self.transpose, x)

    @classmethod
    def of(cls, matrix: Tensor) -> "Operator":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
            return cls(matrix, matrix.t().to_sparse_csr())


class FirstLinear(torch.nn.Module):
    """A Linear layer's parameters applied to the bench's features: ``x @ W^T + b``
    through :class:`Operator` where the features are sparse, as ``Linear`` otherwise."""

    def __init__(self, lin: torch.nn.Linear, features: Optional[Operator]) -> None:
        super().__init__()
        self.weight, self.bias, self.features = lin.weight, lin.bias, features

    def forward(self, x: Tensor) -> Tensor:
        if x.layout == torch.strided:
            return F.linear(x, self.weight, self.bias)
        assert self.features is not None and x is self.features.matrix
        return self.features @ self.weight.t() + self.bias


@dataclass
class Setup:
    """What one model needs: features, labels, the normalized graph, the split (the
    catalog's) and the metric (the catalog's)."""

    x: Tensor  # dense, or sparse CSR (see SPARSE_FEATURES)
    y: Tensor
    edge_index: Tensor  # Â's, with self-loops
    edge_weight: Tensor
    adj: Tensor  # Â, sparse CSR
    masks: tuple[Tensor, Tensor, Tensor]
    num_classes: int
    public_split: bool
    metric: str = "accuracy"
    features: Optional[Operator] = None  # x and its transpose, where x is sparse
    adj_op: Optional[Operator] = None  # Â and its transpose, for APPNP's and GCN's autograd

    @classmethod
    def of(cls, name: str, data: Data) -> "Setup":
        """``data`` as :func:`graphbatch.datasets.load` gives catalog dataset ``name``:
        its 1-D masks are the split."""
        e = catalog.entry(name)
        masks = (data.train_mask, data.val_mask, data.test_mask)
        if any(m.dim() != 1 for m in masks):
            raise ValueError(f"{name}: expected 1-D masks of one split, as load() gives, "
                             f"got shapes {[tuple(m.shape) for m in masks]}")
        num_classes = int(data.y.max()) + 1
        if e.metric == "roc_auc" and num_classes != 2:
            raise ValueError(f"{name}: ROC-AUC needs 2 classes, got {num_classes}")
        edge_index, edge_weight = normalized_adjacency(data.edge_index, data.num_nodes)
        adj = sparse_operator(edge_index, edge_weight, data.num_nodes)
        x, features = data.x, None
        if x.numel() and (x != 0).float().mean().item() <= SPARSE_FEATURES:
            features = Operator.of(x.to_sparse_csr())
            x = features.matrix
        return cls(x, data.y, edge_index, edge_weight, adj, masks, num_classes,
                   e.split == catalog.PUBLIC, e.metric, features, Operator.of(adj))

    def batch_norm(self, choice: str) -> bool:
        """Whether the MLPs normalize their hidden layer. Without it the stored state goes
        stale as the MLP's output drifts in scale (LazyGNN on Amazon Computers: 75%
        against 90% with it); with it, the public splits' tiny training sets lose a
        few points (Cora: 79% against 81%)."""
        return choice == "on" or (choice == "auto" and not self.public_split)


class APPNPNet(torch.nn.Module):
    """A 2-layer MLP, then ``K`` APPNP steps (Klicpera et al., ICLR 2019), with autograd
    through the steps; ``eval_steps`` steps in eval mode (as LazyGNN's)."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, dropout: float,
                 K: int, alpha: float, batch_norm: bool) -> None:
        super().__init__()
        self.lin1 = torch.nn.Linear(in_channels, hidden)
        self.norm = torch.nn.BatchNorm1d(hidden) if batch_norm else torch.nn.Identity()
        self.lin2 = torch.nn.Linear(hidden, out_channels)
        self.dropout, self.K, self.alpha = dropout, K, alpha
        self.eval_steps = K

    def mlp(self, x: Tensor) -> Tensor:
        x = F.dropout(F.relu(self.norm(self.lin1(x))), self.dropout, self.training)
        return self.lin2(x)

    def forward(self, x: Tensor, adj) -> Tensor:
        h = self.mlp(x)
        return appnp_steps(h, h, adj, self.alpha, self.K if self.training else self.eval_steps)


class GCN(torch.nn.Module):
    """Two GCN layers (Kipf and Welling, ICLR 2017), ``Â X W``, dropout after the hidden
    one, as in the MLPs of the other two models."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        self.lin1 = torch.nn.Linear(in_channels, hidden)
        self.lin2 = torch.nn.Linear(hidden, out_channels)
        self.dropout = dropout

    def forward(self, x: Tensor, adj) -> Tensor:
        x = F.dropout(F.relu(adj @ self.lin1(x)), self.dropout, self.training)
        return adj @ self.lin2(x)


def build(model: str, s: Setup, args: argparse.Namespace, num_nodes: int,
          setting: dict[str, float]):
    """``(module, forward)``: the model in training ``setting`` (one of
    :func:`training_settings`) and how to call it on the whole graph. All three
    propagate with the same sparse ``Â``."""
    batch_norm = s.batch_norm(args.batch_norm)
    if model == "LazyGNN":
        # The same 2-layer MLP as APPNP's, then lazy propagation.
        m = LazyGNN(s.x.size(1), args.hidden, s.num_classes, num_nodes, num_layers=2,
                    dropout=args.dropout, batch_norm=batch_norm, steps=int(setting["steps"]),
                    alpha=args.alpha, beta=setting["beta"], gamma=setting["gamma"],
                    eval_steps=args.eval_steps[0], pin=False)
        m.lins[0] = FirstLinear(m.lins[0], s.features)
        return m, lambda: m(s.x, s.edge_index, s.edge_weight)
    if model == "APPNP":
        m = APPNPNet(s.x.size(1), args.hidden, s.num_classes, args.dropout, 10,
                     setting["alpha"], batch_norm)
    else:
        m = GCN(s.x.size(1), args.hidden, s.num_classes, setting["dropout"])
    m.lin1 = FirstLinear(m.lin1, s.features)
    return m, lambda: m(s.x, s.adj_op)


def evaluate(model: str, m: torch.nn.Module, forward, s: Setup,
             steps: list[Optional[int]]) -> dict[Optional[int], Tensor]:
    """The eval-mode logits of ``m`` per evaluation steps of ``steps``. LazyGNN and APPNP
    run the MLP once and the APPNP steps once, up to the most steps, each output read
    on the way: the same numbers as their eval-mode forward with ``eval_steps`` set to
    each (the same operations in the same order), at the cost of the longest alone."""
    with torch.no_grad():
        if steps == [None]:
            return {None: forward()}
        h = m.mlp(s.x)
        alpha = m.prop.alpha if model == "LazyGNN" else m.alpha
        out, x, done = {}, h, 0
        for k in sorted(steps):
            x = appnp_steps(x, h, s.adj, alpha, k - done)
            out[k], done = x, k
        return out


def _storages(t: Tensor) -> list[Tensor]:
    if t.layout == torch.sparse_csr:
        return [t.crow_indices(), t.col_indices(), t.values()]
    if t.layout == torch.sparse_coo:
        return [t._indices(), t._values()]
    return [t]


def saved_bytes(step) -> int:
    """Bytes autograd keeps for the backward of ``step()`` (its activation memory): each
    saved tensor's storage counted once (a sparse one by its index and value arrays)."""
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        for part in _storages(t):
            storage = part.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(seen.values())


def train(model: str, s: Setup, args: argparse.Namespace, seed: int,
          setting: dict[str, float]) -> list[dict]:
    """Trains one model in training ``setting`` from ``seed``. Returns, per evaluation
    steps of :func:`evaluation_steps` (evaluation leaves LazyGNN's state alone, so one
    run evaluates them all), the whole setting, its validation and test metric (the
    dataset's) at the best validation metric, the mean epoch time and the bytes
    autograd keeps per step."""
    torch.manual_seed(seed)
    m, forward = build(model, s, args, s.y.numel(), setting)
    opt = torch.optim.Adam(m.parameters(), lr=args.lr,
                           weight_decay=setting.get("weight_decay", args.weight_decay))
    train_mask, val_mask, test_mask = s.masks
    settings = evaluation_steps(model, args)
    best = {k: (-1.0, 0.0) for k in settings}  # (val, test)
    train_s, memory = 0.0, 0

    def loss() -> Tensor:
        return F.cross_entropy(forward()[train_mask], s.y[train_mask])

    for epoch in range(args.epochs):
        m.train()
        start = time.perf_counter()
        opt.zero_grad()
        if epoch == 0:
            memory = saved_bytes(lambda: loss().backward())
        else:
            loss().backward()
        opt.step()
        train_s += time.perf_counter() - start
        m.eval()
        for k, logits in evaluate(model, m, forward, s, settings).items():
            val = score(s.metric, logits[val_mask], s.y[val_mask])
            if val > best[k][0]:
                best[k] = (val, score(s.metric, logits[test_mask], s.y[test_mask]))
    return [{"setting": {**setting, **({} if k is None else {"eval_steps": k})},
             "test": best[k][1], "val": best[k][0], "epoch_s": train_s / args.epochs,
             "memory": memory} for k in settings]


def beta_gamma(args: argparse.Namespace) -> list[tuple[float, float]]:
    """LazyGNN's ``(beta, gamma)`` pairs to try, from ``--beta`` and ``--gamma``."""
    if len(args.beta) != len(args.gamma):
        raise ValueError(f"--beta and --gamma need as many values, got {args.beta} and "
                         f"{args.gamma}")
    return list(zip(args.beta, args.gamma))


def training_settings(model: str, args: argparse.Namespace) -> list[dict[str, float]]:
    """The settings ``model`` trains in, each on every seed."""
    if model == "LazyGNN":
        return [{"steps": L, "beta": b, "gamma": g}
                for L in args.steps for b, g in beta_gamma(args)]
    if model == "APPNP":
        return [{"alpha": a} for a in args.appnp_alpha]
    return [{"dropout": d, "weight_decay": w}
            for d in args.gcn_dropout for w in args.gcn_weight_decay]


def evaluation_steps(model: str, args: argparse.Namespace) -> list[Optional[int]]:
    """The propagation steps each training run of ``model`` is evaluated with (None: the
    model has no such choice)."""
    if model == "APPNP" and getattr(args, "appnp_eval_steps", None):
        return list(args.appnp_eval_steps)
    return list(args.eval_steps) if model in ("LazyGNN", "APPNP") else [None]


def budget(model: str, args: argparse.Namespace) -> int:
    """How many settings ``model`` is chosen among."""
    return len(training_settings(model, args)) * len(evaluation_steps(model, args))


def check_budgets(args: argparse.Namespace) -> None:
    """Refuses models chosen among unequal numbers of settings: the one searched more
    widely would gain from validation noise alone."""
    budgets = {model: budget(model, args) for model in args.models}
    if len(set(budgets.values())) > 1:
        raise ValueError(f"the models would be chosen among unequal numbers of settings "
                         f"({budgets}); give each as many (see --help)")


def select(tried: list[tuple[dict, list[dict]]]) -> tuple[dict, list[dict]]:
    """Of ``(setting, [one result per seed])`` pairs, the one with the best mean
    validation metric (the first of equals); the test metric takes no part."""
    return max(tried, key=lambda t: statistics.mean(r["val"] for r in t[1]))


def _describe(setting: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in setting.items())


def _pct(values: list[float]) -> tuple[float, float]:
    """Mean and standard deviation (0 for one value) of ``values``, in percent."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return 100 * statistics.mean(values), 100 * std


def compare(name: str, data: Data, args: argparse.Namespace,
            runs: Optional[list[dict]] = None) -> list[dict]:
    """One row per model on catalog dataset ``name`` (``data`` as ``load`` gives it):
    its metric over ``args.seeds`` seeds in the setting :func:`select` chooses. Each
    training setting trains on every seed and is evaluated with each of its evaluation
    steps; every model is chosen among as many settings (:func:`check_budgets`). Every
    run of every setting is appended to ``runs`` when given."""
    check_budgets(args)
    s = Setup.of(name, data)
    rows = []
    for model in args.models:
        tried = []  # (setting, [one result per seed]) per setting
        for setting in training_settings(model, args):
            per_seed = [train(model, s, args, seed, setting) for seed in range(args.seeds)]
            tried += [(runs_[0]["setting"], list(runs_)) for runs_ in zip(*per_seed)]
        if runs is not None:
            runs += [{"dataset": name, "model": model, "setting": setting, "seed": seed,
                      "metric": s.metric, "val": r["val"], "test": r["test"],
                      "epoch_s": r["epoch_s"], "autograd_bytes": r["memory"]}
                     for setting, per in tried for seed, r in enumerate(per)]
        setting, chosen = select(tried)
        val, val_std = _pct([r["val"] for r in chosen])
        test, test_std = _pct([r["test"] for r in chosen])
        rows.append({
            "dataset": name, "model": model, "metric": s.metric, "settings": len(tried),
            "chosen": _describe(setting), "val_pct": val, "val_std_pct": val_std,
            "test_pct": test, "test_std_pct": test_std,
            "test_pct_runs": [100 * r["test"] for r in chosen],
            "epoch_ms": 1000 * statistics.mean(r["epoch_s"] for r in chosen),
            "autograd_mib": chosen[0]["memory"] / 2**20,
        })
    return rows


def printable(row: dict) -> dict:
    """A row of :func:`compare` as the printed table shows it."""
    metric = "ROC-AUC" if row["metric"] == "roc_auc" else "acc"
    return {"dataset": row["dataset"], "model": row["model"], "settings": row["settings"],
            "chosen": row["chosen"],
            "val": f"{row['val_pct']:.1f} ± {row['val_std_pct']:.2f} {metric}",
            "test": f"{row['test_pct']:.1f} ± {row['test_std_pct']:.2f} {metric}",
            "epoch": f"{row['epoch_ms']:.1f} ms",
            "autograd memory": f"{row['autograd_mib']:.1f} MiB"}


def run(args: argparse.Namespace) -> list[dict]:
    rows: list[dict] = []
    runs: list[dict] = []
    for name in args.datasets:
        rows += compare(name, load(name, split=args.split), args, runs)
    print_table([printable(r) for r in rows])
    results.write_outputs(args, "bench lazy", rows, runs)
    return rows
