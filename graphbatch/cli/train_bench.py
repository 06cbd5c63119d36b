"""``graphbatch bench``: train models with every sampler on datasets of the catalog, side
by side with full-batch training (and PyG's loaders with ``--compare pyg``), on each
dataset's standard split, and report the test metric at the best validation epoch
(mean ± std over seeds), per-stage epoch times, throughput and peak memory per run.

Each sampler's defaults come from its paper (see
:mod:`graphbatch.cli.harness.settings`); ``--set key=value`` overrides them.
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Optional

import torch
from tqdm import tqdm

from graphbatch.cli._args import add_check, nonnegative_int, positive_int
from graphbatch.cli.harness import pyg
from graphbatch.cli.harness.models import MODELS
from graphbatch.cli.harness.samplers import GRAPHBATCH, PYG
from graphbatch.cli.harness.settings import SAMPLERS, parse_overrides, resolve
from graphbatch.cli.harness.train import Dataset, summarize, train_run
from graphbatch.cli.report import Cell, formatted, number, print_table
from graphbatch.cli.results import add_output_arguments, write_outputs
from graphbatch.datasets import catalog


def dataset_name(text: str) -> str:
    """An argparse ``type``: a catalog name or a path to a graph."""
    try:
        return catalog.check_dataset(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", nargs="+", default=["synthetic"], type=dataset_name,
                   metavar="NAME", help="catalog names (graphbatch datasets) or paths to "
                   "graphs (a torch.save'd Data, a folder in PyG's raw layout)")
    p.add_argument("--sampler", nargs="+", default=["neighbor"], choices=SAMPLERS,
                   help="samplers to train with; full is full-batch training, lazy is "
                   "LazyGNN on cluster batches with their halo")
    p.add_argument("--model", nargs="+", default=["sage"], choices=MODELS,
                   help="models (two PyG layers each); lazy always trains LazyGNN")
    p.add_argument("--seeds", type=positive_int, default=1,
                   help="runs per row, seeded 0 to N-1; the table shows mean ± std")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="most epochs per run, for every sampler (default: each "
                   "sampler's own, see the README); runs stop earlier after patience "
                   "epochs without a better validation metric")
    p.add_argument("--split", type=nonnegative_int, default=0,
                   help="which of a dataset's splits: its fixed split column, or the "
                   "seed of its random 60/20/20 split")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the model trains; on cuda, graphbatch's batches are "
                   "gathered zero-copy from pinned host memory")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a setting of every sampler that has it (hidden=256) or "
                   "of one (neighbor.fanouts=15,10)")
    p.add_argument("--compare", nargs="+", default=[], choices=("pyg",),
                   help="add reference rows: PyG's loader of the same kind on the same "
                   "split, model and seeds, with ratio columns")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-timing", dest="timing", action="store_false",
                   help="time whole epochs only, not their stages (to measure what the "
                   "instrumentation costs)")
    add_output_arguments(p)
    add_check(p, _check)


def _check(args: argparse.Namespace) -> Optional[str]:
    try:
        parse_overrides(args.overrides, args.sampler)
    except ValueError as exc:
        return str(exc)
    if args.device == "cuda" and not torch.cuda.is_available():
        return "--device cuda: torch sees no CUDA device here"
    return None


def _test(row: dict[str, Any]) -> str:
    return (f"{100 * row['test_mean']:.1f} ± {100 * row['test_std']:.1f}"
            + (" auc" if row["metric"] == "roc_auc" else ""))


def _vs_pyg(row: dict[str, Any]) -> str:
    if "speedup_vs_pyg" not in row:
        return "-"
    return (f"{row['speedup_vs_pyg']:.2f}x time, {row['memory_vs_pyg']:.2f}x mem, "
            f"{row['test_diff_vs_pyg']:+.1f} pt")


#: The terminal table's columns (metrics in points; seconds per epoch).
COLUMNS: dict[str, Cell] = {
    "dataset": lambda r: r["dataset"], "sampler": lambda r: r["sampler"],
    "model": lambda r: r["model"], "impl": lambda r: r["impl"], "test": _test,
    "val": number("val_mean", ".1f", 0.01), "epochs": number("epochs_mean", ".0f"),
    "epoch s": number("epoch_s", ".2f"), "sample": number("sample_s", ".2f"),
    "gather": number("gather_s", ".2f"), "train": number("train_s", ".2f"),
    "wait": number("wait_s", ".2f"), "nodes/s": number("targets_per_s", ".1f", 1e3, "k"),
    "edges/s": number("edges_per_s", ".2f", 1e6, "M"), "t99 s": number("time_to_99_s", ".1f"),
    "peak MiB": number("peak_rss_mib", ".0f"), "cuda MiB": number("cuda_peak_mib", ".0f"),
    "vs pyg": _vs_pyg,
}


def table(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Summary rows as the terminal table shows them; a reference row that could not
    run shows its reason. Columns no row has a value for are left out."""
    shown = [{k: "-" for k in COLUMNS} | {k: row[k] for k in ("dataset", "sampler", "model",
                                                              "impl")} | {"test": row["note"]}
             if "note" in row else formatted([row], COLUMNS)[0] for row in rows]
    empty = [k for k in ("cuda MiB", "vs pyg") if all(r[k] == "-" for r in shown)]
    return [{k: v for k, v in r.items() if k not in empty} for r in shown]


