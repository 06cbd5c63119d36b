"""Datasets: the catalog of named graphs and the synthetic generators."""
from graphbatch.datasets.catalog import NAMES, data_root, load, shared_datasets
from graphbatch.datasets.splits import random_split
from graphbatch.datasets.synthetic import planted_classes, skewed_pairs

__all__ = ["NAMES", "data_root", "load", "planted_classes", "random_split", "shared_datasets",
           "skewed_pairs"]
