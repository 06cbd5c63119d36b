"""Feature store and gather backends: host tables, CPU reused buffers, CUDA zero-copy."""
from graphbatch.features.buffers import BufferPool
from graphbatch.features.store import FeatureStore

__all__ = ["BufferPool", "FeatureStore"]
