"""Heterogeneous neighbor sampling: one global id space, one CSC over every edge type,
one numba pass per hop.

Node ids of all types are laid end to end (type ``t``'s node ``i`` is global node
``node_offset[t] + i``) and so are edge ids (edge type ``r``'s edge ``e`` is global
edge ``edge_offset[r] + e``). The incoming edges of every edge type go into one CSC
whose columns are (target node, edge type) *segments*, ordered by node then by edge
type: the same ``indptr``/``indices``/``perm`` arrays as PyG's per-edge-type CSCs
(one pointer per target node and edge type ending at its type, one source and one
edge id per edge), interleaved. A hop samples every edge type of every frontier node
in one parallel kernel (:mod:`graphbatch.sampling._hetero_kernels`) with that edge
type's fanout; the hop loop and node deduplication (on global ids) are the homogeneous
sampler's (:class:`~graphbatch.sampling.neighbor.HopSampler`); a stable counting sort
by type, in parallel, splits nodes and edges back by type.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.sampler.base import NumNeighbors

from graphbatch._validate import as_edge_index, as_index_tensor, as_int, check_node_range
from graphbatch.graph_kernels import build_csc, build_oriented
from graphbatch.sampling import _hetero_kernels as H
from graphbatch.sampling.neighbor import HopSampler, check_num_neighbors, pick_offsets
from graphbatch.sampling.plan import BatchPlan

NodeType = str
EdgeType = tuple[str, str, str]
#: The subgraph types the heterogeneous sampler makes.
HETERO_SUBGRAPH_TYPES = ("directional", "induced")


def as_edge_type(key: object) -> EdgeType:
    """An edge type as a ``(source, relation, target)`` tuple: from such a tuple, or from
    PyG's ``'source__relation__target'`` string (``EdgeTypeStr``)."""
    if isinstance(key, str):
        parts = key.split("__")
        if len(parts) == 3:
            return tuple(parts)  # type: ignore[return-value]
    elif isinstance(key, tuple) and len(key) == 3 and all(isinstance(k, str) for k in key):
        return key  # type: ignore[return-value]
    raise TypeError(f"an edge type is a (source, relation, target) tuple of strings, got {key!r}")


