"""Loaders: compose a sampler, feature gathering and batch assembly into a DataLoader."""
from graphbatch.loader.cluster_loader import ClusterData, ClusterLoader
from graphbatch.loader.halo_loader import HaloLoader
from graphbatch.loader.hetero_loader import HeteroNeighborLoader
from graphbatch.loader.link_loader import LinkNeighborLoader
from graphbatch.loader.neighbor_loader import NeighborLoader
from graphbatch.loader.saint_loader import (
    GraphSAINTEdgeSampler, GraphSAINTNodeSampler, GraphSAINTRandomWalkSampler, GraphSAINTSampler,
)

__all__ = [
    "ClusterData", "ClusterLoader", "GraphSAINTEdgeSampler", "GraphSAINTNodeSampler",
    "GraphSAINTRandomWalkSampler", "GraphSAINTSampler", "HaloLoader", "HeteroNeighborLoader",
    "LinkNeighborLoader", "NeighborLoader",
]
