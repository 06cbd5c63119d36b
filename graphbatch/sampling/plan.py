"""The contract between loaders and samplers: a loader plans each batch, a sampler
turns a plan into ids.

A loader's epoch is a list of :class:`BatchPlan`: which of its inputs (seed nodes,
clusters, GraphSAINT steps, seed edges) make each batch, and the seed that fixes the
batch's randomness. Every sampler implements :class:`Sampler`: ``sample(plan)`` returns
the batch's :class:`~graphbatch.sampling.subgraph.SampledSubgraph`, from the plan
alone, so the same plan gives the same batch in any worker process or thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import Tensor

from graphbatch.sampling.subgraph import SampledSubgraph


@dataclass(frozen=True)
class BatchPlan:
    """One batch of an epoch.

    Attributes:
        epoch_seed: the epoch's seed, drawn when it starts.
        index: the batch's position in the epoch; with ``epoch_seed`` it seeds the
            batch's randomness.
        positions: ``[k]`` int64 positions of the batch's inputs in the loader's input
            list.
        items: ``[k]`` the inputs themselves (seed node ids, cluster ids, ...); equal to
            ``positions`` where the inputs are positions (GraphSAINT steps).
    """

    epoch_seed: int
    index: int
    positions: Tensor
    items: Tensor


@runtime_checkable
class Sampler(Protocol):
    """What every sampler offers a loader: topology in, ids out."""

    def sample(self, plan: BatchPlan) -> SampledSubgraph:
        """The ids of batch ``plan`` (equal plans, equal batches)."""

    def share_memory_(self) -> "Sampler":
        """Moves the sampler's tensors to shared memory, for worker processes."""
