"""Samplers: topology in, ids out. One module per sampler family."""
from graphbatch.sampling.neighbor import NeighborSampler, SampledSubgraph

__all__ = ["NeighborSampler", "SampledSubgraph"]
