"""Lazy propagation (LazyGNN) with its state in host memory."""
from graphbatch.lazy.model import LazyGNN
from graphbatch.lazy.propagation import LazyPropagation, appnp_steps, sparse_operator
from graphbatch.lazy.state import LazyState
from graphbatch.nn import normalized_adjacency

__all__ = ["LazyGNN", "LazyPropagation", "LazyState", "appnp_steps", "normalized_adjacency",
           "sparse_operator"]
