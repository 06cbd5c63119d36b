"""``graphbatch datasets``: the dataset catalog as a table (or JSON).

Every present real dataset is loaded, so its counts are what ``load`` gives (about 20 s
the first time, when PyG processes the raw files; less once ``processed/`` exists in
the data root). Synthetic graphs are never built here: their counts are nominal (edges
``~E``, from the generator's parameters) until they are cached, then exact (read from
the cached file's index). OGB datasets are counted from their small files (node and
edge counts, the first feature row). An absent dataset shows ``-`` for its counts.
"""
from __future__ import annotations

import argparse
import json
from graphbatch.cli.report import print_table
from graphbatch.datasets import catalog, ogb, sizes


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the rows as JSON")


COUNTS = ("nodes", "edges", "features", "classes")


def _real(name: str) -> tuple[dict, str, bool]:
    """(counts, source folder, present) of a real PyG dataset, loading it if present."""
    folder = catalog.source_folder(name)
    present = folder is not None and folder.is_dir()
    counts = dict.fromkeys(COUNTS, "-")
    if present:
        data = catalog.load(name)
        counts = {"nodes": data.num_nodes, "edges": data.num_edges,
                  "features": data.num_features, "classes": int(data.y.max()) + 1}
    return counts, str(folder) if folder is not None else "-", present


def row(name: str) -> dict:
    """The catalog row of ``name``: counts, split, metric, where it is read from (for
    an absent OGB dataset, the first folder it is looked for in), whether it is present,
    and whether graphbatch keeps a built or converted copy (``-``: it keeps none)."""
    e = catalog.entry(name)
    cached = "-"
    if e.source == catalog.GENERATED:
        d = sizes.describe(name, catalog.data_root())
        source, present, cached = f"generated ({e.cls}, seed 0)", True, d["cached"]
    elif e.source == catalog.OGB:
        roots = catalog.ogb_roots()
        d = ogb.describe(name, roots, catalog.data_root())
        present, cached = d["folder"] is not None, d["cached"]
        source = str(d["folder"] if present else ogb.candidates(name, roots)[0])
    else:
        d, source, present = _real(name)
    return {"name": name, **{k: d[k] for k in COUNTS}, "split": e.describe_split(),
            "metric": e.metric, "source": source, "present": "yes" if present else "no",
            "cached": cached}


def run(args: argparse.Namespace) -> list[dict]:
    rows = [row(name) for name in catalog.NAMES]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_table(rows)
    return rows
