"""Loaders: compose a sampler, feature gathering and batch assembly into a DataLoader."""
from graphbatch.loader.neighbor_loader import NeighborLoader
from graphbatch.loader.saint_loader import (
    GraphSAINTEdgeSampler, GraphSAINTNodeSampler, GraphSAINTRandomWalkSampler, GraphSAINTSampler,
)

__all__ = [
    "GraphSAINTEdgeSampler", "GraphSAINTNodeSampler", "GraphSAINTRandomWalkSampler",
    "GraphSAINTSampler", "NeighborLoader",
]
