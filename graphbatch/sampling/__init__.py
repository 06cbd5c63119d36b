"""Samplers: topology in, ids out. One module per sampler family."""
from graphbatch.sampling.hetero import HeteroGraph, HeteroNeighborSampler, HeteroSampledSubgraph
from graphbatch.sampling.link import LinkSampler
from graphbatch.sampling.neighbor import NeighborSampler, SampledSubgraph
from graphbatch.sampling.plan import BatchPlan, Sampler

__all__ = ["BatchPlan", "HeteroGraph", "HeteroNeighborSampler", "HeteroSampledSubgraph",
           "LinkSampler", "NeighborSampler", "SampledSubgraph", "Sampler"]
