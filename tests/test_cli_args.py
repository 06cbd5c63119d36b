"""``graphbatch bench`` settings that cannot give a measurement end in argparse's usage
error (exit status 2) naming the option and the value, before any graph is built.
Only parsing runs here, never a benchmark."""
from __future__ import annotations

import pytest
import torch

from conftest import make_graph
from graphbatch.cli import (
    cluster_bench, gather_bench, hetero_bench, lazy_bench, link_bench, pipeline_bench,
    saint_bench, sampler_bench, train_bench,
)
from graphbatch.cli._args import run_check
from graphbatch.cli.main import build_parser, main
from graphbatch.cli.harness.models import SAGE
from graphbatch.loader import NeighborLoader

COUNTS = {  # command -> options that count something and must be positive
    "bench": ["--epochs", "--seeds"],
    "bench sampler": ["--num-nodes", "--num-pairs", "--num-features", "--batch-size",
                      "--num-input-nodes", "--batches"],
    "bench gather": ["--row-bytes", "--table-mib", "--gather-mib", "--repeats", "--train-steps",
                     "--rounds"],
    "bench pipeline": ["--batch-size", "--hidden", "--prefetch", "--batches"],
    "bench saint": ["--num-nodes", "--num-pairs", "--num-features", "--node-budget",
                    "--edge-budget", "--roots", "--walk-length", "--batches", "--rounds",
                    "--sample-coverage", "--prefetch-threads"],
    "bench cluster": ["--num-nodes", "--num-pairs", "--num-features", "--num-parts",
                      "--batch-size", "--batches"],
    "bench link": ["--num-nodes", "--num-pairs", "--num-features", "--num-seed-edges",
                   "--batch-size", "--batches"],
    "bench hetero": ["--num-nodes", "--num-pairs", "--num-features", "--batch-size",
                     "--num-input-nodes", "--batches"],
}


@pytest.fixture(autouse=True)
def no_benchmark(monkeypatch):
    """Settings that parsing lets through would start a benchmark (minutes): fail instead."""
    def ran(args):
        raise AssertionError(f"parsing accepted {args}; the benchmark would have run")

    for module in (cluster_bench, gather_bench, hetero_bench, lazy_bench, link_bench,
                   pipeline_bench, saint_bench, sampler_bench, train_bench):
        monkeypatch.setattr(module, "run", ran)


def _usage_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1"])
@pytest.mark.parametrize("command, option",
                         [(c, o) for c, options in COUNTS.items() for o in options])
def test_counts_must_be_positive(capsys, command, option, value):
    err = _usage_error(capsys, [*command.split(), option, value])
    assert f"argument {option}: must be at least 1, got {value}" in err


@pytest.mark.parametrize("command, option", [("bench", "--split"),
                                             ("bench sampler", "--warmup")])
def test_counts_that_may_be_zero_must_not_be_negative(capsys, command, option):
    err = _usage_error(capsys, [*command.split(), option, "-1"])
    assert f"argument {option}: must be at least 0, got -1" in err


def test_count_that_is_no_int(capsys):
    err = _usage_error(capsys, ["bench", "sampler", "--batches", "2.5"])
    assert "argument --batches: expected an int, got '2.5'" in err


def test_sampler_more_batches_than_the_input_nodes_give(capsys):
    err = _usage_error(capsys, ["bench", "sampler", "--num-input-nodes", "2000",
                                "--batches", "5"])
    assert "graphbatch bench sampler: error:" in err
    assert ("--num-input-nodes 2000 (of --num-nodes 1000000) in batches of --batch-size 1024 "
            "give 2 batches, fewer than --warmup 3 + --batches 5") in err


def test_sampler_input_nodes_capped_by_the_nodes(capsys):
    err = _usage_error(capsys, ["bench", "sampler", "--num-nodes", "5000", "--batches", "5"])
    assert "give 5 batches, fewer than --warmup 3 + --batches 5" in err


@pytest.mark.parametrize("argv, message", [
    (["--gather-mib", "2048"], "--gather-mib 2048 exceeds the table it gathers from, "
                               "--table-mib 1024"),
    (["--row-bytes", "128", "6"], "--row-bytes must be multiples of 4 (float32 rows), got 6"),
    (["--gather-mib", "1", "--row-bytes", "2097152"],
     "--row-bytes 2097152 exceeds the bytes gathered per call, --gather-mib 1"),
])
def test_gather_combinations(capsys, argv, message):
    assert message in _usage_error(capsys, ["bench", "gather", *argv])


def test_cluster_more_parts_than_nodes(capsys):
    err = _usage_error(capsys, ["bench", "cluster", "--num-nodes", "100", "--num-parts", "101"])
    assert "--num-parts 101 exceeds --num-nodes 100" in err


@pytest.mark.parametrize("argv", [
    ["bench"], ["bench", "sampler"], ["bench", "gather"], ["bench", "pipeline"],
    ["bench", "saint"], ["bench", "cluster"], ["bench", "lazy"],
    # the limits themselves are accepted
    ["bench", "sampler", "--num-input-nodes", "8192", "--batch-size", "1024", "--batches", "5"],
    ["bench", "gather", "--gather-mib", "1", "--table-mib", "1", "--row-bytes", "1048576"],
    ["bench", "cluster", "--num-nodes", "100", "--num-parts", "100"],
])
def test_good_settings_pass(argv):
    run_check(build_parser().parse_args(argv))


@pytest.mark.parametrize("staged", [True, False])
def test_pipeline_epoch_shorter_than_max_batches(staged):
    """An epoch of fewer batches than --batches ends the timed epoch early, in both
    modes (the staged one raised StopIteration)."""
    torch.manual_seed(0)
    data = make_graph()
    loader = NeighborLoader(data, [5, 5], batch_size=150, prefetch=0 if staged else 2)
    model = SAGE(data.num_features, 16, int(data.y.max()) + 1)
    opt = torch.optim.Adam(model.parameters())
    t = pipeline_bench._epoch(loader, model, opt, torch.device("cpu"), 10, staged)
    assert t["batches"] == len(loader) == 3
