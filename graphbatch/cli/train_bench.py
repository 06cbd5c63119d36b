"""``graphbatch bench``: train a 2-layer GraphSAGE with a graphbatch loader, report a table.

Each row is one (dataset, sampler) run: test accuracy, mean epoch time, batches/s,
sampled edges/s and peak memory. New samplers join by adding a loader factory to
:data:`LOADERS`.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn import SAGEConv
from tqdm import tqdm

from graphbatch.cli._args import nonnegative_int, positive_int
from graphbatch.cli.report import peak_rss_mib, print_table
from graphbatch.datasets import NAMES, load
from graphbatch.graph import CSRGraph
from graphbatch.loader import NeighborLoader


class SAGE(torch.nn.Module):
    """Two ``SAGEConv`` layers; returns logits of the first ``batch_size`` nodes."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, dropout: float = 0.5):
        super().__init__()
        self.conv1 = SAGEConv(in_channels, hidden)
        self.conv2 = SAGEConv(hidden, out_channels)
        self.dropout = dropout

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = F.dropout(x, self.dropout, self.training)
        x = F.relu(self.conv1(x, edge_index))
        x = F.dropout(x, self.dropout, self.training)
        return self.conv2(x, edge_index)


LoaderFactory = Callable[..., NeighborLoader]


def _neighbor(data: Data, graph: CSRGraph, args: argparse.Namespace, nodes: Tensor,
              shuffle: bool) -> NeighborLoader:
    return NeighborLoader(data, num_neighbors=args.fanouts, input_nodes=nodes, graph=graph,
                          batch_size=args.batch_size, shuffle=shuffle,
                          num_workers=args.num_workers,
                          persistent_workers=args.num_workers > 0)


LOADERS: dict[str, LoaderFactory] = {"neighbor": _neighbor}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", nargs="+", default=["synthetic"], choices=NAMES)
    p.add_argument("--sampler", nargs="+", default=["neighbor"], choices=list(LOADERS))
    p.add_argument("--epochs", type=positive_int, default=3)
    p.add_argument("--batch-size", type=positive_int, default=1024)
    p.add_argument("--fanouts", type=int, nargs="+", default=[10, 10])
    p.add_argument("--hidden", type=positive_int, default=128)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--num-workers", type=nonnegative_int, default=0)
    p.add_argument("--seed", type=int, default=0)


@torch.no_grad()
def evaluate(model: SAGE, loader: NeighborLoader) -> float:
    model.eval()
    correct = total = 0
    for batch in loader:
        pred = model(batch.x, batch.edge_index)[: batch.batch_size].argmax(-1)
        correct += int((pred == batch.y[: batch.batch_size]).sum())
        total += batch.batch_size
    return correct / total


def train_one(data: Data, name: str, sampler: str, args: argparse.Namespace) -> dict:
    """Trains and tests one model; returns its table row."""
    torch.manual_seed(args.seed)
    graph = CSRGraph.from_data(data)
    train_nodes = data.train_mask.nonzero().view(-1)
    test_nodes = data.test_mask.nonzero().view(-1)
    train_loader = LOADERS[sampler](data, graph, args, train_nodes, True)
    test_loader = LOADERS[sampler](data, graph, args, test_nodes, False)
    model = SAGE(data.num_features, args.hidden, int(data.y.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    epoch_times, batches, edges = [], 0, 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.perf_counter()
        bar = tqdm(train_loader, desc=f"{name} {sampler} epoch {epoch}", leave=False)
        for batch in bar:
            opt.zero_grad()
            out = model(batch.x, batch.edge_index)[: batch.batch_size]
            loss = F.cross_entropy(out, batch.y[: batch.batch_size])
            loss.backward()
            opt.step()
            batches += 1
            edges += batch.num_edges
            bar.set_postfix(loss=f"{loss.item():.3f}")
        epoch_times.append(time.perf_counter() - start)
    train_s = sum(epoch_times)
    return {
        "dataset": name,
        "sampler": sampler,
        "test acc": f"{evaluate(model, test_loader):.4f}",
        "epoch s": f"{train_s / len(epoch_times):.2f}",
        "batches/s": f"{batches / train_s:.1f}",
        "sampled edges/s": f"{edges / train_s / 1e6:.2f} M",
        "peak RSS": f"{peak_rss_mib():.0f} MiB",
    }


def run(args: argparse.Namespace) -> list[dict]:
    rows = []
    for name in args.dataset:
        t0 = time.perf_counter()
        data = load(name)
        print(f"{name}: {data.num_nodes:,} nodes, {data.num_edges:,} edges, "
              f"{data.num_features} features (loaded in {time.perf_counter() - t0:.1f} s)")
        for sampler in args.sampler:
            rows.append(train_one(data, name, sampler, args))
    print_table(rows)
    return rows
