"""``graphbatch`` console script."""
from __future__ import annotations

import argparse
import functools
import sys

from graphbatch.cli import (
    cluster_bench, datasets_cmd, distributed_bench, gather_bench, hetero_bench, lazy_bench,
    link_bench, pipeline_bench, report_cmd, saint_bench, sampler_bench, train_bench,
)
from graphbatch.cli._args import run_check

#: ``graphbatch bench WHAT``: each micro-benchmark's module (``add_arguments`` and
#: ``run``) and help line.
MICRO_BENCHES = {
    "sampler": (sampler_bench, "neighbor-sampling throughput on a 1M-node graph"),
    "gather": (gather_bench, "feature-gather bandwidth against memcpy (and GPU paths)"),
    "pipeline": (pipeline_bench, "epoch time breakdown with and without prefetch"),
    "saint": (saint_bench, "GraphSAINT sampler throughput and pre-sampling time"),
    "cluster": (cluster_bench, "METIS time and Cluster-GCN loader throughput"),
    "lazy": (lazy_bench, "LazyGNN against APPNP and GCN: accuracy, time, memory"),
    "link": (link_bench, "link-level loading (LinkNeighborLoader) against PyG's loader"),
    "hetero": (hetero_bench, "heterogeneous neighbor sampling (3 node, 6 edge types) "
               "against PyG's loader"),
    "distributed": (distributed_bench, "data-parallel training on 1, 2, 4 processes: the "
                    "graph shared per machine, copied per process, or partitioned (METIS, "
                    "random): scaling, memory, locality"),
}


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
    for name, (module, help_line) in MICRO_BENCHES.items():
        module.add_arguments(what.add_parser(name, help=help_line))
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
    elif args.what in MICRO_BENCHES:
        MICRO_BENCHES[args.what][0].run(args)
    else:
        train_bench.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
