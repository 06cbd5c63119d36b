"""``graphbatch bench pipeline``: where an epoch's time goes, with and without prefetch.

Trains the 2-layer GraphSAGE of ``graphbatch bench`` for one epoch per mode and splits
the time into sampling, feature gathering, the host-to-device transfer (CUDA only),
training, and the time the training loop waited for data. Without prefetch the loop
waits for every sample and gather; with it, a background thread builds the next
batches during the training step.

Rows (``--out``, ``--csv``), one per mode: ``mode``, ``prefetch``, ``batches``,
``sample_ms_per_batch``, ``gather_ms_per_batch`` and ``transfer_ms_per_batch`` (None
with prefetch, whose threads run those stages), ``train_ms_per_batch``,
``wait_ms_per_batch``, ``epoch_s``.
"""
from __future__ import annotations

import argparse
import time
from operator import itemgetter

import torch
import torch.nn.functional as F

from graphbatch.cli import results
from graphbatch.cli._args import positive_int
from graphbatch.cli.report import formatted, number, print_table
from graphbatch.cli.harness.measure import sync
from graphbatch.cli.harness.models import SAGE
from graphbatch.datasets import NAMES, load
from graphbatch.graph import CSCGraph
from graphbatch.loader import NeighborLoader


#: The printed table's columns, made from the rows' numbers.
COLUMNS = {
    "mode": itemgetter("mode"),
    "batches": itemgetter("batches"),
    "sample ms": number("sample_ms_per_batch"),
    "gather ms": number("gather_ms_per_batch"),
    "transfer ms": number("transfer_ms_per_batch"),
    "train ms": number("train_ms_per_batch"),
    "wait ms": number("wait_ms_per_batch"),
    "epoch s": number("epoch_s", ".2f"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="synthetic", choices=NAMES,
                   help="catalog dataset to train on (see graphbatch datasets)")
    p.add_argument("--batch-size", type=positive_int, default=1024,
                   help="input nodes per batch")
    p.add_argument("--fanouts", type=int, nargs="+", default=[10, 10],
                   help="neighbors sampled per node, one number per hop")
    p.add_argument("--hidden", type=positive_int, default=128,
                   help="hidden channels of the GraphSAGE model")
    p.add_argument("--prefetch", type=positive_int, default=2,
                   help="the loader's prefetch (batches made ahead) in the mode compared "
                        "with none")
    p.add_argument("--batches", type=positive_int, default=40,
                   help="timed batches per mode, fewer where an epoch has fewer")
    p.add_argument("--seed", type=int, default=0, help="random seed of the model and the sampling")
    results.add_output_arguments(p)


def _epoch(loader: NeighborLoader, model, opt, device, max_batches: int, staged: bool) -> dict:
    """One epoch, truncated to ``max_batches``. ``staged`` runs the loader's stages one by
    one in the loop (sample, gather, copy to the device), timing each; otherwise the
    loader runs them in its prefetch threads and the loop times its waits."""
    t = dict(sample=0.0, gather=0.0, transfer=0.0, train=0.0, wait=0.0, batches=0)
    if staged:
        loader.batches.new_epoch()
        items = iter(loader.batches)
    else:
        it = iter(loader)
    start = time.perf_counter()
    for _ in range(max_batches):
        w0 = time.perf_counter()
        if staged:
            try:
                item = next(items)
            except StopIteration:
                break
            sampled = loader.collate_fn(item)  # ids only: (SampledSubgraph, input_id)
            w1 = time.perf_counter()
            batch = loader.filter_fn(*sampled)
            w2 = time.perf_counter()
            moved = batch.to(device)
            sync(device)
            w3 = time.perf_counter()
            t["sample"] += w1 - w0
            t["gather"] += w2 - w1
            t["transfer"] += w3 - w2
            batch = moved
        else:
            try:
                batch = next(it)
            except StopIteration:
                break
            t["wait"] += time.perf_counter() - w0
        s0 = time.perf_counter()
        opt.zero_grad()
        out = model(batch.x, batch.edge_index)[: batch.batch_size]
        F.cross_entropy(out, batch.y[: batch.batch_size]).backward()
        opt.step()
        sync(device)
        t["train"] += time.perf_counter() - s0
        t["batches"] += 1
    t["epoch"] = time.perf_counter() - start
    if staged:
        t["wait"] = t["sample"] + t["gather"] + t["transfer"]
    return t


def run(args: argparse.Namespace) -> list[dict]:
    """Times one epoch per mode, prints the table, writes ``--out`` and ``--csv``;
    returns the rows."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = load(args.dataset)
    graph = CSCGraph.from_data(data)
    rows = []
    for name, prefetch in (("no prefetch", 0), (f"prefetch {args.prefetch}", args.prefetch)):
        torch.manual_seed(args.seed)
        model = SAGE(data.num_features, args.hidden, int(data.y.max()) + 1).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        staged = prefetch == 0
        loader = NeighborLoader(
            data, args.fanouts, input_nodes=data.train_mask, graph=graph, shuffle=True,
            batch_size=args.batch_size, prefetch=prefetch,
            device=None if staged else device,
        )
        _epoch(loader, model, opt, device, 3, staged)  # warm-up: kernels, allocator, buffers
        t = _epoch(loader, model, opt, device, args.batches, staged)
        n = t["batches"]
        # With prefetch, the loader's threads run these stages, untimed.
        untimed = () if staged else ("sample", "gather", "transfer")
        rows.append({
            "mode": name, "prefetch": prefetch, "batches": n,
            **{f"{stage}_ms_per_batch": None if stage in untimed else 1000 * t[stage] / n
               for stage in ("sample", "gather", "transfer", "train", "wait")},
            "epoch_s": t["epoch"],
        })
    print(f"{args.dataset}: {data.num_nodes:,} nodes; fanouts {args.fanouts}, batch "
          f"{args.batch_size}; device {device}")
    print_table(formatted(rows, COLUMNS))
    ratio = rows[1]["wait_ms_per_batch"] / rows[0]["wait_ms_per_batch"]
    print(f"waiting with prefetch / sampling + gathering without: {100 * ratio:.0f}%")
    results.write_outputs(args, "bench pipeline", rows)
    return rows
