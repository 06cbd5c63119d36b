"""The micro-benchmarks (``graphbatch bench sampler|gather|pipeline|saint|cluster``) end
to end on tiny settings, through ``main``: the ``--out`` JSON round-trips through
``results.read`` with numeric rows under the documented keys, the ``--csv`` holds the
printed table's rows, bad arguments give argparse's usage error, and every option
follows the one naming and help style."""
from __future__ import annotations

import argparse
import csv
import re
from numbers import Real

import pytest

from graphbatch.cli import gather_bench, results, saint_bench
from graphbatch.cli.main import build_parser, main
from graphbatch.cli.report import formatted

#: Small enough for seconds each on 2 cores.
GRAPH = ["--num-nodes", "3000", "--num-pairs", "15000", "--num-features", "4"]
ARGV = {
    "sampler": [*GRAPH, "--fanouts", "5", "5", "--batch-size", "64", "--num-input-nodes",
                "1000", "--batches", "3", "--warmup", "1"],
    "gather": ["--row-bytes", "128", "256", "--table-mib", "2", "--gather-mib", "1",
               "--repeats", "2", "--rounds", "2", "--train-steps", "2"],
    "pipeline": ["--batch-size", "64", "--fanouts", "5", "5", "--hidden", "8",
                 "--batches", "3"],
    "saint": [*GRAPH, "--node-budget", "200", "--edge-budget", "100", "--roots", "50",
              "--batches", "3", "--rounds", "2", "--sample-coverage", "1"],
    "cluster": [*GRAPH, "--num-parts", "20", "--batch-size", "4", "--batches", "5"],
}
#: Each command's row keys, as its module docstring lists them; the text ones first.
TEXT = {"sampler": ["loader"], "gather": [], "pipeline": ["mode"],
        "saint": ["sampler", "pyg_error"], "cluster": ["loader"]}
KEYS = {
    "sampler": ["loader", "ms_per_batch", "sample_ms_per_batch", "gather_ms_per_batch",
                "edges_per_s", "nodes_per_s", "cores_busy"],
    "gather": ["row_bytes", "memcpy_gb_per_s", "store_gb_per_s", "store_pct_of_memcpy",
               "unchecked_gb_per_s", "store_pct_of_unchecked", "sorted_ids_gb_per_s",
               "index_select_out_gb_per_s", "index_select_gb_per_s", "thread_gb_per_s",
               "thread_training_gb_per_s", "train_ms_per_step", "train_gathering_ms_per_step",
               "pinned_h2d_gb_per_s", "zero_copy_gb_per_s", "zero_copy_pct_of_h2d",
               "cpu_gather_copy_gb_per_s", "zero_copy_speedup_vs_naive"],
    "pipeline": ["mode", "prefetch", "batches", "sample_ms_per_batch", "gather_ms_per_batch",
                 "transfer_ms_per_batch", "train_ms_per_batch", "wait_ms_per_batch",
                 "epoch_s"],
    "saint": ["sampler", "budget", "walk_length", "subgraphs_per_s", "nodes_per_s",
              "presample_s", "presample_subgraphs", "pyg_subgraphs_per_s", "speedup_vs_pyg",
              "speedup_vs_pyg_min", "speedup_vs_pyg_max", "pyg_error"],
    "cluster": ["loader", "prefetch", "batches_per_s", "edges_per_s", "peak_rss_mib",
                "metis_s", "cluster_data_s"],
}
#: A column of each printed table and the number it must show: (header, key, format).
SHOWN = {
    "sampler": ("edges/s", "edges_per_s", lambda v: f"{v / 1e6:.2f} M"),
    "gather": ("store GB/s", "store_gb_per_s", lambda v: f"{v:.1f}"),
    "pipeline": ("train ms", "train_ms_per_batch", lambda v: f"{v:.1f}"),
    "saint": ("subgraphs/s", "subgraphs_per_s", lambda v: f"{v:.1f}"),
    "cluster": ("batches/s", "batches_per_s", lambda v: f"{v:.1f}"),
}
ENVIRONMENT = {"python", "platform", "packages", "cpu", "cpu_count", "torch_threads",
               "numba_threads", "numba_threading_layer", "gpu"}


