"""Link sampling: seed pairs and their negatives become seed nodes of a neighbor sample.

A batch of ``P`` seed pairs ``(src, dst)`` is sampled as PyG's ``edge_sample`` does:
negatives are drawn (``'binary'``: ``ceil(P * amount)`` random pairs; ``'triplet'``:
``amount`` random destinations per source), the endpoints become the seed nodes
(sorted and deduplicated; in disjoint mode each endpoint its own tree, in order), and a
:class:`~graphbatch.sampling.neighbor.NeighborSampler` grows the subgraph around them.
The pairs come back in local ids (:class:`LinkSampledSubgraph`).

Negatives are drawn by numba kernels from the batch's seed (the plan's epoch seed and
index), so the same plan gives the same negatives for any thread or worker count.
With ``reject_true_edges`` a negative that is an edge of the graph (or one of the
positive pairs given) is drawn again; with ``exclude_seed_edges`` no edge joining the
two ends of a seed pair is left in the sampled graph (see :class:`LinkSampler`).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.sampler.base import NegativeSampling

from graphbatch._validate import as_index_tensor, check_node_range
from graphbatch.sampling import _link_kernels as L
from graphbatch.sampling._rng import alias_table, batch_key
from graphbatch.sampling.neighbor import NeighborSampler
from graphbatch.sampling.plan import BatchPlan
from graphbatch.sampling.subgraph import SampledSubgraph

NEG_MODES = ("binary", "triplet")
#: Draws of one negative before the fallback scan (see :class:`LinkSampler`).
MAX_TRIES = 100
_EMPTY_F64 = np.empty(0, dtype=np.float64)
_EMPTY_I64 = np.empty(0, dtype=np.int64)


@dataclass
class LinkSampledSubgraph(SampledSubgraph):
    """A :class:`SampledSubgraph` around seed pairs, and the pairs in its local ids.

    Attributes:
        num_pos: ``P``, the seed pairs (negatives come after them).
        edge_label_index: ``[2, P + Q]`` local ids of the seed pairs, then of the ``Q``
            negative pairs (no negatives, or ``'binary'``), else None.
        src_index, dst_pos_index: ``[P]`` local ids of the pairs' ends (``'triplet'``).
        dst_neg_index: ``[P]`` or ``[P, amount]`` local ids of each source's negative
            destinations (``'triplet'``).
    """

    num_pos: int = 0
    edge_label_index: Optional[Tensor] = None
    src_index: Optional[Tensor] = None
    dst_pos_index: Optional[Tensor] = None
    dst_neg_index: Optional[Tensor] = None


@dataclass(frozen=True)
class Negatives:
    """A negative sampling setting, checked (see :func:`check_neg_sampling`)."""

    mode: str
    amount: Union[int, float]
    src_weight: Optional[Tensor] = None
    dst_weight: Optional[Tensor] = None

    def count(self, num_pos: int) -> int:
        """Negatives for ``num_pos`` positives, as PyG counts them."""
        return math.ceil(num_pos * self.amount)


def check_neg_sampling(value: Any, num_nodes: int, name: str = "neg_sampling") -> Optional[Negatives]:
    """PyG's negative sampling argument (None, a ``NegativeSampling``, a mode string, a
    ``(mode, amount, ...)`` tuple or a dict of its fields) as :class:`Negatives`, or a
    TypeError/ValueError naming ``name``."""
    if value is None:
        return None
    if isinstance(value, NegativeSampling):
        fields = dict(mode=value.mode.value, amount=value.amount, src_weight=value.src_weight,
                      dst_weight=value.dst_weight)
    elif isinstance(value, str):
        fields = dict(mode=value)
    elif isinstance(value, (tuple, list)):
        if not 1 <= len(value) <= 4:
            raise ValueError(f"{name} as a tuple must be (mode, amount, src_weight, dst_weight) "
                             f"or a prefix of it, got {len(value)} entries")
        fields = dict(zip(("mode", "amount", "src_weight", "dst_weight"), value))
    elif isinstance(value, dict):
        unknown = set(value) - {"mode", "amount", "src_weight", "dst_weight"}
        if unknown or "mode" not in value:
            raise TypeError(f"{name} as a dict takes 'mode' and optionally 'amount', "
                            f"'src_weight', 'dst_weight'; got keys {sorted(value)}")
        fields = dict(value)
    else:
        raise TypeError(f"{name} must be None, a NegativeSampling, a mode string, a tuple or "
                        f"a dict, got {type(value).__name__}")
    mode = getattr(fields["mode"], "value", fields["mode"])
    if mode not in NEG_MODES:
        raise ValueError(f"{name} mode must be one of {NEG_MODES}, got {mode!r}")
    amount = fields.get("amount", 1)
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real) or not math.isfinite(amount):
        raise TypeError(f"{name} amount must be a finite number, got {amount!r}")
    if amount <= 0:
        raise ValueError(f"{name} amount must be positive, got {amount}")
    if mode == "triplet":
        if amount != math.ceil(amount):
            raise ValueError(f"{name} amount must be an integer for 'triplet', got {amount}")
        amount = int(amount)
    weights = {key: _check_node_weight(fields.get(key), num_nodes, f"{name} {key}")
               for key in ("src_weight", "dst_weight")}
    return Negatives(mode, amount, **weights)


def _check_node_weight(weight: Any, num_nodes: int, name: str) -> Optional[Tensor]:
    if weight is None:
        return None
    if not isinstance(weight, Tensor) or not weight.is_floating_point():
        raise TypeError(f"{name} must be a floating point tensor, got "
                        f"{getattr(weight, 'dtype', type(weight).__name__)}")
    if weight.dim() != 1 or weight.numel() != num_nodes:
        raise ValueError(f"{name} must have shape [{num_nodes}] (num_nodes), got {tuple(weight.shape)}")
    w = weight.detach().to("cpu", torch.float64).contiguous()
    if not bool((torch.isfinite(w) & (w >= 0)).all()) or float(w.sum()) <= 0:
        raise ValueError(f"{name} must be finite, >= 0 and not all 0")
    return w


class _NodeDraws:
    """Alias table of node weights (empty arrays: uniform)."""

    def __init__(self, weight: Optional[Tensor]) -> None:
        if weight is None:
            self.weight = self.prob = _EMPTY_F64
            self.alias = _EMPTY_I64
            return
        self.weight = weight.numpy()
        self.prob = np.empty_like(self.weight)
        self.alias = np.empty(self.weight.shape[0], dtype=np.int64)
        alias_table(self.weight, self.prob, self.alias)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.prob, self.alias, self.weight


def pair_keys(src: np.ndarray, dst: np.ndarray, num_nodes: int) -> np.ndarray:
    """Sorted distinct keys ``dst * num_nodes + src`` of the pairs ``src -> dst``."""
    return np.unique(dst * num_nodes + src)


class LinkSampler:
    """Samples the subgraph around a batch of seed pairs and their negatives.

    Args:
        neighbor_sampler: grows the subgraph from the pairs' ends (its ``disjoint``
            setting makes every end its own tree).
        neg_sampling: None, or the negatives to draw (see :func:`check_neg_sampling`).
        reject_true_edges: a negative ``s -> d`` that is an edge of the graph, or one of
            ``true_pairs``, is drawn again (both ends in ``'binary'``, the destination
            in ``'triplet'``). After :data:`MAX_TRIES` draws that all hit true edges
            (an end linked to nearly every node), the first non-edge in cyclic node id
            order from the last draw is taken; if none exists, sampling raises. Needs a
            sorted copy of the graph's sources (8 bytes an edge), made here.
        exclude_seed_edges: remove from the sampled graph every edge joining the two
            ends of any pair of the batch (seed pairs and negatives, either direction),
            so that a model never reads the link it is asked to predict in its input.
        true_pairs: ``[2, L]`` pairs that count as true edges for ``reject_true_edges``
            beside the graph's (the positives to be asked for).
    """

    def __init__(
        self,
        neighbor_sampler: NeighborSampler,
        neg_sampling: Optional[Negatives] = None,
        reject_true_edges: bool = False,
        exclude_seed_edges: bool = False,
        true_pairs: Optional[Tensor] = None,
    ) -> None:
        if not isinstance(neighbor_sampler, NeighborSampler):
            raise TypeError(f"neighbor_sampler must be a graphbatch NeighborSampler, got "
                            f"{type(neighbor_sampler).__name__}")
        if neg_sampling is not None and not isinstance(neg_sampling, Negatives):
            neg_sampling = check_neg_sampling(neg_sampling, neighbor_sampler.graph.num_nodes)
        num_nodes = neighbor_sampler.graph.num_nodes
        if (reject_true_edges or exclude_seed_edges) and num_nodes**2 >= 2**63:
            raise ValueError(f"reject_true_edges and exclude_seed_edges need num_nodes**2 < "
                             f"2**63 (pair keys), got num_nodes={num_nodes}")
        self.neighbor_sampler = neighbor_sampler
        self.graph = neighbor_sampler.graph
        self.disjoint = neighbor_sampler.disjoint
        self.neg = neg_sampling
        self.reject = bool(reject_true_edges) and neg_sampling is not None
        self.exclude = bool(exclude_seed_edges)
        self._src_draws = _NodeDraws(neg_sampling.src_weight if neg_sampling else None)
        self._dst_draws = _NodeDraws(neg_sampling.dst_weight if neg_sampling else None)
        self.sorted_src = self.true_keys = torch.empty(0, dtype=torch.int64)
        if self.reject:
            indptr, indices, _ = self.graph.numpy()
            sorted_src = np.empty_like(indices)
            L.sort_segments(indptr, indices, sorted_src)
            self.sorted_src = torch.from_numpy(sorted_src)
            if true_pairs is not None:
                pairs = true_pairs.numpy()
                self.true_keys = torch.from_numpy(pair_keys(pairs[0], pairs[1], self.graph.num_nodes))

    def share_memory_(self) -> "LinkSampler":
        self.neighbor_sampler.share_memory_()
        self.sorted_src.share_memory_()
        self.true_keys.share_memory_()
        return self

    def sample(self, pairs: Union[Tensor, BatchPlan], seed: int = 0, batch: int = 0
               ) -> LinkSampledSubgraph:
        """Samples around ``pairs`` (``[2, P]`` int64 node ids, sources over
        destinations), or around the items of a loader's plan (``[P, 2]`` rows of
        pairs, validated when the loader was made). ``seed`` and ``batch`` (a plan's
        ``epoch_seed`` and ``index``) fix the randomness."""
        if isinstance(pairs, BatchPlan):
            src, dst = np.ascontiguousarray(pairs.items.numpy().T)
            return self.sample_unchecked(src, dst, pairs.epoch_seed, pairs.index)
        if not isinstance(pairs, Tensor) or pairs.dim() != 2 or pairs.size(0) != 2:
            raise ValueError(f"pairs must be a [2, P] tensor, got "
                             f"{tuple(getattr(pairs, 'shape', ())) or type(pairs).__name__}")
        flat = as_index_tensor(pairs.reshape(-1), "pairs")
        if flat.numel() == 0:
            raise ValueError("pairs must hold at least one pair, got none")
        check_node_range(flat, self.graph.num_nodes, "pairs")
        src, dst = flat.view(2, -1).numpy()
        return self.sample_unchecked(src, dst, int(seed), int(batch))

    def sample_unchecked(self, src: np.ndarray, dst: np.ndarray, seed: int, batch: int
                         ) -> LinkSampledSubgraph:
        """:meth:`sample` for validated ``[P]`` int64 ends (non-empty, in range)."""
        num_pos = src.shape[0]
        key = batch_key(seed, batch)
        mode = self.neg.mode if self.neg is not None else None
        if mode == "binary":
            neg_src, neg_dst = self._binary(key, self.neg.count(num_pos))
            src, dst = np.concatenate([src, neg_src]), np.concatenate([dst, neg_dst])
            ends = [src, dst]
        elif mode == "triplet":
            neg_dst = self._triplet(key, src)
            ends = [src, dst, neg_dst]
        else:
            ends = [src, dst]
        seeds = np.concatenate(ends)
        if self.disjoint:
            local = np.arange(seeds.shape[0], dtype=np.int64)
        else:
            seeds, local = np.unique(seeds, return_inverse=True)
        out = self.neighbor_sampler.sample_unchecked(torch.from_numpy(seeds), seed, batch)
        if self.exclude:
            if mode == "triplet":  # the sources of the negatives, in their order
                neg_src = (np.tile(src, self.neg.amount) if self.disjoint
                           else np.repeat(src, self.neg.amount))
                src, dst = np.concatenate([src, neg_src]), np.concatenate([dst, neg_dst])
            out = _without_pairs(out, src, dst, self.graph.num_nodes)
        if self.disjoint:
            out.batch = out.batch % num_pos
        fields = dict(vars(out), num_pos=num_pos)
        local = torch.from_numpy(local)
        if mode == "triplet":
            amount = self.neg.amount
            neg = local[2 * num_pos:]
            # PyG's layouts: negative q of source q % P (disjoint) or q // amount.
            neg = neg.view(amount, num_pos).t() if self.disjoint else neg.view(num_pos, amount)
            fields.update(src_index=local[:num_pos], dst_pos_index=local[num_pos:2 * num_pos],
                          dst_neg_index=neg.squeeze(-1) if amount == 1 else neg)
        else:
            fields.update(edge_label_index=local.view(2, -1))
        return LinkSampledSubgraph(**fields)

    def _binary(self, key: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        out_src = np.empty(count, dtype=np.int64)
        out_dst = np.empty(count, dtype=np.int64)
        L.binary_negatives(key, self.graph.num_nodes, *self._src_draws.arrays(),
                           *self._dst_draws.arrays(), self.reject, MAX_TRIES,
                           *self._membership(), out_src, out_dst)
        if count and out_src.min() < 0:
            raise ValueError("no negative pair exists: every pair of nodes (of positive "
                             "weight) is a true edge")
        return out_src, out_dst

    def _triplet(self, key: int, src: np.ndarray) -> np.ndarray:
        amount = self.neg.amount
        out_dst = np.empty(src.shape[0] * amount, dtype=np.int64)
        prob, alias, weight = self._dst_draws.arrays()
        L.triplet_negatives(key, src, amount, self.disjoint, self.graph.num_nodes, prob, alias,
                            weight, self.reject, MAX_TRIES, *self._membership(), out_dst)
        if out_dst.shape[0] and out_dst.min() < 0:
            q = int(np.argmin(out_dst))
            s = src[q % src.shape[0]] if self.disjoint else src[q // amount]
            raise ValueError(f"no negative destination exists for source node {s}: it has a "
                             f"true edge to every node (of positive weight)")
        return out_dst

    def _membership(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.graph.indptr.numpy(), self.sorted_src.numpy(), self.true_keys.numpy()


def _without_pairs(out: SampledSubgraph, src: np.ndarray, dst: np.ndarray, num_nodes: int
                   ) -> SampledSubgraph:
    """``out`` without its edges that join ``src[i]`` and ``dst[i]`` (either way), the
    per-hop edge counts recounted."""
    keys = pair_keys(np.concatenate([src, dst]), np.concatenate([dst, src]), num_nodes)
    row, col = out.row.numpy(), out.col.numpy()
    keep = np.empty(row.shape[0], dtype=np.bool_)
    L.keep_unpaired(out.node.numpy(), row, col, keys, num_nodes, keep)
    edge_index = np.stack([row[keep], col[keep]])
    edge = out.edge.numpy()[keep]
    per_hop = out.num_sampled_edges
    if per_hop is not None:
        kept = np.concatenate([[0], np.cumsum(keep)])
        bounds = np.concatenate([[0], np.cumsum(per_hop)])
        per_hop = [int(kept[b]) - int(kept[a]) for a, b in zip(bounds[:-1], bounds[1:])]
    return SampledSubgraph.from_arrays(out.node.numpy(), edge_index, edge, batch=out.batch,
                                       num_sampled_nodes=out.num_sampled_nodes,
                                       num_sampled_edges=per_hop)
