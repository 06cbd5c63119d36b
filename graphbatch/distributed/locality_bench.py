"""How local a partitioned graph's batches are: METIS against random parts.

``python -m graphbatch.distributed.locality_bench --ranks 2 4`` partitions a dataset
both ways (:func:`~graphbatch.distributed.partition.save_shards`, into a temporary
folder), then for each rank count starts that many local processes (gloo over
loopback), each loading its own shard and running one epoch of
:class:`~graphbatch.distributed.partitioned_loader.DistNeighborLoader` over the
training nodes; it prints, averaged over the ranks, what
:meth:`~graphbatch.distributed.partitioned_loader.DistNeighborLoader.locality`
reports: the share of a batch's nodes owned locally, cached, fetched, the feature
bytes fetched per batch, and the share and bytes of sampling requests sent to other
ranks. ``--json`` prints the rows as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from datetime import timedelta
from typing import Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _rank_main(rank: int, world: int, port: int, root: str, args: dict, queue) -> None:
    import numba

    from graphbatch.distributed.partition import load_shard
    from graphbatch.distributed.partitioned_loader import DistNeighborLoader

    torch.set_num_threads(1)
    numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS,
                                     (os.cpu_count() or 1) // world)))
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world,
                            timeout=timedelta(seconds=args["timeout_s"]))
    try:
        shard = load_shard(root, rank)
        loader = DistNeighborLoader(
            shard, args["fanouts"], input_nodes=args["train"], batch_size=args["batch_size"],
            shuffle=True, drop_last=True, cache_rows=args["cache_rows"],
            node_tables=["x", "y"], generator=torch.Generator().manual_seed(0))
        start = time.perf_counter()
        for _ in loader:
            pass
        seconds = time.perf_counter() - start
        queue.put((rank, {**loader.locality(), "epoch_s": seconds}))
    except BaseException as exc:  # noqa: BLE001 -- reported by the parent
        queue.put((rank, f"{type(exc).__name__}: {exc}"))
    finally:
        dist.destroy_process_group()


def run(root: str, world: int, args: dict) -> dict:
    """One epoch on ``world`` local ranks over the shards in ``root``; the ranks'
    :meth:`locality` averaged."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [ctx.Process(target=_rank_main, args=(r, world, port, root, args, queue))
             for r in range(world)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=args["timeout_s"] * 4) for _ in procs)
    for p in procs:
        p.join()
    errors = {r: v for r, v in results.items() if isinstance(v, str)}
    if errors:
        raise RuntimeError(f"ranks failed: {errors}")
    keys = results[0].keys()
    return {k: sum(v[k] for v in results.values()) / world for k in keys}


def main(argv: Optional[list[str]] = None) -> None:
    from graphbatch.datasets import load
    from graphbatch.distributed.partition import partition_graph, save_shards
    from graphbatch.graph import CSCGraph

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--fanouts", type=int, nargs="+", default=[10, 5])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--cache-rows", type=int, nargs="+", default=[0],
                        help="remote rows each rank caches; one run per value")
    parser.add_argument("--timeout-s", type=float, default=120.0)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args(argv)
    data = load(opts.dataset)
    graph = CSCGraph.from_data(data)
    train = data.train_mask.nonzero().view(-1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for world in opts.ranks:
            for method in ("metis", "random"):
                root = os.path.join(tmp, f"{method}{world}")
                save_shards(data, partition_graph(data, world, method, graph=graph), root, graph)
                for cache_rows in opts.cache_rows:
                    args = {"fanouts": opts.fanouts, "batch_size": opts.batch_size,
                            "cache_rows": cache_rows, "train": train,
                            "timeout_s": opts.timeout_s}
                    rows.append({"ranks": world, "method": method, "cache_rows": cache_rows,
                                 **run(root, world, args)})
    if opts.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{opts.dataset}: {data.num_nodes:,} nodes, {data.num_edges:,} edges, fanouts "
          f"{opts.fanouts}, batch size {opts.batch_size}, x+y rows "
          f"{data.x[0].nbytes + data.y[0].nbytes} B; per rank, averaged over ranks")
    print(f"{'ranks':>5} {'method':>6} {'cache':>7} {'batches':>7} {'nodes/b':>8} "
          f"{'local':>6} {'cached':>6} {'fetched':>7} {'feat KB/b':>9} "
          f"{'smp remote':>10} {'smp KB/b':>8} {'epoch s':>7}")
    for r in rows:
        print(f"{r['ranks']:>5} {r['method']:>6} {r['cache_rows']:>7} {r['batches']:>7.0f} "
              f"{r['nodes_per_batch']:>8.0f} {r['local_share']:>6.1%} {r['cached_share']:>6.1%} "
              f"{r['fetched_share']:>7.1%} {r['fetched_bytes_per_batch'] / 1e3:>9.0f} "
              f"{r['sample_remote_share']:>10.1%} {r['sample_bytes_per_batch'] / 1e3:>8.0f} "
              f"{r['epoch_s']:>7.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
