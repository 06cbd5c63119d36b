"""Target nodes with their complete L-hop halo: the subgraphs of exact L-step
propagation (LazyGNN's mini-batches)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from graphbatch.graph import CSCGraph
from graphbatch.sampling.cluster import Partition
from graphbatch.sampling.neighbor import NeighborSampler
from graphbatch.sampling.plan import BatchPlan
from graphbatch.sampling.subgraph import SampledSubgraph


class HaloSampler:
    """The targets of a plan plus every node within ``num_hops`` incoming hops of them,
    targets first, with every edge among those nodes.

    Args:
        graph: the topology.
        num_hops: the halo's depth.
        partition: where a plan's items are clusters of this partition, whose nodes
            are the targets (clusters in ascending id, each cluster's nodes in
            ``node_perm`` order); without one, a plan's items are the target nodes.
    """

    def __init__(self, graph: CSCGraph, num_hops: int,
                 partition: Optional[Partition] = None) -> None:
        self.graph = graph
        self.partition = partition
        self.neighbor_sampler = NeighborSampler(graph, [-1] * num_hops, subgraph_type="induced")

    def targets(self, plan: BatchPlan) -> Tensor:
        """The target nodes ([k] int64) of a plan."""
        if self.partition is None:
            return plan.items
        p = self.partition
        clusters = torch.sort(plan.items).values
        return torch.cat([p.node_perm[p.partptr[c]:p.partptr[c + 1]] for c in clusters.tolist()])

    def num_targets(self, plan: BatchPlan) -> int:
        if self.partition is None:
            return plan.items.numel()
        partptr = self.partition.partptr
        return int((partptr[plan.items + 1] - partptr[plan.items]).sum())

    def sample(self, plan: BatchPlan) -> SampledSubgraph:
        targets = self.targets(plan)
        if targets.numel() == 0:  # empty clusters only: METIS may leave a part empty
            raise ValueError(f"batch {plan.index} has no target node (empty clusters "
                             f"{plan.items.tolist()}); use fewer parts or a larger batch_size")
        return self.neighbor_sampler.sample(BatchPlan(plan.epoch_seed, plan.index,
                                                      plan.positions, targets))

    def share_memory_(self) -> "HaloSampler":
        self.neighbor_sampler.share_memory_()
        if self.partition is not None:
            for t in (self.partition.partptr, self.partition.node_perm):
                t.share_memory_()
        return self
