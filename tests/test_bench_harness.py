"""The training harness of ``graphbatch bench``: settings and overrides, metrics, peak
memory per run, stage timing, early stopping, determinism, the results file and the
report. Runs train for one or two epochs on a small synthetic graph; accuracy is not
judged here (``tests/test_train_*.py`` do that)."""
from __future__ import annotations

import itertools
import json

import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st

from graphbatch.cli import results
from graphbatch.cli.harness import pyg, settings
from graphbatch.cli.harness.measure import PeakMemory, StageTimer, roc_auc
from graphbatch.cli.harness.models import MODELS
from graphbatch.cli.harness.train import Dataset, train_run
from graphbatch.cli.main import main
from graphbatch.datasets import planted_classes
from graphbatch.loader import NeighborLoader

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def small() -> Dataset:
    return Dataset.of("small", planted_classes(num_nodes=1500, num_features=16, seed=3),
                      "accuracy")


def quick(sampler: str, **over) -> dict:
    return settings.resolve(sampler, {"epochs": 2, "hidden": 16, **over}, 1500)


# --- settings -------------------------------------------------------------------------

def test_overrides_apply_to_every_sampler_with_the_key_or_to_one():
    out = settings.parse_overrides(["hidden=64", "neighbor.fanouts=5,3", "lr=0.5"],
                                   ["neighbor", "cluster"])
    assert out["neighbor"] == {"hidden": 64, "fanouts": [5, 3], "lr": 0.5}
    assert out["cluster"] == {"hidden": 64, "lr": 0.5}
    assert settings.parse_overrides(["num_parts=7"], ["neighbor", "cluster"]) == {
        "neighbor": {}, "cluster": {"num_parts": 7}}


@pytest.mark.parametrize("item, match", [
    ("bogus=1", "unknown key 'bogus'; known keys: .*'hidden'"),
    ("neighbor.num_parts=3", "unknown key 'num_parts'"),
    ("nosuch.hidden=3", "no sampler 'nosuch'"),
    ("hidden=wide", "--set hidden=wide: expected int"),
    ("neighbor.fanouts=10,x", "expected comma-separated ints"),
    ("hidden", "expects key=value"),
])
def test_bad_overrides_name_the_item(item, match):
    with pytest.raises(ValueError, match=match):
        settings.parse_overrides([item], ["neighbor"])


def test_budgets_scale_to_the_graph():
    big, tiny = 2_000_000, 2708
    assert settings.resolve("saint-node", {}, big)["batch_size"] == 8000
    assert settings.resolve("saint-node", {}, big)["num_steps"] == 250
    node = settings.resolve("saint-node", {}, tiny)
    assert node["batch_size"] == 677 and node["num_steps"] == 4
    rw = settings.resolve("saint-rw", {}, tiny)
    assert rw["batch_size"] == 90 and rw["num_steps"] == 11
    cluster = settings.resolve("cluster", {}, 233_000)
    assert cluster["num_parts"] == 1504 and cluster["batch_size"] == 20
    small_cluster = settings.resolve("cluster", {}, tiny)
    assert small_cluster["num_parts"] == 18 and small_cluster["batch_size"] == 4
    # An explicit value is kept as given.
    assert settings.resolve("saint-node", {"batch_size": 5000}, tiny)["batch_size"] == 5000
    assert settings.resolve("cluster", {"num_parts": 9}, tiny)["batch_size"] == 2


def test_lazy_settings_are_the_models_constructor_defaults():
    import inspect

    from graphbatch.lazy import LazyGNN

    params = inspect.signature(LazyGNN.__init__).parameters
    lazy = settings.defaults("lazy")
    for key in ("num_layers", "steps", "alpha", "beta", "gamma", "eval_steps"):
        assert lazy[key] == params[key].default
    assert lazy["batch_norm"] == "auto"
    assert settings.parse_overrides(["lazy.batch_norm=False"], ["lazy"]) == {
        "lazy": {"batch_norm": "false"}}
    with pytest.raises(ValueError, match="expected auto, true or false"):
        settings.parse_overrides(["lazy.batch_norm=off"], ["lazy"])


