"""LazyGNN (L = 2) is as accurate as APPNP (K = 10) within one (pooled) standard
deviation over 5 seeds, and at least as accurate as a 2-layer GCN, trained full-batch on the same split
with the same MLP, optimizer and propagation operator (``graphbatch bench lazy``).

Every model is chosen among as many settings as the others, by mean validation
accuracy (``lazy_bench.select``): a model searched more widely would gain from
validation noise alone. Cora (public split) runs in CI at the authors' published
defaults, one setting each (LazyGNN: beta = gamma = 0.5, 10 evaluation steps; APPNP:
alpha = 0.1, K = 10; GCN: dropout 0.5, weight decay 5e-4), in under 2 minutes on 2
cores (190 to 280 s of CPU on a shared machine, against 320 s when LazyGNN alone chose
among 6 settings). The bench's own choice among 6 settings each took 1090 s of CPU on
Cora, 3.4 times that; CiteSeer (public split), Coauthor CS and Amazon Computers (random
60/20/20 split) take about two hours more (an estimate: 35 minutes before, times 3.4),
beyond CI's budget: they run when ``GRAPHBATCH_LONG_TESTS=1``, and ``graphbatch bench
lazy`` prints the same table.
"""
import argparse
import os
import statistics

import pytest

from conftest import needs_datasets
from graphbatch.cli import lazy_bench
from graphbatch.cli.main import main
from graphbatch.datasets import load

pytestmark = needs_datasets

LONG = pytest.mark.skipif(os.environ.get("GRAPHBATCH_LONG_TESTS") != "1",
                          reason="hours on 2 cores; set GRAPHBATCH_LONG_TESTS=1")
#: One setting per model: the authors' defaults.
DEFAULTS = ["--beta", "0.5", "--gamma", "0.5", "--eval-steps", "10", "--appnp-alpha", "0.1",
            "--gcn-dropout", "0.5", "--gcn-weight-decay", "5e-4"]


@pytest.mark.slow
@pytest.mark.parametrize("name, argv", [
    pytest.param("Cora", DEFAULTS, id="Cora-defaults"),
    pytest.param("Cora", [], id="Cora", marks=LONG),
    pytest.param("CiteSeer", [], id="CiteSeer", marks=LONG),
    pytest.param("CS", [], id="CS", marks=LONG),
    pytest.param("Computers", [], id="Computers", marks=LONG),
])
def test_lazygnn_matches_appnp_and_beats_gcn(name, argv, tmp_path):
    parser = argparse.ArgumentParser()
    lazy_bench.add_arguments(parser)
    args = parser.parse_args(argv)
    table = lazy_bench.compare(name, load(name, root=tmp_path), args)
    for row in table:
        print({k: v for k, v in row.items() if k != "runs"})
    assert len({r["settings"] for r in table}) == 1, "unequal selection budgets"
    rows = {r["model"]: r["runs"] for r in table}
    lazy, appnp, gcn = (rows[m] for m in ("LazyGNN", "APPNP", "GCN"))
    assert len(lazy) == 5
    lazy_mean = statistics.mean(lazy)
    # One (pooled) standard deviation of the two models' test accuracies.
    tolerance = ((statistics.variance(lazy) + statistics.variance(appnp)) / 2) ** 0.5
    print(f"{name}: LazyGNN {lazy_mean:.4f} APPNP {statistics.mean(appnp):.4f} "
          f"GCN {statistics.mean(gcn):.4f} (std {tolerance:.4f})")
    assert lazy_mean >= statistics.mean(appnp) - tolerance
    assert lazy_mean >= statistics.mean(gcn)


def test_every_model_gets_the_same_selection_budget():
    """The bench's defaults give each model 6 settings, and it refuses unequal ones."""
    parser = argparse.ArgumentParser()
    lazy_bench.add_arguments(parser)
    args = parser.parse_args([])
    assert {m: lazy_bench.budget(m, args) for m in lazy_bench.MODELS} == {
        "LazyGNN": 6, "APPNP": 6, "GCN": 6}
    lazy_bench.check_budgets(args)
    assert all(lazy_bench.budget(m, parser.parse_args(DEFAULTS)) == 1 for m in lazy_bench.MODELS)
    with pytest.raises(ValueError, match="unequal numbers of settings"):
        lazy_bench.check_budgets(parser.parse_args(["--gcn-dropout", "0.5"]))
    lazy_bench.check_budgets(parser.parse_args(["--gcn-dropout", "0.5", "--models", "GCN"]))


def test_bench_refuses_unequal_budgets_before_loading(monkeypatch, capsys):
    def ran(args):
        raise AssertionError("the benchmark ran with unequal budgets")

    monkeypatch.setattr(lazy_bench, "run", ran)
    with pytest.raises(SystemExit) as info:
        main(["bench", "lazy", "--appnp-alpha", "0.1", "0.2", "0.3"])
    assert info.value.code == 2
    assert "unequal numbers of settings" in capsys.readouterr().err


def test_select_chooses_by_mean_validation_accuracy_only():
    tried = [({"a": 1}, [{"val": 0.75, "test": 0.99}, {"val": 0.75, "test": 0.99}]),
             ({"a": 2}, [{"val": 0.875, "test": 0.5}, {"val": 0.75, "test": 0.5}]),
             ({"a": 3}, [{"val": 1.0, "test": 0.99}, {"val": 0.5, "test": 0.99}])]
    # The best mean, not the best single run nor the best test accuracy.
    assert lazy_bench.select(tried)[0] == {"a": 2}
    assert lazy_bench.select(tried[::2])[0] == {"a": 1}  # equal means: the first
