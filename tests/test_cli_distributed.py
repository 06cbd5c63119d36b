"""``graphbatch bench distributed``: its settings checked at parsing, a failing rank
reported with its error instead of a hang, and one small run on 1 and 2 processes whose
rows, results file and plot are checked."""
from __future__ import annotations

import time

import pytest

from graphbatch.cli import distributed_bench, results
from graphbatch.cli._args import run_check
from graphbatch.cli.main import build_parser, main
from graphbatch.datasets import load
from graphbatch.distributed.partition import partition_graph, save_shards


def _usage_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(["bench", "distributed", *argv])
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.fixture
def no_benchmark(monkeypatch):
    """Settings that parsing lets through would start the benchmark: fail instead."""
    def ran(args):
        raise AssertionError(f"parsing accepted {args}; the benchmark would have run")

    monkeypatch.setattr(distributed_bench, "run", ran)


@pytest.mark.usefixtures("no_benchmark")
@pytest.mark.parametrize("value", ["0", "-1"])
@pytest.mark.parametrize("option", ["--nproc", "--batch-size", "--hidden", "--timeout-s"])
def test_counts_must_be_positive(capsys, option, value):
    err = _usage_error(capsys, [option, value])
    assert f"argument {option}: must be at least 1, got {value}" in err


@pytest.mark.usefixtures("no_benchmark")
@pytest.mark.parametrize("option", ["--batches", "--warmup", "--cache-rows"])
def test_counts_that_may_be_zero_must_not_be_negative(capsys, option):
    err = _usage_error(capsys, [option, "-1"])
    assert f"argument {option}: must be at least 0, got -1" in err


@pytest.mark.usefixtures("no_benchmark")
@pytest.mark.parametrize("option, choices", [("--methods", "'metis', 'random'"),
                                             ("--modes", "'shared', 'copies', 'partitioned'")])
def test_unknown_choice(capsys, option, choices):
    err = _usage_error(capsys, [option, "metis" if option == "--modes" else "kmeans"])
    assert f"argument {option}: invalid choice:" in err
    assert f"(choose from {choices})" in err


@pytest.mark.usefixtures("no_benchmark")
def test_fanouts_below_minus_one(capsys):
    err = _usage_error(capsys, ["--fanouts", "10", "-2"])
    assert "--fanouts must be -1 (every neighbor) or at least 0, got -2" in err


def test_good_settings_pass():
    run_check(build_parser().parse_args(
        ["bench", "distributed", "--nproc", "1", "--batches", "0", "--warmup", "0",
         "--fanouts", "-1", "0", "--cache-rows", "0", "100", "--methods", "random"]))


def test_more_batches_than_the_training_set_gives():
    """Checked once the dataset is loaded, before any process starts."""
    with pytest.raises(SystemExit, match=(
            r"synthetic-small's 1800 training seeds give 0 batches of --batch-size 1024 "
            r"per process on 4 processes, fewer than --warmup 3 \+ --batches 20")):
        main(["bench", "distributed", "--dataset", "synthetic-small"])


def test_failing_rank_is_reported_not_waited_for(tmp_path):
    """Rank 1 raises (its shard does not exist) while rank 0 goes on into a collective:
    the run ends within its deadline, naming rank 1's error."""
    data = load("synthetic-small")
    save_shards(data, partition_graph(data, 1, "random"), tmp_path)
    job = distributed_bench.Job(
        "partitioned", nproc=2, dataset="synthetic-small", directory=str(tmp_path),
        seeds=data.train_mask.nonzero().view(-1)[:512], num_features=data.num_features,
        num_classes=5, fanouts=(2,), batch_size=128, warmup=0, hidden=8, cache_rows=0,
        seed=0, timeout_s=10)
    start = time.monotonic()
    with pytest.raises(RuntimeError) as info:
        distributed_bench.run_ranks(job)
    assert time.monotonic() - start < 4 * job.timeout_s + 20
    message = str(info.value)
    assert "mode 'partitioned' on 2 processes failed" in message
    assert "rank 1: ValueError: rank must be in [0, 1) (the number of parts), got 1" in message


@pytest.mark.slow
def test_small_run(tmp_path, capsys):
    """Every mode on 1 and 2 processes of synthetic-small (about 50 s)."""
    out, png = tmp_path / "dist.json", tmp_path / "scaling.png"
    main(["bench", "distributed", "--dataset", "synthetic-small", "--nproc", "1", "2",
          "--batches", "3", "--warmup", "1", "--batch-size", "128", "--hidden", "16",
          "--timeout-s", "60", "--out", str(out), "--plot", str(png)])
    printed = capsys.readouterr().out
    assert "seeds/s" in printed and "locality of the partitioned runs" in printed
    rows = results.read(out)["rows"]
    assert results.read(out)["command"] == "bench distributed"
    runs = {(r["mode"], r["method"], r["nproc"]): r for r in rows}
    assert sorted(runs) == sorted(
        (mode, method, n) for n in (1, 2) for mode, method in
        [("shared", None), ("copies", None), ("partitioned", "metis"),
         ("partitioned", "random")])
    for (mode, method, nproc), r in runs.items():
        assert r["batches"] == 3
        assert r["ms_per_batch"] > 0 and r["seeds_per_s"] > 0 and r["edges_per_s"] > 0
        assert r["cores_busy"] > 0
        # 1,800 training seeds in steps of 128 per process.
        assert r["projected_epoch_s"] == pytest.approx(
            1800 // (128 * nproc) * r["ms_per_batch"] / 1000)
        assert r["epoch_s"] is None
        assert r["speedup"] == pytest.approx(
            r["seeds_per_s"] / runs[(mode, method, 1)]["seeds_per_s"])
        assert r["setup_s"] > 0
        assert r["peak_rss_mib_max"] > 0
        assert r["peak_rss_mib_max"] <= r["peak_rss_mib_sum"] <= nproc * r["peak_rss_mib_max"]
        assert 0 < r["pss_mib_sum"] <= r["rss_mib_sum"] <= r["peak_rss_mib_sum"]
        if mode != "partitioned":
            assert r["partition_s"] is None and r["local_share"] is None
            continue
        assert r["partition_s"] >= 0 and r["cache_rows"] == 0
        shares = [r[k] for k in ("local_share", "cached_share", "fetched_share")]
        assert all(0 <= s <= 1 for s in shares) and sum(shares) == pytest.approx(1)
        assert 0 <= r["sample_remote_share"] <= 1
        if nproc == 1:
            assert r["local_share"] == 1 and r["fetched_bytes_per_batch"] == 0
        else:
            assert r["fetched_share"] > 0 and r["fetched_bytes_per_batch"] > 0
            assert r["sample_bytes_per_batch"] > 0
    # METIS keeps more of a batch local than random parts do.
    metis, random = runs[("partitioned", "metis", 2)], runs[("partitioned", "random", 2)]
    assert metis["local_share"] > random["local_share"]
    assert metis["sample_remote_share"] < random["sample_remote_share"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
