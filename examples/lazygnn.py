"""LazyGNN against APPNP (K = 10) and a 2-layer GCN, then LazyGNN trained on mini-batches.

    python examples/lazygnn.py                 # Cora, public split, 5 seeds
    python examples/lazygnn.py --dataset CS    # Coauthor CS, random 60/20/20 split

Part 1 trains the three models full-batch on the same split and prints test accuracy
(mean ± std over seeds), epoch time and the memory autograd keeps per step. Neither
APPNP's nor LazyGNN's memory grows with its steps (the propagation is linear: autograd
keeps the operator, not each step's output); APPNP's backward runs all K steps back,
LazyGNN's mixes in the stored gradients instead. It is `graphbatch bench lazy`.

Part 2 shows the mini-batch loop: a METIS partition, batches of whole clusters plus
their complete 2-hop halo (`HaloLoader`), targets first; only the targets' rows of the
stored features and gradients are written, and evaluation is plain APPNP on the whole
graph.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from graphbatch import ClusterData, HaloLoader, LazyGNN
from graphbatch.cli import lazy_bench
from graphbatch.cli.report import print_table
from graphbatch.datasets import load


def minibatch_lazygnn(name: str, data, args: argparse.Namespace) -> dict:
    setup = lazy_bench.Setup.of(name, data)
    train_mask, val_mask, test_mask = setup.masks
    torch.manual_seed(0)
    clusters = ClusterData(data, num_parts=args.parts, log=False)
    loader = HaloLoader(data, num_hops=2, cluster_data=clusters,
                        batch_size=args.clusters_per_batch, shuffle=True)
    model = LazyGNN(data.num_features, args.hidden, setup.num_classes, data.num_nodes,
                    num_layers=2, dropout=args.dropout,
                    batch_norm=setup.batch_norm(args.batch_norm))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    best_val, best_test, train_s = -1.0, 0.0, 0.0
    for epoch in range(args.epochs):
        model.train()
        start = time.perf_counter()
        for batch in loader:
            k = batch.batch_size  # the targets come first; the rest is their halo
            out = model(batch.x, batch.edge_index, batch.edge_weight, batch.n_id, k)[:k]
            mask = train_mask[batch.n_id[:k]]
            if not mask.any():
                continue
            opt.zero_grad()
            F.cross_entropy(out[mask], batch.y[:k][mask]).backward()
            opt.step()
        train_s += time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            pred = model(data.x, setup.edge_index, setup.edge_weight).argmax(-1)
        val = (pred[val_mask] == data.y[val_mask]).float().mean().item()
        if val > best_val:
            best_val = val
            best_test = (pred[test_mask] == data.y[test_mask]).float().mean().item()
    return {"dataset": name, "model": f"LazyGNN, {args.parts} clusters / "
            f"{args.clusters_per_batch} per batch", "test acc": f"{100 * best_test:.1f}",
            "epoch": f"{1000 * train_s / args.epochs:.1f} ms"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    lazy_bench.add_arguments(p)
    p.add_argument("--dataset", default="Cora")
    p.add_argument("--parts", type=int, default=16, help="METIS parts for part 2")
    p.add_argument("--clusters-per-batch", type=int, default=4)
    args = p.parse_args()
    data = load(args.dataset)
    print("Part 1: full-batch, the same split and propagation for all three models")
    rows = lazy_bench.compare(args.dataset, data, args)
    print_table([lazy_bench.printable(r) for r in rows])
    print("\nPart 2: LazyGNN on mini-batches (clusters + 2-hop halo), seed 0")
    print_table([minibatch_lazygnn(args.dataset, data, args)])


if __name__ == "__main__":
    main()
