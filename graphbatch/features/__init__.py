"""Feature gathering: rows of host-memory tables by node or edge id."""
from graphbatch.features.gather import gather_rows

__all__ = ["gather_rows"]
