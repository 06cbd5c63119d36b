"""What a run measures besides its model: stage times, peak memory, the metric."""
from __future__ import annotations

import re
import threading
import time
from typing import Any, Callable, Optional

import torch
from torch import Tensor

from graphbatch.loader.base import BatchLoader


def sync(device: torch.device) -> None:
    """Waits for ``device``'s queued work (CUDA runs asynchronously), so a clock read
    after it covers the work; nothing to wait for on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StageTimer:
    """Seconds a loader spends sampling and gathering, summed over its threads.

    With prefetch these run in background threads beside training, so they add up to
    more than the loop waited: the loop's own wait is timed apart. Wraps the loader's
    ``sample_ids`` and ``filter_fn`` on the instance (a few hundred nanoseconds a batch);
    sampling done in DataLoader worker processes is not seen.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = {"sample": 0.0, "gather": 0.0}

    def attach(self, loader: BatchLoader) -> None:
        loader.sample_ids = self._timed(loader.sample_ids, "sample")  # type: ignore[method-assign]
        loader.filter_fn = self._timed(loader.filter_fn, "gather")  # type: ignore[method-assign]

    def _timed(self, fn: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                with self._lock:
                    self.seconds[stage] += elapsed
        return timed

    def take(self) -> dict[str, float]:
        """The seconds since the last call, per stage."""
        with self._lock:
            out, self.seconds = self.seconds, {"sample": 0.0, "gather": 0.0}
        return out


_STATUS = "/proc/self/status"


def proc_kib(field: str, path: str = _STATUS) -> Optional[int]:
    """Field ``field`` (kB) of a ``/proc/self`` file of ``Field:  123 kB`` lines
    (``status``, ``smaps_rollup``), or None where it cannot be read."""
    try:
        with open(path) as f:
            match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS mark of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak host RSS of what runs inside the ``with`` block alone (not the process's
    lifetime maximum: the kernel's mark is reset on entry), and on CUDA the peak of
    ``torch.cuda.memory_allocated``.

    Attributes after exit: ``start_mib`` (RSS on entry), ``peak_mib`` (peak RSS during
    the block, the memory the process held at its worst, data included), ``scope``
    (``"run"``, or ``"process"`` where the mark could not be reset and the peak is the
    process's), ``cuda_peak_mib`` (None without CUDA).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> "PeakMemory":
        self.scope = "run" if _reset_peak_rss() else "process"
        self.start_mib = (proc_kib("VmRSS") or 0) / 1024
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.peak_mib = (proc_kib("VmHWM") or 0) / 1024
        self.cuda_peak_mib = (torch.cuda.max_memory_allocated(self.device) / 2**20
                              if self.device.type == "cuda" else None)


def accuracy(logits: Tensor, y: Tensor) -> float:
    """Share of rows of ``logits`` [n, C] whose argmax is ``y`` [n]."""
    return float((logits.argmax(-1) == y).float().mean()) if y.numel() else float("nan")


def roc_auc(scores: Tensor, y: Tensor) -> float:
    """Area under the ROC curve of ``scores`` [n] float for binary labels ``y`` [n]
    (the Mann-Whitney statistic, ties counted half); NaN when one class is absent."""
    y = y.bool()
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores, dtype=torch.float64)
    ranks[order] = torch.arange(1, scores.numel() + 1, dtype=torch.float64)
    # Tied scores share the mean of their ranks.
    _, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True,
                                                  return_counts=True)
    first = torch.cumsum(counts, 0) - counts + 1
    mean_rank = (first + (counts - 1) / 2).double()
    ranks[order] = mean_rank[inverse]
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def metric(name: str, logits: Tensor, y: Tensor) -> float:
    """The dataset's metric (``"accuracy"`` or ``"roc_auc"``, on the probability of
    class 1) of ``logits`` [n, C] against ``y`` [n]."""
    if name == "roc_auc":
        return roc_auc(torch.softmax(logits.float(), -1)[:, 1], y)
    return accuracy(logits, y)