@pytest.mark.parametrize("public, batch_norm, expected", [
    (True, "auto", False), (False, "auto", True), (True, "true", True), (False, "false", False)])
def test_lazygnn_batch_norm_is_off_on_public_splits_unless_asked(small, public, batch_norm,
                                                                 expected):
    from dataclasses import replace

    from graphbatch.cli.harness.train import build

    model = build(replace(small, public_split=public), "lazygnn",
                  quick("lazy", batch_norm=batch_norm), CPU)
    assert isinstance(model.norms[0], torch.nn.BatchNorm1d) == expected


# --- measurements ---------------------------------------------------------------------

@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=2, max_size=40))
def test_roc_auc_is_the_share_of_ordered_pairs(pairs):
    scores = torch.tensor([float(s) for s, _ in pairs])
    y = torch.tensor([label for _, label in pairs])
    pos, neg = scores[y], scores[~y]
    if pos.numel() == 0 or neg.numel() == 0:
        assert roc_auc(scores, y) != roc_auc(scores, y)  # NaN
        return
    wins = sum(float(p > n) + 0.5 * float(p == n) for p, n in itertools.product(pos, neg))
    assert roc_auc(scores, y) == pytest.approx(wins / (pos.numel() * neg.numel()))


def test_peak_memory_is_per_block():
    with PeakMemory(CPU) as first:
        block = torch.ones(300 * 2**20 // 4)  # 300 MiB, touched
        del block
    with PeakMemory(CPU) as second:
        pass
    assert first.scope == second.scope == "run"
    assert first.peak_mib - first.start_mib >= 280
    assert second.peak_mib - second.start_mib < 100


def test_stage_timer_sees_sampling_and_gathering_and_changes_no_batch():
    data = planted_classes(num_nodes=800, num_features=8, seed=1)

    def epoch(timer):
        torch.manual_seed(0)
        loader = NeighborLoader(data, [5, 5], batch_size=100, shuffle=True)
        if timer is not None:
            timer.attach(loader)
        return [b.n_id for b in loader]

    timer = StageTimer()
    timed = epoch(timer)
    seconds = timer.take()
    assert seconds["sample"] > 0 and seconds["gather"] > 0
    assert timer.take() == {"sample": 0.0, "gather": 0.0}
    assert all(torch.equal(a, b) for a, b in zip(timed, epoch(None), strict=True))


# --- runs -----------------------------------------------------------------------------

@pytest.mark.parametrize("sampler", settings.SAMPLERS)
def test_every_sampler_trains_and_records_its_run(small, sampler):
    s = quick(sampler)
    r = train_run(small, sampler, "gcn", 0, s, CPU, quiet=True)
    assert r["model"] == ("lazygnn" if sampler == "lazy" else "gcn")
    assert r["epochs_run"] == len(r["curve"]) == 2
    for c in r["curve"]:
        assert c["epoch_s"] > 0 and c["targets"] > 0 and c["edges"] >= 0
        assert 0 <= c["val"] <= 1 and 0 <= c["test"] <= 1
        if sampler != "full":
            assert c["sample_s"] > 0 and c["gather_s"] > 0
    # Every training node is a target about once an epoch or more (subgraph samplers
    # may repeat nodes), never none.
    assert r["curve"][0]["targets"] >= (int(small.data.train_mask.sum()) if sampler in (
        "full", "neighbor", "cluster", "lazy") else 1)
    # Linux counts RSS per thread and folds the counts in every 64 page faults, so the
    # two reads may disagree by a few hundred KiB per thread.
    assert r["peak_rss_mib"] >= r["start_rss_mib"] - 4 and r["start_rss_mib"] > 0


@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_on_graphsaint_batches(small, model):
    r = train_run(small, "saint-edge", model, 0, quick("saint-edge", epochs=1), CPU, quiet=True)
    assert r["epochs_run"] == 1


def test_runs_stop_after_patience_and_report_the_best_validation_epoch(small):
    r = train_run(small, "neighbor", "sage", 0, quick("neighbor", epochs=60, patience=2,
                                                      lr=0.05), CPU, quiet=True)
    vals = [c["val"] for c in r["curve"]]
    best = vals.index(max(vals)) + 1
    assert r["best_epoch"] == best
    assert r["epochs_run"] == best + 2 < 60
    assert r["test"] == r["curve"][best - 1]["test"]
    first = next(c for c in r["curve"] if c["val"] >= 0.99 * max(vals))
    assert r["time_to_99_s"] == first["time_s"]
    assert r["curve"][-1]["time_s"] == pytest.approx(sum(c["epoch_s"] for c in r["curve"]))


def test_the_same_seed_gives_the_same_run(small):
    def metrics(seed):
        r = train_run(small, "saint-rw", "sage", seed, quick("saint-rw"), CPU, quiet=True)
        return [(c["loss"], c["val"], c["test"], c["targets"], c["edges"]) for c in r["curve"]]

    assert metrics(0) == metrics(0)
    assert metrics(0) != metrics(1)


def test_evaluation_falls_back_to_sampled_batches_on_large_graphs(small):
    r = train_run(small, "full", "sage", 0, quick("full", epochs=1, eval_max_floats=10), CPU,
                  quiet=True)
    full = train_run(small, "full", "sage", 0, quick("full", epochs=1), CPU, quiet=True)
    assert (r["eval"], full["eval"]) == ("sampled", "full")
    assert abs(r["val"] - full["val"]) < 0.1


# --- the command, its file, the report ------------------------------------------------

BENCH = ["bench", "--dataset", "synthetic-small", "--epochs", "2", "--quiet",
         "--set", "hidden=16"]


def test_bench_writes_a_results_file_that_round_trips(tmp_path, capsys):
    out, csv = tmp_path / "r.json", tmp_path / "r.csv"
    argv = [*BENCH, "--sampler", "full", "neighbor", "lazy", "--seeds", "2",
            "--out", str(out), "--csv", str(csv)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    doc = results.read(out)
    assert list(doc) == list(results.KEYS)
    assert (doc["command"], doc["argv"], doc["version"]) == ("bench", argv, results.VERSION)
    assert {"cpu", "cpu_count", "torch_threads", "packages", "gpu"} <= set(doc["environment"])
    assert doc["settings"]["sampler"] == ["full", "neighbor", "lazy"]
    assert [(r["sampler"], r["model"], r["seeds"]) for r in doc["rows"]] == [
        ("full", "sage", 2), ("neighbor", "sage", 2), ("lazy", "lazygnn", 2)]
    assert len(doc["runs"]) == 6 and all(len(r["curve"]) == 2 for r in doc["runs"])
    row = doc["rows"][1]
    assert set(ROW_KEYS) == set(row)
    seeds = [r["test"] for r in doc["runs"] if r["sampler"] == "neighbor"]
    assert row["test_mean"] == pytest.approx(sum(seeds) / 2)
    assert f"{100 * row['test_mean']:.1f} ±" in table
    lines = csv.read_text().splitlines()
    assert lines[0].split(",")[:3] == ["dataset", "sampler", "model"] and len(lines) == 4
    # The same command again: the same metrics.
    main([*argv[:-4], "--out", str(tmp_path / "again.json")])
    again = json.loads((tmp_path / "again.json").read_text())
    assert [r["test"] for r in again["runs"]] == [r["test"] for r in doc["runs"]]


#: The summary row's keys: a change here is a change of the schema (bump VERSION).
ROW_KEYS = ["dataset", "sampler", "model", "impl", "metric", "seeds", "test_mean", "test_std",
            "val_mean", "epochs_mean", "best_epoch_mean", "prep_s", "epoch_s", "sample_s",
            "gather_s", "h2d_s", "train_s", "wait_s", "targets_per_s", "edges_per_s",
            "time_to_99_s", "peak_rss_mib", "cuda_peak_mib", "eval"]


def test_report_prints_the_table_and_draws_the_plots(tmp_path, capsys):
    import matplotlib

    out = tmp_path / "r.json"
    main([*BENCH, "--sampler", "full", "cluster", "--out", str(out)])
    printed = capsys.readouterr().out
    previous = matplotlib.get_backend()
    matplotlib.use("svg")  # a backend of the caller's (a notebook's inline one) stays
    try:
        main(["report", str(out), "--plot", str(tmp_path / "plots")])
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(previous)
    report = capsys.readouterr().out
    assert report.splitlines()[:4] == printed.splitlines()  # header, rule, two rows
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["memory.png", "throughput.png", "val_vs_time_synthetic-small.png"]
    assert all((tmp_path / "plots" / n).read_bytes()[:4] == b"\x89PNG" for n in names)


def test_report_refuses_other_files(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"schema": "other"}))
    with pytest.raises(ValueError, match="not a graphbatch bench results file"):
        results.read(bad)
    newer = {k: None for k in results.KEYS} | {"schema": results.SCHEMA,
                                               "version": results.VERSION + 1}
    bad.write_text(json.dumps(newer))
    with pytest.raises(ValueError, match="reads versions up to"):
        results.read(bad)


