"""``graphbatch bench distributed``: data-parallel GraphSAGE on 1, 2, 4 processes of one
machine, the graph shared once per machine or partitioned across the ranks (issue 17).

For each process count of ``--nproc``, local processes are spawned and joined over gloo
on loopback (``MASTER_ADDR``/``MASTER_PORT``, the ``--timeout-s`` collective timeout),
each with one torch thread and ``cores // nproc`` numba threads (at least one), as
``torchrun --nproc_per_node`` would run them. Every rank trains a 2-layer GraphSAGE
(``--hidden``) under ``DistributedDataParallel`` on its share of the training seeds, in
one of these modes (``--modes``):

* ``shared``: :func:`~graphbatch.distributed.shared_graph` (local rank 0 builds the
  graph into a temporary folder, every rank maps the files) and
  ``NeighborLoader(distributed=True)`` on the shared topology and tables;
* ``copies``: the baseline sharing is measured against: every rank loads the dataset
  into its own memory (as a PyG dataset is read in; the catalog would otherwise map its
  file, sharing the pages) and builds its own ``CSCGraph``;
* ``partitioned``: the graph partitioned into ``nproc`` parts (``--methods``: METIS or
  random; :func:`~graphbatch.distributed.partition.partition_graph` and
  :func:`~graphbatch.distributed.partition.save_shards`, outside the timing), each rank
  loading its shard and sampling with
  :class:`~graphbatch.distributed.partitioned_loader.DistNeighborLoader`, whose
  :meth:`~graphbatch.distributed.partitioned_loader.DistNeighborLoader.locality` gives
  how much of a batch was local, cached (``--cache-rows``) or fetched from other ranks.

Each rank's epoch holds exactly ``--warmup`` + ``--batches`` batches (a seeded random
subset of the training seeds, ``nproc * --batch-size`` per step), so every rank consumes
whole epochs, as the partitioned loader's lockstep requires; the last ``--batches`` are
timed. ``--batches 0`` runs every full batch of the training set instead and reports the
measured epoch time too.

**This machine has 2 cores**: 4 processes oversubscribe it, and even 2 share the cores
with the OS and the loaders' prefetch threads. The scaling curve measured here is the
software's overhead (collectives, duplicated work, contention), not the speedup a
machine with a core per process would get.

Rows (``--out``, ``--csv``), one per (``mode``, ``method``, ``nproc``, ``cache_rows``;
``method`` and ``cache_rows`` None outside ``partitioned``):

* timing: ``batches`` (timed per rank), ``ms_per_batch`` (the slowest rank's mean),
  ``seeds_per_s`` and ``edges_per_s`` (training seeds and sampled edges per second,
  summed over ranks), ``cores_busy`` (CPU seconds of all the ranks' threads per
  wall-clock second of the timed batches, summed over ranks), ``speedup``
  (``seeds_per_s`` over the 1-process row of the same mode, method and cache; None
  without one), ``projected_epoch_s`` (the full training set's batches per rank times
  ``ms_per_batch``: projected, not measured), ``epoch_s`` (measured, ``--batches 0``
  only, else None), ``setup_s`` (the slowest rank's time to have its graph and loader
  ready: building or mapping the shared graph, loading a copy, loading a shard),
  ``partition_s`` (``partition_graph`` alone, in the parent; None outside
  ``partitioned``);
* memory, per process after its run, its max and sum over ranks: ``peak_rss_mib_max``
  and ``peak_rss_mib_sum`` (``VmHWM``: counts every mapped page a process touched, so
  shared pages count once per process), ``rss_mib_sum`` (``VmRSS``), ``pss_mib_max``
  and ``pss_mib_sum`` (``Pss`` of ``smaps_rollup``: shared pages split among their
  users, so the sum is the machine's memory for the run);
* locality (``partitioned``; None elsewhere), means over ranks of the whole epoch:
  ``nodes_per_batch``, ``local_share``, ``cached_share``, ``fetched_share`` (of a
  batch's nodes), ``fetched_bytes_per_batch`` (feature bytes received),
  ``sample_remote_share`` (sampled frontier nodes owned elsewhere),
  ``sample_bytes_per_batch`` (ids exchanged for sampling).

``--plot FILE.png`` draws the scaling curve (seeds/s over processes, ideal linear
scaling dashed), memory (PSS summed over processes), and the local share and remote KB
per batch of METIS against random parts.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any, Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor

from graphbatch import ranks
from graphbatch.cli import results
from graphbatch.cli._args import add_check, nonnegative_int, positive_int
from graphbatch.cli.harness.measure import proc_kib
from graphbatch.cli.report import Cell, formatted, number, print_table
from graphbatch.distributed.local import collect, free_port
from graphbatch.distributed.partition import METHODS

MODES = ("shared", "copies", "partitioned")

#: The locality keys of :meth:`DistNeighborLoader.locality` a row keeps.
LOCALITY_KEYS = ("nodes_per_batch", "local_share", "cached_share", "fetched_share",
                 "fetched_bytes_per_batch", "sample_remote_share", "sample_bytes_per_batch")


def _or_dash(key: str) -> Cell:
    return lambda row: "-" if row[key] is None else row[key]


#: The printed timing and memory table's columns.
COLUMNS = {
    "mode": itemgetter("mode"),
    "method": _or_dash("method"),
    "procs": itemgetter("nproc"),
    "cache": _or_dash("cache_rows"),
    "ms/batch": number("ms_per_batch"),
    "seeds/s": number("seeds_per_s", ".2f", 1e3, " k"),
    "edges/s": number("edges_per_s", ".2f", 1e6, " M"),
    "cores busy": number("cores_busy", ".2f"),
    "speedup": number("speedup", ".2f", suffix="x"),
    "epoch s (projected)": number("projected_epoch_s"),
    "epoch s": number("epoch_s"),
    "setup s": number("setup_s"),
    "partition s": number("partition_s"),
    "peak RSS max/sum MiB": lambda r: f"{r['peak_rss_mib_max']:.0f} / {r['peak_rss_mib_sum']:.0f}",
    "PSS max/sum MiB": lambda r: f"{r['pss_mib_max']:.0f} / {r['pss_mib_sum']:.0f}",
}

#: The printed locality table's columns (partitioned rows only).
LOCALITY_COLUMNS = {
    "method": itemgetter("method"),
    "procs": itemgetter("nproc"),
    "cache": itemgetter("cache_rows"),
    "nodes/batch": number("nodes_per_batch", ".0f"),
    "local": number("local_share", ".1%"),
    "cached": number("cached_share", ".1%"),
    "fetched": number("fetched_share", ".1%"),
    "feature KB/batch": number("fetched_bytes_per_batch", ".0f", 1e3),
    "sampling remote": number("sample_remote_share", ".1%"),
    "sampling KB/batch": number("sample_bytes_per_batch", ".0f", 1e3),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="synthetic-1m",
                   help="catalog name (graphbatch datasets) or path of a graph")
    p.add_argument("--nproc", type=positive_int, nargs="+", default=[1, 2, 4],
                   help="process counts, one run per count and mode")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                   help="shared: one copy of the graph per machine; copies: one per "
                   "process (the baseline); partitioned: one part per process")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                   help="how the partitioned mode partitions the graph")
    p.add_argument("--cache-rows", type=nonnegative_int, nargs="+", default=[0],
                   help="remote feature rows each rank caches (partitioned); one run per value")
    p.add_argument("--fanouts", type=int, nargs="+", default=[10, 5],
                   help="neighbors sampled per node, one number per hop (-1: all)")
    p.add_argument("--batch-size", type=positive_int, default=1024,
                   help="training seeds per batch and process")
    p.add_argument("--batches", type=nonnegative_int, default=20,
                   help="timed batches per process (0: the whole epoch)")
    p.add_argument("--warmup", type=nonnegative_int, default=3,
                   help="untimed batches per process before the timed ones")
    p.add_argument("--hidden", type=positive_int, default=256,
                   help="GraphSAGE hidden channels")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the seeds' subset, the model, the sampling and "
                   "the random partition")
    p.add_argument("--timeout-s", type=positive_int, default=180,
                   help="seconds a collective waits for the other ranks; a run is killed "
                   "after 4 times as long")
    p.add_argument("--plot", type=Path, metavar="FILE.png",
                   help="also draw the scaling curve, memory and locality as a PNG")
    results.add_output_arguments(p)
    add_check(p, _check)


def _check(args: argparse.Namespace) -> Optional[str]:
    bad = [f for f in args.fanouts if f < -1]
    if bad:
        return f"--fanouts must be -1 (every neighbor) or at least 0, got {bad[0]}"
    return None


@dataclass(frozen=True)
class Job:
    """What every rank of one run is given (pickled to the spawned processes)."""

    mode: str
    nproc: int
    dataset: str
    directory: str  # the shared graph's folder (shared) or the shards' (partitioned)
    seeds: Tensor  # [n] int64 this run's training seeds, the same on every rank
    num_features: int
    num_classes: int
    fanouts: tuple[int, ...]
    batch_size: int
    warmup: int
    hidden: int
    cache_rows: int
    seed: int
    timeout_s: int


def _memory_mib() -> dict[str, float]:
    """This process's peak and current RSS and its PSS, in MiB (0 where unreadable).
    Read PSS first, then RSS, then the peak (the kernel updates ``VmHWM`` lazily: it
    may lag ``VmRSS``, so the peak is at least the RSS read)."""
    pss = (proc_kib("Pss", "/proc/self/smaps_rollup") or 0) / 1024
    rss = (proc_kib("VmRSS") or 0) / 1024
    return {"peak_rss_mib": max(rss, (proc_kib("VmHWM") or 0) / 1024), "rss_mib": rss,
            "pss_mib": pss}


def _loader(job: Job, rank: int):
    """This rank's training loader of ``job.mode``, reading its graph as the mode does."""
    from graphbatch.datasets import load
    from graphbatch.distributed import shared_graph
    from graphbatch.distributed.partition import load_shard
    from graphbatch.distributed.partitioned_loader import DistNeighborLoader
    from graphbatch.graph import CSCGraph
    from graphbatch.loader import NeighborLoader

    common = dict(input_nodes=job.seeds, batch_size=job.batch_size, shuffle=True,
                  drop_last=True, generator=torch.Generator().manual_seed(job.seed))
    if job.mode == "partitioned":
        return DistNeighborLoader(load_shard(job.directory, rank), list(job.fanouts),
                                  cache_rows=job.cache_rows, node_tables=["x", "y"], **common)
    if job.mode == "shared":
        shared = shared_graph(lambda: load(job.dataset), job.directory)
        return NeighborLoader(shared.data, list(job.fanouts), distributed=True,
                              **shared.loader_args(), **common)
    data = load(job.dataset).clone()  # into this process's own memory
    return NeighborLoader(data, list(job.fanouts), graph=CSCGraph.from_data(data),
                          distributed=True, **common)