def _public_split(name: str) -> bool:
    try:
        return catalog.entry(name).split == catalog.PUBLIC
    except ValueError:  # a graph given by path
        return False


def _runs(ds: Dataset, sampler: str, model: str, s: dict[str, Any], args: argparse.Namespace,
          impl: str, bar: tqdm) -> list[dict[str, Any]]:
    runs = []
    for seed in range(args.seeds):
        runs.append(train_run(ds, sampler, model, seed, s, torch.device(args.device), impl,
                              args.timing, args.quiet))
        bar.update()
    return runs


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Trains every (dataset, sampler, model) over ``--seeds`` seeds; prints the table and
    writes ``--out``/``--csv``. Returns the summary rows (numbers, as in the JSON)."""
    overrides = parse_overrides(args.overrides, args.sampler)
    if args.epochs is not None:
        for s in overrides.values():
            s["epochs"] = args.epochs
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for name in args.dataset:
        t0 = time.perf_counter()
        data = catalog.load(name, split=args.split)
        ds = Dataset.of(name, data, catalog.metric_of(name), _public_split(name))
        if not args.quiet:
            print(f"{name}: {data.num_nodes:,} nodes, {data.num_edges:,} edges, "
                  f"{data.num_features} features, {ds.num_classes} classes, metric "
                  f"{ds.metric} (loaded in {time.perf_counter() - t0:.1f} s)")
        combos = [(sampler, model) for sampler in args.sampler
                  for model in (["lazygnn"] if sampler == "lazy" else args.model)]
        total = len(combos) * args.seeds * (2 if "pyg" in args.compare else 1)
        bar = tqdm(total=total, desc=f"{name} runs", disable=args.quiet, leave=False)
        for sampler, model in combos:
            s = resolve(sampler, overrides[sampler], data.num_nodes)
            ours = _runs(ds, sampler, model, s, args, GRAPHBATCH, bar)
            runs += ours
            row = summarize(ours)
            rows.append(row)
            if "pyg" in args.compare and sampler in pyg.COMPARABLE:
                missing = pyg.missing_backend(sampler)
                if missing is not None:
                    rows.append({**{k: row[k] for k in ("dataset", "sampler", "model")},
                                 "impl": PYG, "note": missing})
                    continue
                theirs = _runs(ds, sampler, model, s, args, PYG, bar)
                runs += theirs
                ref = summarize(theirs)
                row.update(pyg.ratios(row, ref))
                rows.append(ref)
        bar.close()
    print_table(table(rows))
    write_outputs(args, "bench", rows, runs)
    return rows
