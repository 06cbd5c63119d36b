"""Datasets: the catalog of named graphs, graphs by path, and the synthetic generators."""
from graphbatch.datasets.catalog import (
    NAMES, check_dataset, data_root, load, metric_of, shared_datasets,
)
from graphbatch.datasets.splits import random_split
from graphbatch.datasets.synthetic import planted_classes, planted_graph, skewed_pairs

__all__ = ["NAMES", "check_dataset", "data_root", "load", "metric_of", "planted_classes",
           "planted_graph", "random_split", "shared_datasets", "skewed_pairs"]
