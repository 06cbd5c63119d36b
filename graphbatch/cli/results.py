"""The JSON and CSV files every ``graphbatch bench`` command can write.

One schema for all of them, versioned: ``{"schema": "graphbatch-bench", "version": 1,
"command", "argv", "created", "environment", "settings", "rows", "runs"}``.

* ``rows``: one dict per row of the printed table, with numbers as numbers (units in the
  key names: ``epoch_s``, ``peak_rss_mib``), not the table's formatted strings.
* ``runs``: the training harness's per-run records (per-epoch curves); ``[]`` for the
  micro-benchmarks.
* ``environment``: package versions, CPU model, core and thread counts, GPU.

:func:`read` refuses another schema or a newer version, so a reader never misreads a
file written by a later graphbatch.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, Optional

SCHEMA = "graphbatch-bench"
VERSION = 1
KEYS = ("schema", "version", "command", "argv", "created", "environment", "settings",
        "rows", "runs")


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """``--out FILE.json`` and ``--csv FILE.csv``, shared by every bench command."""
    p.add_argument("--out", type=Path, metavar="FILE.json",
                   help="also write the results, environment and settings as JSON")
    p.add_argument("--csv", type=Path, metavar="FILE.csv",
                   help="also write the table's rows as CSV")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Where the numbers were made: versions, CPU, cores, threads, GPU."""
    import numba
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    packages = ("graphbatch", "torch", "torch_geometric", "numba", "numpy", "scipy",
                "pymetis", "pyg_lib", "torch_sparse")
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: _version(name.replace("_", "-")) for name in packages},
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": _threading_layer(),
        "gpu": gpu,
    }


def _threading_layer() -> Optional[str]:
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        return None


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it: paths and other objects as strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options, without argparse's private entries."""
    return {k: _plain(v) for k, v in vars(args).items() if not k.startswith("_")}


def document(command: str, args: argparse.Namespace, rows: list[dict],
             runs: Optional[list[dict]] = None) -> dict[str, Any]:
    """The whole file's contents for a run of ``command`` (``"bench"``, ``"bench
    sampler"``, ...)."""
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "command": command,
        "argv": list(getattr(args, "_argv", sys.argv[1:])),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "settings": settings_of(args),
        "rows": _plain(rows),
        "runs": _plain(runs or []),
    }


def write_csv(path: Path, rows: list[dict]) -> None:
    """``rows`` as CSV, one column per key of any row (blank where a row lacks it)."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v
                             for k, v in row.items()})


def write_outputs(args: argparse.Namespace, command: str, rows: list[dict],
                  runs: Optional[list[dict]] = None) -> None:
    """Writes ``--out`` (JSON) and ``--csv`` where ``args`` asks for them."""
    if getattr(args, "out", None) is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(document(command, args, rows, runs), f, indent=1)
            f.write("\n")
    if getattr(args, "csv", None) is not None:
        write_csv(args.csv, rows)


def read(path: Path) -> dict[str, Any]:
    """A results file, checked: its schema, a version this graphbatch reads, every key."""
    with open(path) as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"{str(path)!r} is not a graphbatch bench results file (schema "
                         f"{doc.get('schema') if isinstance(doc, dict) else None!r})")
    if not isinstance(doc.get("version"), int) or doc["version"] > VERSION:
        raise ValueError(f"{str(path)!r} has schema version {doc.get('version')!r}; this "
                         f"graphbatch reads versions up to {VERSION}")
    missing = [k for k in KEYS if k not in doc]
    if missing:
        raise ValueError(f"{str(path)!r} lacks {missing}")
    return doc