def _table(out: str) -> list[dict]:
    """The printed table: the rows below the dashed line, cells split at the 2+ spaces
    ``print_table`` pads columns with."""
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if line and set(line) == {"-"})
    headers = re.split(r"\s{2,}", lines[rule - 1].strip())
    rows = []
    for line in lines[rule + 1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) != len(headers):
            break
        rows.append(dict(zip(headers, cells)))
    return rows


@pytest.mark.parametrize("what", list(ARGV))
def test_bench_writes_json_and_csv(what, tmp_path, capsys):
    out, table_csv = tmp_path / "out" / "r.json", tmp_path / "r.csv"
    assert main(["bench", what, *ARGV[what], "--out", str(out), "--csv", str(table_csv)]) == 0
    table = _table(capsys.readouterr().out)

    doc = results.read(out)
    assert (doc["schema"], doc["version"], doc["command"]) == (
        results.SCHEMA, results.VERSION, f"bench {what}")
    assert set(doc) == set(results.KEYS)
    assert set(doc["environment"]) == ENVIRONMENT
    assert doc["settings"]["what"] == what
    assert doc["settings"]["out"] == str(out) and doc["settings"]["csv"] == str(table_csv)
    assert doc["settings"]["seed"] == 0
    assert doc["runs"] == []
    rows = doc["rows"]
    assert len(rows) == len(table) > 0
    for row in rows:
        assert list(row) == KEYS[what]
        for key, value in row.items():
            if key in TEXT[what]:
                assert value is None or isinstance(value, str), (key, value)
            else:  # numbers as numbers, None where not measured; never bools
                assert value is None or (isinstance(value, Real) and not isinstance(value, bool)), \
                    (key, value)

    # The printed table shows the JSON's numbers; the CSV holds the same rows.
    header, key, show = SHOWN[what]
    assert [t[header] for t in table] == [show(r[key]) for r in rows]
    with open(table_csv, newline="") as f:
        written = list(csv.DictReader(f))
    assert [list(r) for r in written] == [KEYS[what]] * len(rows)
    for json_row, csv_row in zip(rows, written):
        for key, value in json_row.items():
            if value is None:
                assert csv_row[key] == ""
            elif isinstance(value, str):
                assert csv_row[key] == value
            else:
                assert float(csv_row[key]) == value


def test_gather_rows_measure_every_cpu_path(tmp_path, capsys):
    """The CPU paths of ``bench gather`` are all measured (numbers, never None), the
    percentages are the ratios of the bandwidths they compare, and the printed table
    shows the columns of the public gather, ``index_select(out=)`` and the gather
    beside training."""
    out = tmp_path / "r.json"
    assert main(["bench", "gather", *ARGV["gather"], "--out", str(out)]) == 0
    table = _table(capsys.readouterr().out)
    rows = results.read(out)["rows"]
    assert [r["row_bytes"] for r in rows] == [128, 256]
    for row, shown in zip(rows, table):
        for key in KEYS["gather"][1:13]:
            assert isinstance(row[key], float) and row[key] > 0, key
        assert row["store_pct_of_memcpy"] == pytest.approx(
            100 * row["store_gb_per_s"] / row["memcpy_gb_per_s"])
        assert row["store_pct_of_unchecked"] == pytest.approx(
            100 * row["store_gb_per_s"] / row["unchecked_gb_per_s"])
        for header, key in [("unchecked GB/s", "unchecked_gb_per_s"),
                            ("index_select out= GB/s", "index_select_out_gb_per_s"),
                            ("thread GB/s", "thread_gb_per_s"),
                            ("thread, training GB/s", "thread_training_gb_per_s")]:
            assert shown[header] == f"{row[key]:.1f}"
        for header, key in [("train ms", "train_ms_per_step"),
                            ("train, gathering ms", "train_gathering_ms_per_step")]:
            assert shown[header] == f"{row[key]:.2f}"


def test_gather_paths_are_timed_in_rounds():
    """Each round calls every path ``repeats`` times in a row after one untimed call,
    path after path, and each path's fastest call over all rounds is kept."""
    calls = []
    paths = {name: (lambda name=name: calls.append(name)) for name in ("a", "b")}
    best = gather_bench._best_over_rounds(paths, 2, 3)
    assert calls == (["a"] * 3 + ["b"] * 3) * 3
    assert set(best) == {"a", "b"} and all(0 < t < 1 for t in best.values())


