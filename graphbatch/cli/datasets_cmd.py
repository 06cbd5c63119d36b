"""``graphbatch datasets``: the dataset catalog as a table (or JSON).

Every present dataset is loaded, so its counts are what ``load`` gives (about 20 s the
first time, when PyG processes the raw files; less once ``processed/`` exists in the
data root). An absent one shows ``-`` for its counts.
"""
from __future__ import annotations

import argparse
import json

from graphbatch.cli.report import print_table
from graphbatch.datasets import catalog


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the rows as a JSON list")


def row(name: str) -> dict:
    """The catalog row of ``name``: counts from loading it where its raw files are
    present, ``-`` where they are not."""
    e = catalog.entry(name)
    if e is catalog.SYNTHETIC:
        source, present = "generated (planted_classes)", True
    else:
        folder = catalog.source_folder(name)
        source = str(folder) if folder is not None else "-"
        present = folder is not None and folder.is_dir()
    counts = dict.fromkeys(("nodes", "edges", "features", "classes"), "-")
    if present:
        data = catalog.load(name)
        counts = {"nodes": data.num_nodes, "edges": data.num_edges,
                  "features": data.num_features, "classes": int(data.y.max()) + 1}
    return {"name": name, **counts, "split": e.describe_split(), "metric": e.metric,
            "source": source, "present": "yes" if present else "no"}


def run(args: argparse.Namespace) -> list[dict]:
    rows = [row(name) for name in catalog.NAMES]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_table(rows)
    return rows