@pytest.mark.parametrize("argv, message", [
    (["--set", "bogus=1"], "unknown key 'bogus'"),
    (["--sampler", "sage"], "invalid choice: 'sage'"),
    (["--dataset", "nosuch"], "Cora"),
    (["--seeds", "0"], "must be at least 1"),
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--set", "x=1"],
     "no CUDA device" if not torch.cuda.is_available() else "unknown key"),
])
def test_bad_arguments_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "graphbatch bench: error:" in err and message in err


def test_compare_pyg_says_why_when_pyg_cannot_run(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(pyg, "_importable", lambda module: False)
    main([*BENCH, "--sampler", "full", "neighbor", "--compare", "pyg",
          "--out", str(tmp_path / "r.json")])
    rows = results.read(tmp_path / "r.json")["rows"]
    assert [(r["sampler"], r["impl"]) for r in rows] == [
        ("full", "graphbatch"), ("neighbor", "graphbatch"), ("neighbor", "pyg")]
    assert rows[2]["note"] == "PyG's loader needs pyg-lib or torch-sparse: not importable here"
    assert rows[2]["note"] in capsys.readouterr().out


def test_compare_pyg_runs_the_same_settings_through_pygs_classes(monkeypatch, tmp_path):
    """PyG's loaders stand in for themselves where a backend is importable; here
    graphbatch's classes of the same names play them, so the rows must agree."""
    import torch_geometric.loader

    import graphbatch

    for name in ("NeighborLoader", "ClusterData", "ClusterLoader"):
        monkeypatch.setattr(torch_geometric.loader, name, getattr(graphbatch, name))
    monkeypatch.setattr(pyg, "_importable", lambda module: True)
    main([*BENCH, "--sampler", "neighbor", "cluster", "--compare", "pyg",
          "--out", str(tmp_path / "r.json")])
    rows = results.read(tmp_path / "r.json")["rows"]
    assert [(r["sampler"], r["impl"]) for r in rows] == [
        ("neighbor", "graphbatch"), ("neighbor", "pyg"), ("cluster", "graphbatch"),
        ("cluster", "pyg")]
    for ours, theirs in (rows[0:2], rows[2:4]):
        assert ours["test_mean"] == theirs["test_mean"]
        assert ours["test_diff_vs_pyg"] == 0
        assert ours["speedup_vs_pyg"] > 0 and ours["memory_vs_pyg"] > 0
        assert theirs["sample_s"] is None  # PyG's stages are not instrumented


def test_partitions_of_different_graphs_are_cached_apart(small, tmp_path, monkeypatch):
    import warnings

    monkeypatch.setenv("GRAPHBATCH_DATA_ROOT", str(tmp_path))
    other = Dataset.of("other", planted_classes(num_nodes=1500, num_features=16, seed=4),
                       "accuracy")
    s = quick("cluster", epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a cache of the other graph would warn and recompute
        for ds in (small, other, small, other):
            train_run(ds, "cluster", "gcn", 0, s, CPU, quiet=True)
    assert len(list((tmp_path / "cache" / "metis-graphbatch").iterdir())) == 2


def test_public_splits_are_told_from_the_catalog(tmp_path):
    from graphbatch.cli.train_bench import _public_split

    torch.save(planted_classes(num_nodes=50, num_features=4), tmp_path / "g.pt")
    assert [_public_split(n) for n in ("Cora", "CiteSeer", "Photo", "synthetic-small",
                                       str(tmp_path / "g.pt"))] == [True, True, False, False, False]
