"""Loaders: compose a sampler, attribute gathering and batch assembly into a DataLoader."""
from graphbatch.loader.neighbor_loader import NeighborLoader

__all__ = ["NeighborLoader"]