def test_gather_beside_training_counts_calls_and_steps():
    """The background-thread measurement: at least ``calls`` gathers and ``steps``
    steps, per-call and per-step seconds from them; an error in the thread is raised
    here instead of leaving the main thread waiting."""
    import time

    gathered, stepped = [], []

    def gather():
        time.sleep(0.002)
        gathered.append(1)

    per_call, per_step = gather_bench._beside(gather, 3, lambda: stepped.append(1), 5)
    assert len(stepped) >= 5 and len(gathered) >= 4  # the warm-up call, then 3+
    assert 0.002 <= per_call < 1 and per_step > 0
    per_call, per_step = gather_bench._beside(gather, 2, None, 0)
    assert 0.002 <= per_call < 1 and per_step == 0.0

    def failing():
        raise RuntimeError("no rows")

    with pytest.raises(RuntimeError, match="no rows"):
        gather_bench._beside(failing, 2, lambda: None, 1)


@pytest.mark.parametrize("argv, option", [
    (["sampler", "--batches", "0"], "--batches"),
    (["gather", "--row-bytes", "128", "--repeats", "x"], "--repeats"),
    (["gather", "--row-bytes", "128", "--train-steps", "0"], "--train-steps"),
    (["gather", "--row-bytes", "128", "--rounds", "0"], "--rounds"),
    (["pipeline", "--dataset", "nowhere"], "--dataset"),
    (["saint", "--walk-length", "0"], "--walk-length"),
    (["cluster", "--num-parts"], "--num-parts"),
])
def test_bad_argument_is_a_usage_error(argv, option, capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: graphbatch bench {argv[0]}")
    assert f"argument {option}:" in err


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    def choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        return next(a for a in parser._actions
                    if isinstance(a, argparse._SubParsersAction)).choices

    return {what: choices(choices(build_parser())["bench"])[what] for what in ARGV}


@pytest.mark.parametrize("what", list(ARGV))
def test_options_share_one_style(what):
    """Kebab-case names; a help string each, lower case, without a trailing period."""
    for action in _subcommands()[what]._actions:
        for name in action.option_strings:
            assert name == "-h" or re.fullmatch(r"--[a-z0-9]+(-[a-z0-9]+)*", name), name
        assert action.help, action.option_strings
        assert action.help[0] == action.help[0].lower(), action.help
        assert not action.help.endswith("."), action.help


def test_options_of_the_same_thing_share_a_name():
    parsers = _subcommands()
    for what, parser in parsers.items():
        options = {name for action in parser._actions for name in action.option_strings}
        assert {"--seed", "--out", "--csv"} <= options, what
        if what in ("sampler", "saint", "cluster"):  # the skewed synthetic graph's
            assert {"--num-nodes", "--num-pairs", "--num-features"} <= options, what
        if what != "gather":
            assert "--batches" in options, what


@pytest.mark.parametrize("row, ratio, pyg", [
    ({"pyg_subgraphs_per_s": 10.0, "speedup_vs_pyg": 2.04, "speedup_vs_pyg_min": 1.5,
      "speedup_vs_pyg_max": 2.55, "pyg_error": None}, "2.0x (rounds 1.5-2.5)", "10.0"),
    ({"pyg_subgraphs_per_s": None, "speedup_vs_pyg": None, "speedup_vs_pyg_min": None,
      "speedup_vs_pyg_max": None, "pyg_error": "out of memory"}, "-", "fails: out of memory"),
])
def test_saint_table_against_pyg(row, ratio, pyg):
    """The PyG columns, which need torch-sparse to run for real."""
    row = {"sampler": "random walk", "budget": 3000, "walk_length": 2,
           "subgraphs_per_s": 20.4, "nodes_per_s": 1.5e6, "presample_s": 3.21,
           "presample_subgraphs": 40, **row}
    [shown] = formatted([row], saint_bench._columns(10, with_pyg=True))
    assert shown == {"sampler": "random walk", "budget": "3000 x 2", "subgraphs/s": "20.4",
                     "nodes/s": "1.50 M", "pre-sampling (coverage 10)": "3.2 s, 40 subgraphs",
                     "PyG subgraphs/s": pyg, "ratio": ratio}
