"""``graphbatch`` console script."""
from __future__ import annotations

import argparse
import functools
import sys

from graphbatch.cli import (
    cluster_bench, datasets_cmd, gather_bench, lazy_bench, pipeline_bench, report_cmd,
    saint_bench, sampler_bench, train_bench,
)
from graphbatch.cli._args import run_check


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphbatch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    # Every command's help shows the defaults, the same way.
    style = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter}
    commands.add_parser = functools.partial(commands.add_parser, **style)  # type: ignore[method-assign]
    bench = commands.add_parser(
        "bench", help="train models with every sampler on datasets, beside full-batch "
        "training (and PyG's loaders): metric, time per stage, throughput, memory")
    train_bench.add_arguments(bench)
    what = bench.add_subparsers(dest="what")
    what.add_parser = functools.partial(what.add_parser, **style)  # type: ignore[method-assign]
    sampler = what.add_parser("sampler", help="neighbor-sampling throughput on a 1M-node graph")
    sampler_bench.add_arguments(sampler)
    gather = what.add_parser("gather", help="feature-gather bandwidth against memcpy (and GPU paths)")
    gather_bench.add_arguments(gather)
    pipeline = what.add_parser("pipeline", help="epoch time breakdown with and without prefetch")
    pipeline_bench.add_arguments(pipeline)
    saint = what.add_parser("saint", help="GraphSAINT sampler throughput and pre-sampling time")
    saint_bench.add_arguments(saint)
    cluster = what.add_parser("cluster", help="METIS time and Cluster-GCN loader throughput")
    cluster_bench.add_arguments(cluster)
    lazy = what.add_parser("lazy", help="LazyGNN against APPNP and GCN: accuracy, time, memory")
    lazy_bench.add_arguments(lazy)
    datasets = commands.add_parser(
        "datasets", help="the dataset catalog: sizes, split, metric, where each is read from")
    datasets_cmd.add_arguments(datasets)
    report = commands.add_parser(
        "report", help="the table of a results file of bench --out, and its plots")
    report_cmd.add_arguments(report)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args._argv = argv  # for the results files (private: not a setting)
    run_check(args)
    if args.command == "datasets":
        datasets_cmd.run(args)
    elif args.command == "report":
        report_cmd.run(args)
    elif args.what == "sampler":
        sampler_bench.run(args)
    elif args.what == "gather":
        gather_bench.run(args)
    elif args.what == "pipeline":
        pipeline_bench.run(args)
    elif args.what == "saint":
        saint_bench.run(args)
    elif args.what == "cluster":
        cluster_bench.run(args)
    elif args.what == "lazy":
        lazy_bench.run(args)
    else:
        train_bench.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