class HeteroGraph:
    """The topology of a heterogeneous graph, for :class:`HeteroNeighborSampler`.

    Args:
        num_nodes: nodes per node type (the order fixes the global ids).
        edge_index: ``[2, E]`` integer edges per edge type ``(source type, relation,
            target type)``, ids within the source and target types.

    Attributes:
        node_types, edge_types: the types, in the given order.
        node_offset: ``[T + 1]`` int64: type ``t``'s nodes are global ids
            ``node_offset[t] .. node_offset[t + 1] - 1``.
        edge_offset: ``[R + 1]`` int64, likewise for edge ids.
        in_ptr, in_rel: node type ``t``'s incoming edge types (its slots) are
            ``in_rel[in_ptr[t]:in_ptr[t + 1]]`` (edge type indices, in edge type order).
        seg_base: ``[T]`` the first segment of each node type's nodes.
        segptr: ``[S + 1]`` int64 CSC offsets of the segments.
        indices: ``[E]`` int64 global source ids, grouped by segment.
        perm: ``[E]`` int64 global edge ids, aligned with ``indices``.
    """

    def __init__(self, num_nodes: Mapping[NodeType, int],
                 edge_index: Mapping[EdgeType, Tensor]) -> None:
        if not isinstance(num_nodes, Mapping) or not num_nodes:
            raise ValueError(f"num_nodes must map each node type to its node count, got {num_nodes!r}")
        counts = {}
        for node_type, n in num_nodes.items():
            if not isinstance(node_type, str):
                raise TypeError(f"node types are strings, got {node_type!r}")
            n = as_int(n, f"num_nodes[{node_type!r}]")
            if n < 0:
                raise ValueError(f"num_nodes[{node_type!r}] must be >= 0, got {n}")
            counts[node_type] = n
        self.node_types: list[NodeType] = list(counts)
        self.num_nodes_dict: dict[NodeType, int] = counts
        self.node_offset = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(list(counts.values()), out=self.node_offset[1:])
        type_index = {t: i for i, t in enumerate(self.node_types)}

        edges = {}
        for key, ei in edge_index.items():
            edge_type = as_edge_type(key)
            edges[edge_type] = self._check_edges(edge_type, ei, type_index)
        self.edge_types: list[EdgeType] = list(edges)
        self.num_edges_dict: dict[EdgeType, int] = {k: v.size(1) for k, v in edges.items()}
        self.edge_offset = np.zeros(len(edges) + 1, dtype=np.int64)
        np.cumsum(list(self.num_edges_dict.values()), out=self.edge_offset[1:])

        # Each node type's incoming edge types, and each edge type's slot among them.
        dst_types = [type_index[dst] for _, _, dst in self.edge_types]
        slots = np.zeros(len(self.edge_types), dtype=np.int64)
        per_type: list[list[int]] = [[] for _ in self.node_types]
        for r, t in enumerate(dst_types):
            slots[r] = len(per_type[t])
            per_type[t].append(r)
        self.in_ptr = np.zeros(len(self.node_types) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in per_type], out=self.in_ptr[1:])
        self.in_rel = np.array([r for p in per_type for r in p], dtype=np.int64)
        sizes = np.array([counts[t] * len(per_type[i]) for i, t in enumerate(self.node_types)],
                         dtype=np.int64)
        self.seg_base = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        num_segments = int(sizes.sum())

        src = np.empty(int(self.edge_offset[-1]), dtype=np.int64)
        seg = np.empty_like(src)
        for r, (edge_type, ei) in enumerate(edges.items()):
            lo, hi = self.edge_offset[r], self.edge_offset[r + 1]
            t = dst_types[r]
            np.add(ei[0].numpy(), self.node_offset[type_index[edge_type[0]]], out=src[lo:hi])
            np.multiply(ei[1].numpy(), len(per_type[t]), out=seg[lo:hi])
            seg[lo:hi] += self.seg_base[t] + slots[r]
        segptr, indices, perm = build_csc(src, seg, num_segments)
        del src, seg
        self.segptr: Tensor = torch.from_numpy(segptr)
        self.indices: Tensor = torch.from_numpy(indices)
        self.perm: Tensor = torch.from_numpy(perm)
        self._oriented: Optional[tuple[Tensor, Tensor, Tensor]] = None

    def _check_edges(self, edge_type: EdgeType, ei: object, type_index: dict) -> Tensor:
        src, _, dst = edge_type
        for side in (src, dst):
            if side not in type_index:
                raise ValueError(f"edge type {edge_type!r} names node type {side!r}, which is not "
                                 f"among the node types {self.node_types}")
        name = f"edge_index of {edge_type!r}"
        ei = as_edge_index(ei, name)
        check_node_range(ei[0], self.num_nodes_dict[src], f"{name} (sources, type {src!r})")
        check_node_range(ei[1], self.num_nodes_dict[dst], f"{name} (targets, type {dst!r})")
        return ei

    @classmethod
    def from_data(cls, data) -> "HeteroGraph":
        """The topology of a PyG ``HeteroData``: its node types' ``num_nodes`` and its
        edge types' ``edge_index``."""
        num_nodes = {}
        for node_type in data.node_types:
            n = data[node_type].num_nodes
            if n is None:
                raise ValueError(f"cannot tell how many nodes of type {node_type!r} data has; "
                                 f"set data[{node_type!r}].num_nodes")
            num_nodes[node_type] = n
        edge_index = {}
        for edge_type in data.edge_types:
            ei = getattr(data[edge_type], "edge_index", None)
            if ei is None:
                raise ValueError(f"data[{edge_type!r}] has no 'edge_index'; graphbatch needs "
                                 f"the edge list of every edge type")
            edge_index[edge_type] = ei
        return cls(num_nodes, edge_index)

    @property
    def num_nodes(self) -> int:
        return int(self.node_offset[-1])

    @property
    def num_edges(self) -> int:
        return int(self.edge_offset[-1])

    @property
    def nbytes(self) -> int:
        """Bytes of the sampling layout (``segptr``, ``indices``, ``perm``)."""
        return sum(t.numel() * t.element_size() for t in (self.segptr, self.indices, self.perm))

    def node_type_index(self, node_type: object, name: str) -> int:
        """The index of ``node_type``, which the argument ``name`` gives."""
        return self.node_types.index(known_type(node_type, self.node_types, name, edge=False))

    def global_ids(self, node_type: NodeType, ids: object, name: str = "seeds") -> Tensor:
        """Ids of ``node_type`` (validated) as global node ids."""
        t = self.node_type_index(node_type, name)
        ids = as_index_tensor(ids, name)
        check_node_range(ids, self.num_nodes_dict[node_type], name)
        return ids + int(self.node_offset[t])

    def numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Zero-copy ``(segptr, indices, perm)`` numpy views for the kernels."""
        return self.segptr.numpy(), self.indices.numpy(), self.perm.numpy()

    def oriented(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every edge filed once under one endpoint, over global node ids, as
        :meth:`graphbatch.graph.CSCGraph.oriented` (for induced subgraphs). Built on
        first call and kept."""
        if self._oriented is None:
            indptr = np.empty(self.num_nodes + 1, dtype=np.int64)
            H.node_starts(self.segptr.numpy(), self.node_offset, self.seg_base, self.in_ptr, indptr)
            built = build_oriented(indptr, self.indices.numpy(), self.perm.numpy())
            self._oriented = tuple(map(torch.from_numpy, built))
        return tuple(t.numpy() for t in self._oriented)

    def share_memory_(self) -> "HeteroGraph":
        for t in (self.segptr, self.indices, self.perm, *(self._oriented or ())):
            t.share_memory_()
        return self

    def __repr__(self) -> str:
        return (f"HeteroGraph(num_nodes={self.num_nodes_dict}, "
                f"num_edges={ {'__'.join(k): v for k, v in self.num_edges_dict.items()} })")


