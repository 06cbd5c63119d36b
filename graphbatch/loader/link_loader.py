"""``graphbatch.LinkNeighborLoader``: a drop-in for ``torch_geometric.loader.LinkNeighborLoader``."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.sampler.base import NegativeSampling, NumNeighbors, SubgraphType

from graphbatch._validate import as_index_tensor, check_node_range
from graphbatch.features import FeatureStore
from graphbatch.graph import CSCGraph
from graphbatch.loader.base import BatchLoader, check_data
from graphbatch.loader.batches import SeededBatches
from graphbatch.loader.neighbor_loader import NeighborLoader, pyg_subgraph_type
from graphbatch.sampling.link import LinkSampledSubgraph, LinkSampler, check_neg_sampling
from graphbatch.sampling.neighbor import NeighborSampler
from graphbatch.sampling.plan import BatchPlan


class LinkNeighborLoader(BatchLoader):
    """Mini-batches around seed links, as ``torch_geometric.loader.LinkNeighborLoader``.

    Takes PyG's arguments for homogeneous ``Data``. A batch takes ``batch_size`` pairs
    of ``edge_label_index`` (all of ``data.edge_index`` by default), draws their
    negatives, and samples the neighborhood of the pairs' ends as
    :class:`~graphbatch.NeighborLoader` does (``num_neighbors``, ``replace``,
    ``subgraph_type``, ``disjoint``, ``weight_attr``). Batches carry PyG's fields: node
    and edge attributes sliced by ``n_id`` and ``e_id``, ``edge_index`` in local ids,
    ``num_sampled_nodes``, ``num_sampled_edges``, ``input_id`` (the pairs' positions in
    ``edge_label_index``, or their entries of ``input_id`` if given), and

    * without negatives or with ``'binary'`` ones: ``edge_label_index`` ``[2, P + Q]``
      in local ids (the ``P`` pairs, then ``Q = ceil(P * amount)`` negative pairs) and
      ``edge_label`` (``edge_label`` of the pairs if given, plus one where it holds a 0
      and negatives are drawn; with negatives, float ones if not given; 0 for the
      negatives);
    * with ``'triplet'``: ``src_index``, ``dst_pos_index`` (``[P]``) and
      ``dst_neg_index`` (``[P]``, or ``[P, amount]``), in local ids.

    The seed nodes come first in ``n_id``: the pairs' distinct ends, sorted (in
    disjoint mode every end in order, each its own tree, and ``batch`` is the tree's
    pair, modulo ``P``, as in PyG).

    Negatives are drawn uniformly (or by ``src_weight``/``dst_weight``) by numba kernels
    from the batch's seed, so the same ``torch.manual_seed`` gives the same batches for
    any ``num_workers`` and thread count. As in PyG they may be true edges, unless
    ``reject_true_edges``.

    Leakage: PyG samples the message-passing graph around a seed pair with the pair's
    own edge in it when ``edge_label_index`` holds edges of ``data`` (the default, and
    training on ``RandomLinkSplit``'s training edges), so the model can read the link it
    is asked to predict. PyG's remedy is to split supervision from message-passing edges
    once (``RandomLinkSplit(disjoint_train_ratio=...)``). ``exclude_seed_edges=True``
    does it per batch instead: every edge joining the two ends of a pair of the batch
    (positive or negative, either direction) is removed from the sampled graph, so
    every training edge still passes messages in the other batches. Off by default,
    for PyG's batches; the fanout is spent before removal, so a seed may get one
    neighbor fewer than ``num_neighbors`` asks.

    Args:
        data: the graph, a ``torch_geometric.data.Data`` with ``edge_index``.
        num_neighbors: fanout per hop (a list, or PyG's ``NumNeighbors`` of one).
        edge_label_index: ``[2, L]`` integer node ids of the seed pairs (sources over
            destinations); None: ``data.edge_index``.
        edge_label: ``[L, ...]`` labels of the pairs (None for ``'triplet'``).
        edge_label_time, time_attr: temporal sampling, refused (NotImplementedError).
        replace, subgraph_type, disjoint, weight_attr: as in
            :class:`~graphbatch.NeighborLoader`.
        neg_sampling: PyG's ``NegativeSampling`` (or ``'binary'``/``'triplet'``, a dict
            or a tuple of its fields: ``mode``, ``amount``, ``src_weight``,
            ``dst_weight``), or None for no negatives.
        neg_sampling_ratio: the former form of ``NegativeSampling('binary', ratio)``;
            replaces ``neg_sampling`` when given and not 0, as in PyG.
        reject_true_edges: negatives are never edges of ``data`` nor pairs of
            ``edge_label_index`` (drawn again, see
            :class:`~graphbatch.sampling.link.LinkSampler`).
        exclude_seed_edges: leave the pairs' own edges out of the sampled graph (above).
        transform, transform_sampler_output, filter_per_worker, node_store, edge_store,
            device, prefetch: see :class:`~graphbatch.loader.base.BatchLoader`.
        neighbor_sampler: a graphbatch ``NeighborSampler`` to grow the subgraphs with
            (replaces ``num_neighbors`` ... ``weight_attr``).
        graph: a prebuilt :class:`CSCGraph` of ``data`` to reuse across loaders.
        **kwargs: ``torch.utils.data.DataLoader`` arguments (``batch_size``, ``shuffle``,
            ``drop_last``, ``num_workers``, ``generator``, ``sampler``, ...), PyG's
            ``input_id``: ``[L]`` integer ids of the pairs, reported as ``input_id``,
            and ``distributed`` (this rank's share of the pairs, as for
            :class:`~graphbatch.loader.neighbor_loader.NeighborLoader`).
    """

    def __init__(
        self,
        data: Data,
        num_neighbors: Union[Sequence[int], NumNeighbors],
        edge_label_index: Optional[Tensor] = None,
        edge_label: Optional[Tensor] = None,
        edge_label_time: Optional[Tensor] = None,
        replace: bool = False,
        subgraph_type: Union[SubgraphType, str] = "directional",
        disjoint: bool = False,
        temporal_strategy: str = "uniform",
        neg_sampling: Union[NegativeSampling, str, dict, tuple, None] = None,
        neg_sampling_ratio: Optional[Union[int, float]] = None,
        time_attr: Optional[str] = None,
        weight_attr: Optional[str] = None,
        transform: Optional[Callable] = None,
        transform_sampler_output: Optional[Callable] = None,
        is_sorted: bool = False,
        filter_per_worker: Optional[bool] = None,
        neighbor_sampler: Optional[NeighborSampler] = None,
        directed: bool = True,
        reject_true_edges: bool = False,
        exclude_seed_edges: bool = False,
        graph: Optional[CSCGraph] = None,
        node_store: Optional[FeatureStore] = None,
        edge_store: Optional[FeatureStore] = None,
        device: Union[str, torch.device, None] = None,
        prefetch: int = 2,
        **kwargs: Any,
    ) -> None:
        check_data(data, "LinkNeighborLoader")
        if edge_label_time is not None:
            raise NotImplementedError("temporal link sampling (edge_label_time, time_attr) is "
                                      "not supported yet")
        subgraph_type = pyg_subgraph_type(subgraph_type, directed, time_attr, None)
        del temporal_strategy, is_sorted  # no meaning without time; CSC is built by sorting
        # NeighborLoader's own step, so both loaders read the same arguments the same way.
        neighbor_sampler = NeighborLoader._sampler_for(
            self, data, graph, neighbor_sampler, num_neighbors, replace, subgraph_type,
            disjoint, weight_attr)
        num_nodes = neighbor_sampler.graph.num_nodes
        self.edge_label_index = _pairs(data if edge_label_index is None else edge_label_index,
                                       num_nodes)
        num_pairs = self.edge_label_index.size(1)
        if neg_sampling_ratio is not None and neg_sampling_ratio != 0:
            neg = check_neg_sampling(("binary", neg_sampling_ratio), num_nodes,
                                     "neg_sampling_ratio")
        else:
            neg = check_neg_sampling(neg_sampling, num_nodes)
        self.negatives = neg
        #: As PyG's loader has it (None, or a ``NegativeSampling``).
        self.neg_sampling = None if neg is None else NegativeSampling(
            neg.mode, neg.amount, neg.src_weight, neg.dst_weight)
        self.edge_label = _labels(edge_label, num_pairs, neg.mode if neg else None)
        input_id = kwargs.pop("input_id", None)
        self.input_id = None if input_id is None else as_index_tensor(input_id, "input_id")
        if self.input_id is not None and self.input_id.numel() != num_pairs:
            raise ValueError(f"input_id must hold one id per pair of edge_label_index "
                             f"({num_pairs}), got {self.input_id.numel()}")
        self.neighbor_sampler = neighbor_sampler
        self.link_sampler = LinkSampler(neighbor_sampler, neg, reject_true_edges,
                                        exclude_seed_edges, true_pairs=self.edge_label_index)
        batches = SeededBatches.from_loader_args(num_pairs, kwargs,
                                                 inputs=self.edge_label_index.t().contiguous())
        super().__init__(
            data, neighbor_sampler.graph, batches, self.link_sampler, transform=transform,
            transform_sampler_output=transform_sampler_output,
            filter_per_worker=filter_per_worker, node_store=node_store, edge_store=edge_store,
            device=device, prefetch=prefetch, **kwargs,
        )

    def decorate(self, batch: Data, out: LinkSampledSubgraph, plan: BatchPlan,
                 device: Optional[torch.device]) -> None:
        if not isinstance(out, LinkSampledSubgraph):
            raise TypeError(f"transform_sampler_output must return a LinkSampledSubgraph "
                            f"(it holds the seed pairs), got {type(out).__name__}")
        fields = {"input_id": plan.positions if self.input_id is None
                  else self.input_id[plan.positions]}
        mode = self.negatives.mode if self.negatives is not None else None
        if mode == "triplet":
            fields.update(src_index=out.src_index, dst_pos_index=out.dst_pos_index,
                          dst_neg_index=out.dst_neg_index)
            for key in ("edge_label_index", "edge_label_time", "seed_time"):
                del batch[key]
        else:
            label = None if self.edge_label is None else self.edge_label[plan.positions]
            if mode == "binary":
                num_neg = out.edge_label_index.size(1) - out.num_pos
                if label is None:
                    label = torch.ones(out.num_pos)
                label = torch.cat([label, label.new_zeros((num_neg, *label.shape[1:]))])
            fields.update(edge_label_index=out.edge_label_index, edge_label=label)
            for key in ("edge_label", "edge_label_time"):
                del batch[key]  # data's own, if any, are not this batch's
        for key, value in fields.items():
            if value is not None:
                batch[key] = value if device is None else value.to(device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_neighbors={self.neighbor_sampler.num_neighbors})"


def _pairs(value: Any, num_nodes: int) -> Tensor:
    """``edge_label_index`` (or a Data's ``edge_index``) as a ``[2, L]`` int64 CPU tensor
    of node ids, ``L >= 1``."""
    name = "edge_label_index"
    if isinstance(value, Data):
        value = value.edge_index
    elif isinstance(value, (tuple, str)):
        raise NotImplementedError(
            f"{name} naming an edge type (heterogeneous graphs) is not supported yet; for a "
            f"Data give the pairs themselves, got {type(value).__name__}")
    pairs = value if isinstance(value, Tensor) else torch.as_tensor(value)
    if pairs.dim() != 2 or pairs.size(0) != 2:
        raise ValueError(f"{name} must have shape [2, L], got {tuple(pairs.shape)}")
    if pairs.size(1) == 0:
        raise ValueError(f"{name} holds no pair; give at least one")
    flat = as_index_tensor(pairs.reshape(-1), name)
    check_node_range(flat, num_nodes, name)
    return flat.view(2, -1)


def _labels(label: Any, num_pairs: int, mode: Optional[str]) -> Optional[Tensor]:
    """``edge_label`` checked, on the CPU, plus one where binary negatives are drawn and
    it holds a 0 (PyG's rule: 0 then means negative)."""
    if label is None:
        return None
    if mode == "triplet":
        raise ValueError("edge_label must be None for 'triplet' negative sampling: the "
                         "batches' src_index, dst_pos_index and dst_neg_index tell positives "
                         "from negatives")
    if not isinstance(label, Tensor):
        raise TypeError(f"edge_label must be a tensor, got {type(label).__name__}")
    if label.dim() == 0 or label.size(0) != num_pairs:
        raise ValueError(f"edge_label must hold one label per pair of edge_label_index "
                         f"({num_pairs}), got shape {tuple(label.shape)}")
    label = label.cpu()
    if mode == "binary" and label.numel() and bool(label.min() == 0):
        label = label + 1
    return label
