"""Which inputs go into which batch, and the seed that fixes each batch's randomness."""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Optional

import torch
from torch import Tensor

from graphbatch import ranks
from graphbatch._validate import as_index_tensor, check_positive_int
from graphbatch.cache import digest
from graphbatch.sampling.plan import BatchPlan


class SeededBatches:
    """Yields a :class:`~graphbatch.sampling.plan.BatchPlan` per batch, for a DataLoader
    sampler.

    Everything random (the order, the epoch seed) is drawn by :meth:`new_epoch`, which
    the loader calls in the main process when an epoch starts; batch ``b`` of an epoch
    is then sampled from ``(epoch_seed, b)`` alone, in whichever worker or thread.
    ``__iter__`` draws nothing: a multi-worker DataLoader calls it twice per epoch.

    Args:
        num_inputs: number of inputs; positions are ``0 .. num_inputs - 1``.
        batch_size: inputs per batch.
        shuffle: draw a random order each epoch.
        drop_last: drop the last batch if it is smaller than ``batch_size``.
        generator: torch generator for the order and the seed; the global one if None.
        sampler: an iterable of positions (ints in ``[0, num_inputs)``) that replaces
            the default order; checked each epoch, as it may yield others each time.
        inputs: ``[num_inputs]`` the inputs the plans' ``items`` are taken from (None:
            the positions themselves).
        distributed: take this rank's share of each epoch
            (:class:`~graphbatch.ranks.RankShare`) under ``torch.distributed``, which
            must be initialized. Every rank must make its loader with the same inputs
            and batch arguments (checked here, with one collective). Epochs are then
            drawn from one seed, drawn from rank 0's generator, and the epoch number
            (which :meth:`set_epoch` may set, as for ``DistributedSampler``).
        share: a :class:`~graphbatch.ranks.RankShare` made by the caller (instead of
            ``distributed``), for inputs the caller split among the ranks itself.
    """

    def __init__(
        self,
        num_inputs: int,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: Optional[torch.Generator] = None,
        sampler: Optional[Iterable[int]] = None,
        inputs: Optional[Tensor] = None,
        distributed: bool = False,
        share: Optional[ranks.RankShare] = None,
    ) -> None:
        self.num_inputs = num_inputs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self.sampler = sampler
        self.inputs = inputs
        self._epoch: Optional[list[BatchPlan]] = None
        self.epoch = 0
        self.share = share
        if distributed:
            self.share = self._rank_share()

    def __getstate__(self) -> dict:
        # See BatchLoader.__getstate__: workers never draw.
        return {**self.__dict__, "generator": None}

    def _rank_share(self) -> ranks.RankShare:
        if self.sampler is not None:
            raise ValueError("distributed=True deals the inputs out to the ranks itself; "
                             "it cannot take a sampler too")
        rank, world_size = ranks.world()
        inputs = (torch.arange(0) if self.inputs is None else self.inputs).numpy()
        ranks.agree("distributed loader", {
            "num_inputs": self.num_inputs, "inputs": digest(inputs),
            "batch_size": self.batch_size, "shuffle": self.shuffle,
            "drop_last": self.drop_last})
        return ranks.RankShare(rank, world_size, ranks.common_seed(self.generator))

    @classmethod
    def from_loader_args(cls, num_inputs: int, kwargs: dict[str, Any],
                         inputs: Optional[Tensor] = None) -> "SeededBatches":
        """The plan of a loader taking PyG's ``batch_size``, ``shuffle``, ``drop_last``
        and ``sampler`` (removed from the DataLoader arguments ``kwargs``) and
        ``generator`` (left there)."""
        return cls(num_inputs, check_positive_int(kwargs.pop("batch_size", 1), "batch_size"),
                   bool(kwargs.pop("shuffle", False)), bool(kwargs.pop("drop_last", False)),
                   kwargs.get("generator"), kwargs.pop("sampler", None), inputs,
                   bool(kwargs.pop("distributed", False)))

    def _order(self, generator: Optional[torch.Generator]) -> Tensor:
        if self.sampler is not None:
            return self._sampled_positions()
        if self.shuffle:
            return torch.randperm(self.num_inputs, generator=generator)
        return torch.arange(self.num_inputs)

    def _sampled_positions(self) -> Tensor:
        """This epoch's positions from ``sampler``, checked: a sampler may yield other
        positions each epoch, and -1 would silently wrap to the last input."""
        positions = as_index_tensor(list(self.sampler), "sampler")
        if positions.numel():
            lo, hi = int(positions.min()), int(positions.max())
            if lo < 0 or hi >= self.num_inputs:
                raise ValueError(
                    f"sampler yielded position {lo if lo < 0 else hi}, out of range for "
                    f"{self.num_inputs} inputs (positions are 0 .. {self.num_inputs - 1})"
                )
        return positions

    def set_epoch(self, epoch: int) -> None:
        """Makes the next epoch epoch number ``epoch`` (epochs count from 0). Only
        ``distributed`` epochs are numbered; others draw from the generator."""
        self.epoch = epoch

    def new_epoch(self) -> None:
        """Draws the next epoch's order and seed from the generator (or, distributed,
        from the common seed and the epoch number), this rank's share of them."""
        generator = self.generator if self.share is None else self.share.generator(self.epoch)
        order = self._order(generator)
        epoch_seed = int(torch.randint(0, 2**62, (), generator=generator))
        if self.share is not None:
            order = self.share.take(order, self.drop_last)
            epoch_seed = self.share.rank_seed(epoch_seed)
            self.epoch += 1
        chunks = list(torch.split(order, self.batch_size))
        if self.drop_last and chunks and chunks[-1].numel() < self.batch_size:
            chunks.pop()
        self._epoch = [BatchPlan(epoch_seed, b, c, c if self.inputs is None else self.inputs[c])
                       for b, c in enumerate(chunks)]

    def __iter__(self) -> Iterator[BatchPlan]:
        if self._epoch is None:
            self.new_epoch()
        return iter(self._epoch)

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else self.num_inputs  # type: ignore[arg-type]
        if self.share is not None:
            n = self.share.share_length(n, self.drop_last)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class ItemDataset(torch.utils.data.Dataset):
    """Hands each plan to ``collate_fn`` unchanged.

    Its length is what PyG's loader datasets give (``range(len(input_nodes))``, the
    clusters, the steps), which PyG's examples use for progress bars.
    """

    def __init__(self, length: int) -> None:
        self.length = length

    def __getitem__(self, item):
        return item

    def __len__(self) -> int:
        return self.length