def known_type(key: object, types: Sequence, name: str, edge: bool) -> Union[NodeType, EdgeType]:
    """``key`` as one of ``types``, the graph's node types (or its edge types when
    ``edge``), or a ValueError naming the argument ``name``."""
    kind, what = (as_edge_type(key), "edge type") if edge else (key, "node type")
    if kind not in types:
        raise ValueError(f"{name} names {what} {kind!r}, which the graph does not have; its "
                         f"{what}s are {list(types)}")
    return kind


def check_hetero_num_neighbors(num_neighbors: object, edge_types: Sequence[EdgeType]
                               ) -> dict[EdgeType, list[int]]:
    """Fanouts per hop for every edge type, from a list (every edge type), a dict per
    edge type (keys as tuples or PyG's ``'src__rel__dst'`` strings), or PyG's
    ``NumNeighbors`` (whose ``default`` serves the edge types a dict leaves out)."""
    default = None
    if isinstance(num_neighbors, NumNeighbors):
        num_neighbors, default = num_neighbors.values, num_neighbors.default
    if not isinstance(num_neighbors, Mapping):
        fanouts = check_num_neighbors(num_neighbors)
        return {edge_type: list(fanouts) for edge_type in edge_types}
    given = {}
    for key, value in num_neighbors.items():
        edge_type = known_type(key, edge_types, "num_neighbors", edge=True)
        given[edge_type] = _fanouts(value, f"num_neighbors[{edge_type!r}]")
    if default is not None:
        default = _fanouts(default, "the default of num_neighbors")
    out = {}
    for edge_type in edge_types:
        if edge_type not in given and default is None:
            raise ValueError(f"num_neighbors gives no fanouts for edge type {edge_type!r}; give "
                             f"one list per edge type, or NumNeighbors(values, default=...)")
        out[edge_type] = given.get(edge_type, default)
    hops = {len(f) for f in out.values()}
    if len(hops) > 1:
        raise ValueError(f"num_neighbors must give every edge type the same number of hops, got "
                         f"{ {'__'.join(k): len(v) for k, v in out.items()} }")
    return out


