"""The tutorial notebooks (examples/notebooks/) and example scripts (examples/*.py) run.

Each notebook is executed top to bottom by nbclient in a fresh kernel of this
interpreter (the project's venv, through a kernel spec of the tests' own), with ``GRAPHBATCH_QUICK=1`` (the notebooks train fewer
epochs but run every cell) and a temporary folder as its working directory, so that
nothing is written into the checkout. A cell error fails the test with the notebook's
name, the cell's number and source, and the traceback. Each script runs with
``--epochs 1`` (and a small dataset where its default is large).

Committed notebooks hold no outputs: a test fails on any output or execution count
(``python examples/notebooks/strip_outputs.py`` removes them).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from conftest import needs_datasets

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOK_DIR = EXAMPLES / "notebooks"

#: Every notebook, and whether it reads the real datasets of ../shared/datasets.
NOTEBOOKS = {
    "01_quickstart.ipynb": True,  # Cora
    "02_samplers.ipynb": True,  # Amazon Photo
    "03_features.ipynb": True,  # Cora, besides the synthetic graphs
    "04_lazygnn.ipynb": True,  # Cora, Amazon Photo
    "05_benchmarks.ipynb": True,  # Cora
}

#: Every script, with the arguments of its short run.
SCRIPTS = {
    "neighbor_sage.py": ["--epochs", "1", "--dataset", "Cora"],
    "graph_saint.py": ["--epochs", "1", "--dataset", "Cora", "--batch-size", "300",
                       "--use_normalization"],
    "cluster_gcn.py": ["--epochs", "1", "--dataset", "Cora"],
    "lazygnn.py": ["--epochs", "1", "--seeds", "1"],
    "distributed_sage.py": ["--epochs", "1", "--dataset", "Cora"],
}
#: What starts a script other than ``python``: torchrun for the distributed one, with
#: the workers' threads limited as torchrun would (it sets OMP_NUM_THREADS=1 only
#: when the user has not).
LAUNCHERS = {
    "distributed_sage.py": ["-m", "torch.distributed.run", "--nproc_per_node", "2"],
}

#: Seconds a notebook or script may take before the test fails (CI budget: about 8
#: minutes for all of them on 2 cores).
TIMEOUT = 300
#: The kernel the notebooks run in: this interpreter, whatever kernels Jupyter knows.
KERNEL = "graphbatch-tests"


def _marks(needs: bool) -> list:
    return [needs_datasets, pytest.mark.slow] if needs else [pytest.mark.slow]


@pytest.fixture(autouse=True)
def passive_openmp(monkeypatch):
    """The kernels and scripts start with torch's OpenMP threads sleeping rather than
    spinning while they wait (README, "Threads and workers"): spinning teams lose their
    time slices to the prefetch threads and to any other process, which made these tests
    4 to 10 times slower on a 2-core machine under load (03_features: 210 s against 21 s)."""
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts)


@pytest.fixture
def kernel(tmp_path_factory, monkeypatch) -> str:
    """A kernel spec running this interpreter (the venv's python), found first by
    Jupyter (JUPYTER_PATH): a kernel spec of the user's own cannot take its place."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "graphbatch tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(root))
    return KERNEL


def test_every_example_is_tested():
    """A new notebook or script must be added to the tables above, so that it runs."""
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == sorted(SCRIPTS)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_is_stripped(name):
    """Notebooks are committed without outputs and execution counts."""
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells, start=1) if cell.cell_type == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (f"{name}: cells {dirty} hold outputs or execution counts; run "
                       f"`python examples/notebooks/strip_outputs.py` before committing")


def run_notebook(path: Path, workdir: Path, kernel_name: str) -> float:
    """Executes the notebook at ``path`` in ``workdir``; returns its seconds. Fails the
    test naming the notebook and the cell on any error or timeout."""
    nb = nbformat.read(path, as_version=4)
    current = {"cell": 0}

    def on_cell_start(cell, cell_index, **kwargs):
        current["cell"] = cell_index + 1  # numbered from 1, markdown cells included

    client = NotebookClient(nb, timeout=TIMEOUT, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(workdir)}},
                            on_cell_start=on_cell_start)
    start = time.perf_counter()
    error = None
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as exc:
        error = exc
    if error is not None:  # outside the except block: no chained traceback
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # the kernel's colours
        pytest.fail(f"{path.name}: cell {current['cell']} of {len(nb.cells)} failed "
                    f"({type(error).__name__}):\n{text}", pytrace=False)
    seconds = time.perf_counter() - start
    # A figure shown but not rendered (a library call switched matplotlib's backend, say)
    # is an error too: every cell that shows a plot must hold an image.
    blank = [i for i, cell in enumerate(nb.cells, start=1) if cell.cell_type == "code"
             and ("plt.show()" in cell.source or "Image(" in cell.source)
             and not any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))]
    assert not blank, f"{path.name}: cells {blank} show a plot but hold no image"
    return seconds


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(needs))
                                  for n, needs in sorted(NOTEBOOKS.items())])
def test_notebook_runs(name, tmp_path, monkeypatch, kernel):
    monkeypatch.setenv("GRAPHBATCH_QUICK", "1")
    before = _files(EXAMPLES)
    seconds = run_notebook(NOTEBOOK_DIR / name, tmp_path, kernel)
    print(f"{name}: {seconds:.1f} s")
    assert _files(EXAMPLES) == before, f"{name} wrote files into examples/"


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(True)) for n in sorted(SCRIPTS)])
def test_script_runs(name, tmp_path):
    before = _files(EXAMPLES)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *LAUNCHERS.get(name, []), str(EXAMPLES / name),
                           *SCRIPTS[name]],
                          cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
    output = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, f"{name} {' '.join(SCRIPTS[name])} failed:\n{output}"
    assert "Epoch" in proc.stdout or "Part 2" in proc.stdout, f"{name} printed:\n{output}"
    assert _files(EXAMPLES) == before, f"{name} wrote files into examples/"
    print(f"{name}: {time.perf_counter() - start:.1f} s")