def _train(loader, job: Job) -> dict[str, float]:
    """One epoch of DDP GraphSAGE over ``loader``; the last batches after ``job.warmup``
    timed."""
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel

    from graphbatch.cli.harness.models import SAGE

    torch.manual_seed(job.seed)  # the same initial model on every rank (DDP checks)
    model = DistributedDataParallel(SAGE(job.num_features, job.hidden, job.num_classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    timed = seeds = edges = 0
    start = timed_start = last = time.perf_counter()
    cpu_start = time.process_time()
    for i, batch in enumerate(loader):
        optimizer.zero_grad()
        out = model(batch.x, batch.edge_index)[:batch.batch_size]
        F.cross_entropy(out, batch.y[:batch.batch_size]).backward()
        optimizer.step()
        last = time.perf_counter()
        if i == job.warmup - 1:
            timed_start, cpu_start = last, time.process_time()
        elif i >= job.warmup:
            timed += 1
            seeds += batch.batch_size
            edges += batch.num_edges
    return {"timed_batches": timed, "timed_s": last - timed_start, "seeds": seeds,
            "edges": edges, "cpu_s": time.process_time() - cpu_start,
            "epoch_s": time.perf_counter() - start}


def _rank_main(rank: int, job: Job, port: int, queue) -> None:
    """One rank of a run: its setup, its epoch, its memory, put on ``queue`` as
    ``(rank, dict)``, or ``(rank, error text)`` if anything raised."""
    import numba

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(job.nproc), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(job.nproc), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)  # as torchrun's OMP_NUM_THREADS=1: N processes, few cores
    numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS,
                                     (os.cpu_count() or 1) // job.nproc)))
    try:
        dist.init_process_group("gloo", rank=rank, world_size=job.nproc,
                                timeout=timedelta(seconds=job.timeout_s))
        start = time.perf_counter()
        loader = _loader(job, rank)
        setup_s = time.perf_counter() - start
        out = {**_train(loader, job), "setup_s": setup_s}
        if job.mode == "partitioned":
            locality = loader.locality()
            out.update({k: locality[k] for k in LOCALITY_KEYS})
        queue.put((rank, {**out, **_memory_mib()}))
        finished = True
    except BaseException as exc:  # noqa: BLE001 -- raised by the parent, with every rank's
        queue.put((rank, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        finished = False
    ranks.leave(finished)


def run_ranks(job: Job) -> list[dict[str, float]]:
    """Runs ``job`` on ``job.nproc`` spawned processes; every rank's result, by rank.

    Raises RuntimeError naming every rank that raised (with its exception and
    traceback), died without a result, or had none after ``4 * job.timeout_s``
    seconds; processes still running then are killed, so a failed run never hangs.
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, job, port, queue), daemon=True)
             for r in range(job.nproc)]
    for p in procs:
        p.start()
    got: dict[int, Any] = {}
    try:
        got = collect(procs, queue, 4 * job.timeout_s)
    finally:
        for p in procs:
            p.join(timeout=10.0 if len(got) == job.nproc else 0.0)
            if p.is_alive():
                p.kill()
                p.join()
    errors = []
    for rank, p in enumerate(procs):
        if rank not in got:
            errors.append(f"rank {rank}: no result (exit code {p.exitcode}; killed if "
                          f"still running after {4 * job.timeout_s} s)")
        elif isinstance(got[rank], str):
            errors.append(f"rank {rank}: {got[rank]}")
    if errors:
        raise RuntimeError(f"bench distributed: mode {job.mode!r} on {job.nproc} processes "
                           "failed:\n" + "\n".join(errors))
    return [got[r] for r in range(job.nproc)]


def _row(job: Job, method: Optional[str], per_rank: list[dict[str, float]],
         batches_per_epoch: int, whole_epoch: bool, partition_s: Optional[float]) -> dict:
    """The table's row of one run from its ranks' results."""
    s_per_batch = max(r["timed_s"] / r["timed_batches"] for r in per_rank)
    partitioned = job.mode == "partitioned"
    row = {
        "mode": job.mode, "method": method, "nproc": job.nproc,
        "cache_rows": job.cache_rows if partitioned else None,
        "batches": per_rank[0]["timed_batches"],
        "ms_per_batch": 1000 * s_per_batch,
        "seeds_per_s": sum(r["seeds"] / r["timed_s"] for r in per_rank),
        "edges_per_s": sum(r["edges"] / r["timed_s"] for r in per_rank),
        "cores_busy": sum(r["cpu_s"] / r["timed_s"] for r in per_rank),
        "speedup": None,
        "projected_epoch_s": batches_per_epoch * s_per_batch,
        "epoch_s": max(r["epoch_s"] for r in per_rank) if whole_epoch else None,
        "setup_s": max(r["setup_s"] for r in per_rank),
        "partition_s": partition_s,
    }
    for key in ("peak_rss_mib", "pss_mib"):
        row[f"{key}_max"] = max(r[key] for r in per_rank)
        row[f"{key}_sum"] = sum(r[key] for r in per_rank)
    row["rss_mib_sum"] = sum(r["rss_mib"] for r in per_rank)
    for key in LOCALITY_KEYS:
        row[key] = sum(r[key] for r in per_rank) / job.nproc if partitioned else None
    return row


def _series(row: dict) -> tuple:
    """What a row's run is, but for its process count: rows of one scaling curve."""
    return row["mode"], row["method"], row["cache_rows"]


def _label(series: tuple) -> str:
    mode, method, cache_rows = series
    if mode != "partitioned":
        return mode
    return f"partitioned ({method}" + (f", cache {cache_rows})" if cache_rows else ")")


def _add_speedups(rows: list[dict]) -> None:
    """Sets each row's ``speedup`` against the 1-process row of its series."""
    base = {_series(r): r["seeds_per_s"] for r in rows if r["nproc"] == 1}
    for row in rows:
        one = base.get(_series(row))
        row["speedup"] = None if one is None else row["seeds_per_s"] / one


def _check_sizes(num_train: int, args: argparse.Namespace) -> Optional[str]:
    """Why the training set cannot give the batches asked for at the largest process
    count, or None."""
    nproc = max(args.nproc)
    per_rank = num_train // (nproc * args.batch_size)
    need = args.warmup + max(args.batches, 1)
    if per_rank < need:
        return (f"--dataset {args.dataset}'s {num_train} training seeds give {per_rank} "
                f"batches of --batch-size {args.batch_size} per process on {nproc} "
                f"processes, fewer than --warmup {args.warmup} + "
                f"{f'--batches {args.batches}' if args.batches else 'one timed batch'}")
    return None


def run(args: argparse.Namespace) -> list[dict]:
    """Runs every mode on every process count, prints the tables, writes ``--out``,
    ``--csv`` and ``--plot``; returns the rows."""
    from graphbatch.datasets import load
    from graphbatch.distributed.partition import partition_graph, save_shards
    from graphbatch.graph import CSCGraph

    data = load(args.dataset)
    train = data.train_mask.nonzero().view(-1)
    problem = _check_sizes(train.numel(), args)
    if problem is not None:
        raise SystemExit(f"graphbatch bench distributed: {problem}")
    order = train[torch.randperm(train.numel(), generator=torch.Generator().manual_seed(args.seed))]
    cores = os.cpu_count() or 1
    print(f"{args.dataset}: {data.num_nodes:,} nodes, {data.num_edges:,} edges, "
          f"{train.numel():,} training seeds; fanouts {args.fanouts}, batch size "
          f"{args.batch_size} per process; {cores} cores"
          + (f" (oversubscribed from {cores + 1} processes)" if max(args.nproc) > cores else ""))
    graph = CSCGraph.from_data(data) if "partitioned" in args.modes else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="graphbatch-bench-distributed-") as tmp:
        for nproc in args.nproc:
            step = nproc * args.batch_size
            batches_per_epoch = train.numel() // step
            per_rank = batches_per_epoch if args.batches == 0 else args.warmup + args.batches
            common = dict(nproc=nproc, dataset=args.dataset, seeds=order[:per_rank * step],
                          num_features=data.num_features, num_classes=int(data.y.max()) + 1,
                          fanouts=tuple(args.fanouts), batch_size=args.batch_size,
                          warmup=args.warmup, hidden=args.hidden, seed=args.seed,
                          timeout_s=args.timeout_s)
            runs: list[tuple[Job, Optional[str], Optional[float]]] = []
            for mode in ("shared", "copies"):
                if mode in args.modes:
                    runs.append((Job(mode, directory=f"{tmp}/shared{nproc}", cache_rows=0,
                                     **common), None, None))
            for method in args.methods if "partitioned" in args.modes else ():
                root = f"{tmp}/{method}{nproc}"
                start = time.perf_counter()
                book = partition_graph(data, nproc, method, seed=args.seed, graph=graph)
                partition_s = time.perf_counter() - start
                save_shards(data, book, root, graph)
                runs += [(Job("partitioned", directory=root, cache_rows=c, **common), method,
                          partition_s) for c in args.cache_rows]
            for job, method, partition_s in runs:
                print(f"{job.mode}{f' ({method})' if method else ''} on {nproc} "
                      f"process{'es' if nproc > 1 else ''}...", flush=True)
                rows.append(_row(job, method, run_ranks(job), batches_per_epoch,
                                 args.batches == 0, partition_s))
    _add_speedups(rows)
    print_table(formatted(rows, COLUMNS))
    partitioned = [r for r in rows if r["mode"] == "partitioned"]
    if partitioned:
        print("\nlocality of the partitioned runs (per process and batch, mean over processes):")
        print_table(formatted(partitioned, LOCALITY_COLUMNS))
    results.write_outputs(args, "bench distributed", rows)
    if args.plot is not None:
        plot(rows, args.plot, f"{args.dataset}, fanouts {args.fanouts}, batch "
             f"{args.batch_size} per process, {cores} cores")
        print(f"plot: {args.plot}")
    return rows


def plot(rows: list[dict], path: Path, subtitle: str) -> None:
    """Writes the scaling curve, memory and locality of ``rows`` as a PNG to ``path``
    (without pyplot: the caller's backend and figures are left alone)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 9.5), layout="constrained")
    fig.suptitle(f"graphbatch bench distributed: {subtitle}")
    (scaling, memory), (local, remote) = fig.subplots(2, 2)
    procs = sorted({r["nproc"] for r in rows})
    series: dict[tuple, list[dict]] = {}
    for row in sorted(rows, key=itemgetter("nproc")):
        series.setdefault(_series(row), []).append(row)
    ideal_label: Optional[str] = "dashed: ideal (linear) scaling"
    for i, (key, points) in enumerate(series.items()):
        color = f"C{i}"
        x = [r["nproc"] for r in points]
        scaling.plot(x, [r["seeds_per_s"] / 1e3 for r in points], "o-", color=color,
                     label=_label(key))
        one = [r["seeds_per_s"] for r in points if r["nproc"] == 1]
        if one:
            # One legend entry says what every dashed line is.
            scaling.plot(procs, [one[0] * n / 1e3 for n in procs], "--", color=color,
                         alpha=0.5, label=ideal_label)
            ideal_label = None
        memory.plot(x, [r["pss_mib_sum"] for r in points], "o-", color=color,
                    label=_label(key))
        if key[0] == "partitioned":
            local.plot(x, [100 * r["local_share"] for r in points], "o-", color=color,
                       label=f"{_label(key)}: local")
            if key[2]:
                local.plot(x, [100 * (r["local_share"] + r["cached_share"]) for r in points],
                           "s:", color=color, label=f"{_label(key)}: local + cached")
            remote.plot(x, [r["fetched_bytes_per_batch"] / 1e3 for r in points], "o-",
                        color=color, label=f"{_label(key)}: feature rows")
            remote.plot(x, [r["sample_bytes_per_batch"] / 1e3 for r in points], "s--",
                        color=color, label=f"{_label(key)}: sampling ids")
    scaling.set(title="Training throughput (summed over processes)", xlabel="processes",
                ylabel="training seeds per second (thousands)")
    memory.set(title="Memory after the run (PSS: shared pages split among processes)",
               xlabel="processes", ylabel="PSS summed over processes (MiB)")
    local.set(title="Batch nodes owned by the rank (partitioned)", xlabel="processes",
              ylabel="share of a batch's nodes (%)", ylim=(0, 105))
    remote.set(title="Bytes received from other ranks (partitioned)", xlabel="processes",
               ylabel="KB per batch and process")
    for ax in (scaling, memory, local, remote):
        ax.set_xticks(procs)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "no partitioned runs", ha="center", va="center",
                    transform=ax.transAxes)
    scaling.set_ylim(bottom=0)
    memory.set_ylim(bottom=0)
    remote.set_ylim(bottom=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
