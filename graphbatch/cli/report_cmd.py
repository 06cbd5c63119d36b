"""``graphbatch report FILE.json [--plot DIR]``: the table of a results file written by
``graphbatch bench --out``, and its plots.

Plots (PNG, matplotlib) for the training harness's files:

* ``val_vs_time_<dataset>.png``: the validation metric against training wall-clock
  time, one line per (sampler, model, loader) and seed;
* ``throughput.png``: sampled edges per second of training, per row;
* ``memory.png``: peak host RSS per row (and CUDA's peak where measured).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from graphbatch.cli import results
from graphbatch.cli.report import print_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="a results file of graphbatch bench --out")
    p.add_argument("--plot", type=Path, metavar="DIR",
                   help="write the plots as PNG files into this folder")


def _label(row: dict[str, Any]) -> str:
    impl = "" if row.get("impl", "graphbatch") == "graphbatch" else f" ({row['impl']})"
    return f"{row['sampler']} {row['model']}{impl}"


def plot(doc: dict[str, Any], folder: Path) -> list[Path]:
    """Writes the harness's plots of ``doc`` into ``folder``; returns their paths.

    Figures are made without pyplot, so the caller's backend and open figures (a
    notebook's inline plots) are left as they were."""
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    rows = [r for r in doc["rows"] if "note" not in r]
    for dataset in dict.fromkeys(r["dataset"] for r in doc["runs"]):
        fig = Figure(figsize=(7, 4.5))
        ax = fig.subplots()
        colors: dict[str, Any] = {}
        for run in (r for r in doc["runs"] if r["dataset"] == dataset):
            label = _label(run)
            first = label not in colors
            color = colors.setdefault(label, f"C{len(colors) % 10}")
            curve = run["curve"]
            ax.plot([c["time_s"] for c in curve], [100 * c["val"] for c in curve],
                    color=color, alpha=0.8, label=label if first else None)
        metric = doc["runs"][0]["metric"].replace("_", "-")
        ax.set(xlabel="training time (s)", ylabel=f"validation {metric} (%)",
               title=f"{dataset}: validation {metric} against time")
        ax.legend(fontsize=8)
        written.append(_save(fig, folder / f"val_vs_time_{dataset}.png"))
    labels = [f"{r['dataset']}\n{_label(r)}" for r in rows]
    for name, key, scale, unit in (("throughput", "edges_per_s", 1e6, "sampled edges/s (M)"),
                                   ("memory", "peak_rss_mib", 1.0, "peak host RSS (MiB)")):
        fig = Figure(figsize=(max(6, 0.6 * len(rows)), 4.5))
        ax = fig.subplots()
        ax.bar(range(len(rows)), [(r[key] or 0) / scale for r in rows], color="C0",
               label=unit)
        if key == "peak_rss_mib" and any(r.get("cuda_peak_mib") for r in rows):
            ax.bar(range(len(rows)), [r.get("cuda_peak_mib") or 0 for r in rows],
                   color="C1", alpha=0.7, label="CUDA max_memory_allocated (MiB)")
            ax.legend(fontsize=8)
        ax.set_xticks(range(len(rows)), labels, rotation=60, ha="right", fontsize=7)
        ax.set(ylabel=unit, title=unit)
        written.append(_save(fig, folder / f"{name}.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def run(args: argparse.Namespace) -> dict[str, Any]:
    doc = results.read(args.file)
    if doc["command"] == "bench":
        from graphbatch.cli.train_bench import table

        print_table(table(doc["rows"]))
    else:
        print_table(doc["rows"])
    if args.plot is not None:
        if doc["command"] != "bench":
            raise SystemExit(f"graphbatch report: --plot draws the training harness's "
                             f"results (graphbatch bench --out); {str(args.file)!r} holds "
                             f"{doc['command']!r}")
        for path in plot(doc, args.plot):
            print(f"wrote {path}")
    return doc