def _fanouts(value: object, name: str) -> list[int]:
    try:
        return check_num_neighbors(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None


@dataclass
class HeteroSampledSubgraph:
    """Ids of one sampled heterogeneous subgraph, per type; field names follow PyG's
    ``HeteroSamplerOutput``. Every node type and edge type of the graph has an entry
    (empty where nothing was sampled).

    Attributes:
        node: node type -> ``[n_t]`` int64 ids within the type (the seeds first, in
            input order, for their type).
        row, col: edge type -> ``[m_r]`` int64 local source / target ids (index into
            ``node`` of the source / target type).
        edge: edge type -> ``[m_r]`` int64 edge ids within the edge type.
        edge_index: edge type -> ``[2, m_r]`` int64, ``row`` over ``col`` (their rows).
        batch: node type -> ``[n_t]`` seed index of each node in disjoint mode, else None.
        num_sampled_nodes: node type -> nodes added per hop (``len == hops + 1``).
        num_sampled_edges: edge type -> edges added per hop, or None (``'induced'``).
    """

    node: dict[NodeType, Tensor]
    row: dict[EdgeType, Tensor]
    col: dict[EdgeType, Tensor]
    edge: dict[EdgeType, Tensor]
    edge_index: dict[EdgeType, Tensor]
    batch: Optional[dict[NodeType, Tensor]] = None
    num_sampled_nodes: Optional[dict[NodeType, list[int]]] = None
    num_sampled_edges: Optional[dict[EdgeType, list[int]]] = None


Seeds = Union[BatchPlan, tuple, Mapping[NodeType, object]]


#: Ids per chunk of the parallel split by type.
SPLIT_CHUNK = 16384


def _group(ids: np.ndarray, offsets: np.ndarray, hops: list[int]):
    """A stable counting sort of global ids ``ids`` by type (``offsets``), hop ``h``'s
    ``hops[h]`` ids one after another: ``(types [n], type_start [T + 1], dest [n],
    counts [T, hops])`` for :func:`~graphbatch.sampling._hetero_kernels.scatter_nodes`
    and ``scatter_edges``: id ``j`` goes to ``dest[j]``, type ``t``'s ids to
    ``type_start[t]:type_start[t + 1]``; ``counts[t, h]``: type ``t``'s ids of hop
    ``h``."""
    num_types = offsets.shape[0] - 1
    num_chunks = -(-ids.shape[0] // SPLIT_CHUNK)
    counts = np.zeros((num_chunks, num_types, len(hops)), dtype=np.int64)
    types = np.empty(ids.shape[0], dtype=np.int64)
    H.count_types(ids, offsets, np.cumsum(hops), SPLIT_CHUNK, types, counts)
    per_chunk = counts.sum(axis=2)
    type_start = np.zeros(num_types + 1, dtype=np.int64)
    np.cumsum(per_chunk.sum(axis=0), out=type_start[1:])
    base = np.ascontiguousarray(type_start[:-1] + np.cumsum(per_chunk, axis=0) - per_chunk)
    dest = np.empty_like(types)
    H.destinations(types, base, SPLIT_CHUNK, dest)
    return types, type_start, dest, counts.sum(axis=0)


class HeteroNeighborSampler(HopSampler[HeteroSampledSubgraph]):
    """Samples, per hop, up to ``num_neighbors[edge_type][h]`` incoming neighbors of each
    frontier node over each edge type ending at its type.

    Args:
        graph: the topology.
        num_neighbors: fanouts per hop: one list for every edge type, a dict per edge
            type, or PyG's ``NumNeighbors``; ``-1`` takes every neighbor.
        replace: sample with replacement.
        subgraph_type: ``'directional'`` (the sampled edges) or ``'induced'`` (every edge
            among the sampled nodes, of every edge type).
        disjoint: each seed grows its own tree; nodes repeat across trees.
    """

    def __init__(self, graph: HeteroGraph, num_neighbors: object, replace: bool = False,
                 subgraph_type: str = "directional", disjoint: bool = False) -> None:
        if not isinstance(graph, HeteroGraph):
            raise TypeError(f"graph must be a HeteroGraph, got {type(graph).__name__}")
        if subgraph_type == "bidirectional":
            raise NotImplementedError("subgraph_type='bidirectional' is not supported for "
                                      "heterogeneous graphs yet; use 'directional' or 'induced'")
        if subgraph_type not in HETERO_SUBGRAPH_TYPES:
            raise ValueError(f"subgraph_type must be one of {HETERO_SUBGRAPH_TYPES}, "
                             f"got {subgraph_type!r}")
        self.num_neighbors = check_hetero_num_neighbors(num_neighbors, graph.edge_types)
        self.num_hops = len(next(iter(self.num_neighbors.values()), []))
        #: ``[R, hops]`` int64 fanout of edge type ``r`` at hop ``h``.
        self.fanouts = np.array([self.num_neighbors[k] for k in graph.edge_types],
                                dtype=np.int64).reshape(len(graph.edge_types), self.num_hops)
        super().__init__(graph, replace, subgraph_type, disjoint)

    def share_memory_(self) -> "HeteroNeighborSampler":
        self.graph.share_memory_()
        return self

    def sample(self, seeds: Seeds, seed: int = 0, batch: int = 0) -> HeteroSampledSubgraph:
        """Samples the subgraph around ``seeds``: ``(node_type, ids)``, a dict
        ``{node_type: ids}`` (seeds of several types, in the dict's order), or a
        loader's :class:`~graphbatch.sampling.plan.BatchPlan` whose items are global
        node ids (validated when the loader was made). ``seed`` and ``batch`` (a plan's
        ``epoch_seed`` and ``index``) fix the randomness: equal arguments give equal
        results whatever the number of threads."""
        if isinstance(seeds, BatchPlan):
            return self.sample_unchecked(seeds.items, seeds.epoch_seed, seeds.index)
        if isinstance(seeds, tuple) and len(seeds) == 2 and isinstance(seeds[0], str):
            seeds = {seeds[0]: seeds[1]}
        if not isinstance(seeds, Mapping):
            raise TypeError(f"seeds must be (node_type, ids), a dict {{node_type: ids}} or a "
                            f"BatchPlan, got {type(seeds).__name__}")
        parts = [self.graph.global_ids(t, ids, f"seeds[{t!r}]") for t, ids in seeds.items()]
        seeds = torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64)
        if seeds.numel() == 0:
            raise ValueError("seeds must hold at least one node, got none")
        return self.sample_unchecked(seeds, int(seed), int(batch))

    def _pick_hop(self, hop: int, frontier: np.ndarray, key: int, first_local: int,
                  tree: np.ndarray, stride: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``fanouts[r, hop]`` neighbors of each frontier node (global ids) over
        each edge type ``r`` ending at its type, in one pass: see
        :meth:`~graphbatch.sampling.neighbor.HopSampler._pick_hop`; edge ids global."""
        g = self.graph
        segptr, indices, perm = g.numpy()
        layout = (g.node_offset, g.seg_base, g.in_ptr, g.in_rel, self.fanouts)
        counts = np.empty(frontier.shape[0], dtype=np.int64)
        H.count_typed_picks(segptr, *layout, hop, self.replace, frontier, counts)
        offsets = pick_offsets(counts)
        m = int(offsets[-1])
        pos, nbr, nbr_key, edge, dst = (np.empty(m, dtype=np.int64) for _ in range(5))
        H.pick_typed(segptr, indices, perm, *layout, hop, self.replace, key, frontier,
                     offsets, first_local, tree, stride, pos, nbr, nbr_key, edge, dst)
        return nbr, nbr_key, edge, dst

    def _finish(self, nodes: np.ndarray, tree: np.ndarray, node_hops: list[int],
                edge_index: np.ndarray, edge: np.ndarray,
                edge_hops: Optional[list[int]]) -> HeteroSampledSubgraph:
        """The sampled nodes and edges (global ids, endpoints in sampled order) by type:
        see :meth:`~graphbatch.sampling.neighbor.HopSampler._finish`."""
        g = self.graph
        src, dst = edge_index
        node_types, node_start, node_dest, node_count = _group(nodes, g.node_offset, node_hops)
        local = np.empty(nodes.shape[0], dtype=np.int64)
        ids = np.empty_like(nodes)
        trees = np.empty_like(tree)
        H.scatter_nodes(nodes, tree, node_types, node_dest, g.node_offset, node_start, local,
                        ids, trees)
        edge_types, edge_start, edge_dest, edge_count = _group(
            edge, g.edge_offset, edge_hops if edge_hops is not None else [edge.shape[0]])
        index = np.empty(2 * edge.shape[0], dtype=np.int64)
        eid = np.empty_like(edge)
        H.scatter_edges(src, dst, edge, edge_types, edge_dest, g.edge_offset, edge_start, local,
                        index, eid)

        ids_t, index_t, eid_t = map(torch.from_numpy, (ids, index, eid))
        node = {t: ids_t[node_start[i]:node_start[i + 1]] for i, t in enumerate(g.node_types)}
        edge_index = {}
        edge_ids = {}
        for r, edge_type in enumerate(g.edge_types):
            lo, hi = int(edge_start[r]), int(edge_start[r + 1])
            edge_index[edge_type] = index_t[2 * lo:2 * hi].view(2, hi - lo)
            edge_ids[edge_type] = eid_t[lo:hi]
        batch = None
        if self.disjoint:
            trees_t = torch.from_numpy(trees)
            batch = {t: trees_t[node_start[i]:node_start[i + 1]] for i, t in enumerate(g.node_types)}
        return HeteroSampledSubgraph(
            node=node, row={k: v[0] for k, v in edge_index.items()},
            col={k: v[1] for k, v in edge_index.items()}, edge=edge_ids, edge_index=edge_index,
            batch=batch,
            num_sampled_nodes={t: node_count[i].tolist() for i, t in enumerate(g.node_types)},
            num_sampled_edges=None if edge_hops is None else
            {k: edge_count[r].tolist() for r, k in enumerate(g.edge_types)})

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_neighbors="
                f"{ {'__'.join(k): v for k, v in self.num_neighbors.items()} })")
