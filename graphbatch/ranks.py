"""A loader's place among the ranks of ``torch.distributed``, and the few collectives
loaders make when they are built (never per batch).

Data-parallel training runs one loader per rank; with ``distributed=True`` each takes
its :class:`RankShare` of the epoch. The ranks must agree on what they split (the same
inputs, batch size, ...), or they would run different numbers of batches and the
first rank to finish would leave the others waiting in an all-reduce: :func:`agree`
checks that with one ``all_gather_object`` and raises the same error on every rank.
Work every rank needs but one suffices for (GraphSAINT's normalization, a METIS
partition) is done by rank 0 and broadcast (:func:`on_rank_zero`).

The collectives use the default process group, on whatever backend it has (gloo,
nccl: objects travel as pickled bytes; with nccl, call ``torch.cuda.set_device``
first, as for any object collective).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from graphbatch.sampling._rng import batch_key

T = TypeVar("T")


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group; raises where there is none."""
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "distributed=True needs torch.distributed initialized first "
            "(torch.distributed.init_process_group, as torchrun's scripts do)"
        )
    return dist.get_rank(), dist.get_world_size()


def leave(finished: bool = True) -> None:
    """Ends this process's part in ``torch.distributed``: a barrier, where this rank
    finished its work (a failing rank leaves at once; its peers then see the error),
    then the default group destroyed; errors from peers already gone are ignored.

    Without the barrier, a rank that destroys its group and exits while a peer still
    tears down its own can leave that peer stuck at exit, waiting in gloo (DDP
    training here: stuck in 4 runs of 7 without it, in none of 18 with it)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if finished:
            dist.barrier()
        dist.destroy_process_group()
    except Exception:  # noqa: BLE001 -- a peer may be gone already
        pass


def agree(what: str, values: dict[str, Any], group: Optional[dist.ProcessGroup] = None
          ) -> None:
    """Raises ``ValueError`` on every rank of ``group`` (default: the default group)
    unless all hold equal ``values``.

    The message names each value that differs and what every rank holds, so the
    user sees which rank was given what."""
    world()
    gathered: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, values, group=group)
    differ = [k for k in values if any(g[k] != values[k] for g in gathered)]
    if differ:
        per_rank = "; ".join(f"{k}: " + ", ".join(f"rank {r}: {g[k]!r}" for r, g in
                                                  enumerate(gathered)) for k in differ)
        raise ValueError(f"{what}: the ranks must agree, but {per_rank}")


def on_rank_zero(compute: Callable[[], T], group: Optional[dist.ProcessGroup] = None) -> T:
    """``compute()`` run by rank 0 only, its result sent to every rank of ``group``
    (default: the default group). An error on rank 0 (computing or pickling the
    result) reaches the others as a ``RuntimeError``: they would otherwise wait for a
    result that never comes."""
    rank, _ = world()
    box: list[Any] = [None]
    error: Optional[BaseException] = None
    if rank == 0:
        try:
            # Pickled here, so that an unpicklable result fails on rank 0 before the
            # broadcast rather than inside it, where the others would wait.
            box[0] = ("ok", pickle.dumps(compute()))
        except Exception as exc:  # noqa: BLE001 -- raised below, after the others learn
            box[0], error = ("error", f"{type(exc).__name__}: {exc}"), exc
    dist.broadcast_object_list(box, src=0, group=group)
    if error is not None:
        raise error
    status, value = box[0]
    if status == "error":
        raise RuntimeError(f"rank 0 failed, so this rank cannot go on: {value}")
    return pickle.loads(value)


def common_seed(generator: torch.Generator | None,
                group: Optional[dist.ProcessGroup] = None) -> int:
    """A 62-bit seed drawn from rank 0's ``generator`` (or torch's global one), the same
    on every rank of ``group``. Every rank draws, so that the generators advance alike."""
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    return on_rank_zero(lambda: seed, group)


def mix(a: int, b: int) -> int:
    """A 62-bit hash of two non-negative ints (the kernels' SplitMix64 batch key):
    seeds of epochs and ranks that share no structure, unlike ``seed + epoch``."""
    return batch_key(a, b) >> 1


@dataclass(frozen=True)
class RankShare:
    """Rank ``rank``'s share of every epoch among ``world_size`` ranks.

    An epoch's order of the ``n`` inputs is drawn from ``base_seed`` and the epoch
    number alone (so it is the same on every rank), then made a multiple of
    ``world_size`` long (repeating its head, as ``DistributedSampler``, or dropping its
    tail with ``drop_last``) and dealt out: rank ``r`` takes positions ``r, r + W, ...``.
    The shares are disjoint (but for the repeated head), equally long, so every rank
    runs the same number of batches, and batch ``b`` of all ranks together is
    ``order[b * B * W:(b + 1) * B * W]``: what one process with batch size ``B * W``
    would take.
    """

    rank: int
    world_size: int
    base_seed: int
    #: Deal the order out (False: each rank has its own inputs already, and only the
    #: epochs' seeds are drawn this way).
    deal: bool = True

    def generator(self, epoch: int) -> torch.Generator:
        """The generator of epoch ``epoch``'s order and seed (equal on every rank)."""
        return torch.Generator().manual_seed(mix(self.base_seed, epoch))

    def share_length(self, n: int, drop_last: bool) -> int:
        """How many of ``n`` inputs each rank takes."""
        if not self.deal:
            return n
        return n // self.world_size if drop_last else -(-n // self.world_size)

    def take(self, order: Tensor, drop_last: bool) -> Tensor:
        """This rank's share of ``order`` ([n] int64 positions)."""
        if not self.deal:
            return order
        n, w = order.numel(), self.world_size
        total = self.share_length(n, drop_last) * w
        if total > n:
            order = order.repeat(-(-total // n))
        return order[:total][self.rank::w]

    def rank_seed(self, epoch_seed: int) -> int:
        """This rank's batch seed in an epoch: ranks sample independently."""
        return mix(epoch_seed, self.rank)
