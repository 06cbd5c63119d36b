"""Removes outputs, execution counts and run metadata from notebooks, in place.

    python examples/notebooks/strip_outputs.py                 # every notebook here
    python examples/notebooks/strip_outputs.py 01_quickstart.ipynb

Notebooks are committed without outputs (tests/test_examples.py checks it): run this
after saving one from Jupyter.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def strip(path: Path) -> bool:
    """Strips the notebook at ``path``; returns whether anything changed."""
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            cell.outputs, cell.execution_count = [], None
            changed = True
        for key in ("execution", "collapsed", "scrolled"):
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv: list[str]) -> None:
    here = Path(__file__).resolve().parent
    paths = [Path(a) if Path(a).exists() else here / a for a in argv] or sorted(here.glob("*.ipynb"))
    for path in paths:
        print(f"{path.name}: {'stripped' if strip(path) else 'already clean'}")


if __name__ == "__main__":
    main(sys.argv[1:])
