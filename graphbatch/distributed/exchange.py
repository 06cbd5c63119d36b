"""Variable-size all-to-all exchanges between the ranks holding a partitioned graph.

Sampling across partitions and fetching remote feature rows are both "send each rank
the ids it owns, get back what it computed for them". They run on
``torch.distributed`` collectives, not on ``torch.distributed.rpc``:

- a hop of every rank's sampling is one bulk-synchronous step anyway (every rank's
  frontier must be known before the next hop), so a collective moves all of it in one
  round trip, where RPC would need a request per (requester, owner) pair and a thread
  pool on every owner serving them concurrently with its own sampling;
- collectives fail loudly: gloo raises as soon as a peer's connection closes (a
  killed rank), and the group's timeout bounds every other wait (a rank that stopped
  calling), so no rank can wait forever. RPC's agent adds its own threads, timeouts
  and shutdown protocol (``rpc.shutdown`` is itself a barrier) to get that right.
- they need nothing beyond the process group the training script already starts.

The price is lockstep: every rank must issue the same collectives in the same order,
so every rank runs the same number of batches and hops, from one thread each (the
loader checks and enforces this; see
:mod:`graphbatch.distributed.partitioned_loader`).

The exchanges run on a dedicated gloo group (:func:`data_group`), never on the
default one: DDP's all-reduces, issued from the training loop while a prefetch thread
samples, would otherwise interleave with them in an order that differs between ranks.
It is gloo whatever the default backend (nccl included), as the ids and feature rows
live in host memory.

A variable-size exchange is two ``all_to_all_single`` calls: the per-destination
counts first (one ``[world_size, k]`` int64 tensor), then the payload with those
split sizes.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor


class ExchangeError(RuntimeError):
    """A collective of the partitioned sampler or feature fetch failed: a peer rank died,
    raised, or stopped calling collectives for longer than the group's timeout."""


def default_timeout() -> timedelta:
    """The default process group's timeout where it can be read (its gloo backend),
    else torch's default; a data group made without a timeout gets it, so that it
    fails as soon as the user's own collectives would."""
    try:
        backend = dist.distributed_c10d._get_default_group()._get_backend(torch.device("cpu"))
        return backend.options._timeout
    except (AttributeError, RuntimeError):
        # An nccl-only default group has no CPU backend to read it from.
        return dist.distributed_c10d._get_default_timeout("gloo")


def data_group(timeout: Optional[timedelta] = None) -> dist.ProcessGroup:
    """A new gloo group of every rank, for the exchanges (see the module docstring).

    A collective: every rank of the default group must call it, in the same order
    relative to its other ``new_group`` calls.

    Args:
        timeout: how long a collective of the group may wait for the other ranks
            (default: :func:`default_timeout`).
    """
    if not dist.is_initialized():
        raise RuntimeError("torch.distributed is not initialized; call "
                           "torch.distributed.init_process_group first")
    if timeout is not None and not isinstance(timeout, timedelta):
        raise TypeError(f"timeout must be a datetime.timedelta, got {type(timeout).__name__}")
    return dist.new_group(backend="gloo", timeout=timeout or default_timeout())


class Exchange:
    """All-to-all exchanges on one process group, from one thread at a time.

    Once a step of this rank failed (:meth:`guard`), every later exchange raises at
    once instead of calling a collective: the ranks no longer agree on which
    collective comes next, and a rank going on would wait on its peers until the
    timeout, or match the wrong one.

    Args:
        group: the group (default: a new :func:`data_group`, made here, which makes
            this constructor a collective).
    """

    def __init__(self, group: Optional[dist.ProcessGroup] = None) -> None:
        self.group = data_group() if group is None else group
        self.rank = dist.get_rank(self.group)
        self.world_size = dist.get_world_size(self.group)
        self.failure: Optional[BaseException] = None

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Runs one step of collectives (a batch); an exception in it stops the
        exchanges for good (see the class docstring)."""
        try:
            yield
        except BaseException as exc:
            if self.failure is None:
                self.failure = exc
            raise

    def counts(self, send: np.ndarray, what: str) -> np.ndarray:
        """Exchanges one row per peer: ``send`` ([world_size, k] int64, row ``d`` for
        rank ``d``) -> ``[world_size, k]`` int64, row ``s`` from rank ``s``. ``what``
        names the step in errors."""
        out = torch.empty(send.shape, dtype=torch.int64)
        self._all_to_all(out, torch.from_numpy(np.ascontiguousarray(send)), None, None, what)
        return out.numpy()

    def rows(self, send: Tensor, send_counts: np.ndarray, recv_counts: np.ndarray,
             what: str) -> Tensor:
        """Exchanges rows: ``send`` ([n, ...] any dtype, contiguous) holds
        ``send_counts[d]`` rows for rank ``d``, in rank order; returns ``[sum(recv_counts),
        ...]`` of the same dtype, ``recv_counts[s]`` rows from rank ``s`` in rank order.
        Both count vectors ([world_size] int64) must agree with the peers' (from
        :meth:`counts`, or known to both sides)."""
        out = torch.empty((int(recv_counts.sum()), *send.shape[1:]), dtype=send.dtype)
        self._all_to_all(out, send.contiguous(), recv_counts.tolist(), send_counts.tolist(),
                         what)
        return out

    def _all_to_all(self, out: Tensor, send: Tensor, recv_splits: Optional[list[int]],
                    send_splits: Optional[list[int]], what: str) -> None:
        if self.failure is not None:
            raise ExchangeError(
                f"rank {self.rank}: no exchange of {what}: an earlier step failed on this "
                f"rank ({type(self.failure).__name__}: {self.failure}), after which the "
                "ranks are out of lockstep") from self.failure
        try:
            dist.all_to_all_single(out, send, recv_splits, send_splits, group=self.group)
        except RuntimeError as exc:  # gloo: peer closed, or the group's timeout
            self.failure = ExchangeError(
                f"rank {self.rank} of {self.world_size}: the exchange of {what} failed; "
                f"a peer rank died, raised an error or fell out of lockstep: {exc}")
            raise self.failure from exc
