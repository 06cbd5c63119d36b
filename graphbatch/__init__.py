"""graphbatch: GNN mini-batches for PyTorch Geometric models, with numba kernels."""
from graphbatch import _numba  # noqa: F401  (sets the threading layer before any kernel)
from graphbatch.features import FeatureStore
from graphbatch.graph import CSCGraph, CSRGraph
from graphbatch.lazy import LazyGNN, LazyPropagation
from graphbatch.loader import (
    ClusterData, ClusterLoader, GraphSAINTEdgeSampler, GraphSAINTNodeSampler, GraphSAINTRandomWalkSampler, HaloLoader,
    HeteroNeighborLoader, LinkNeighborLoader, NeighborLoader,
)
from graphbatch import distributed  # noqa: E402  (after the loaders it builds on)
from graphbatch.sampling import HeteroGraph, HeteroNeighborSampler, LinkSampler, NeighborSampler, SampledSubgraph

__all__ = [
    "CSCGraph", "CSRGraph", "ClusterData", "ClusterLoader", "FeatureStore", "GraphSAINTEdgeSampler", "GraphSAINTNodeSampler",
    "GraphSAINTRandomWalkSampler", "HaloLoader", "HeteroGraph", "HeteroNeighborLoader", "HeteroNeighborSampler",
    "LazyGNN", "LazyPropagation", "LinkNeighborLoader", "LinkSampler", "NeighborLoader", "NeighborSampler",
    "SampledSubgraph",
]
__version__ = "0.1.0"
