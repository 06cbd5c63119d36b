"""One run of the harness (dataset, sampler, model, seed) and the summary rows.

A run trains until ``epochs`` or until the validation metric has not improved for
``patience`` epochs, evaluates after every epoch, and reports the test metric at the
best validation epoch (model selection on validation only). Each epoch's time is split
into the loop's stages: waiting for the next batch, moving it to the device, and the
training step; the loader's own sampling and gathering seconds are summed apart (with
prefetch they overlap training). Evaluation is not part of the epoch's time.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from tqdm import tqdm

from graphbatch.graph import CSCGraph
from graphbatch.lazy import LazyGNN, normalized_adjacency
from graphbatch.loader.base import BatchLoader
from graphbatch.cli.harness.measure import PeakMemory, StageTimer, metric, sync
from graphbatch.cli.harness.models import build_model
from graphbatch.cli.harness.settings import DEFAULTS
from graphbatch.cli.harness.samplers import GRAPHBATCH, Source, build_source, loss_rows


@dataclass
class Dataset:
    """A loaded dataset: ``data`` with 1-D boolean masks, its topology and metric."""

    name: str
    data: Data
    graph: CSCGraph
    metric: str
    num_classes: int
    public_split: bool = False
    _normalized: Optional[tuple[Tensor, Tensor]] = field(default=None, repr=False)

    @classmethod
    def of(cls, name: str, data: Data, metric_name: str, public_split: bool = False) -> "Dataset":
        return cls(name, data, CSCGraph.from_data(data), metric_name, int(data.y.max()) + 1,
                   public_split)

    def normalized(self) -> tuple[Tensor, Tensor]:
        """``Â``'s ``(edge_index, edge_weight)`` over the whole graph (LazyGNN's
        evaluation), built once."""
        if self._normalized is None:
            self._normalized = normalized_adjacency(self.data.edge_index, self.data.num_nodes)
        return self._normalized


class Evaluator:
    """Validation and test metric of a model on the whole graph or, where the whole
    graph's messages would exceed ``eval_max_floats``, on neighbor-sampled batches of
    the evaluated nodes (``mode`` says which)."""

    def __init__(self, ds: Dataset, model_name: str, s: dict[str, Any],
                 device: torch.device) -> None:
        self.ds, self.device, self.lazy = ds, device, model_name == "lazygnn"
        data = ds.data
        width = s["hidden"] if model_name != "gat" else s["hidden"] * 2
        self.mode = ("full" if self.lazy or data.num_edges * width <= s["eval_max_floats"]
                     else "sampled")
        self.masks = (data.val_mask, data.test_mask)
        if self.mode == "full":
            edge_index, edge_weight = ds.normalized() if self.lazy else (data.edge_index, None)
            self.inputs = (data.x.to(device), edge_index.to(device),
                           None if edge_weight is None else edge_weight.to(device))
        else:
            import graphbatch

            nodes = (data.val_mask | data.test_mask).nonzero().view(-1)
            self.loader = graphbatch.NeighborLoader(
                data, num_neighbors=DEFAULTS["neighbor"]["fanouts"], input_nodes=nodes,
                batch_size=4096,
                graph=ds.graph)

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module) -> tuple[float, float]:
        model.eval()
        y = self.ds.data.y
        if self.mode == "full":
            logits = model(*self.inputs).cpu()
        else:
            logits = torch.empty(y.numel(), self.ds.num_classes)
            for batch in self.loader:
                out = model(batch.x.to(self.device), batch.edge_index.to(self.device))
                logits[batch.n_id[: batch.batch_size]] = out[: batch.batch_size].cpu()
        return tuple(metric(self.ds.metric, logits[m], y[m]) for m in self.masks)  # type: ignore[return-value]


def build(ds: Dataset, model_name: str, s: dict[str, Any], device: torch.device) -> torch.nn.Module:
    """The run's model on ``device``: LazyGNN for the ``lazy`` sampler, else
    ``model_name`` of :mod:`.models`."""
    data = ds.data
    if model_name == "lazygnn":
        return LazyGNN(data.num_features, s["hidden"], ds.num_classes, data.num_nodes,
                       num_layers=s["num_layers"],
                       batch_norm=(not ds.public_split if s["batch_norm"] == "auto"
                                   else s["batch_norm"] == "true"),
                       dropout=s["dropout"], steps=s["steps"],
                       alpha=s["alpha"], beta=s["beta"], gamma=s["gamma"],
                       eval_steps=s["eval_steps"], pin=device.type == "cuda").to(device)
    return build_model(model_name, data.num_features, ds.num_classes, s).to(device)


def _forward(model: torch.nn.Module, source: Source, batch: Data) -> Tensor:
    if source.kind == "lazy":
        return model(batch.x, batch.edge_index, batch.edge_weight, batch.n_id, batch.batch_size)
    weight = getattr(batch, "edge_norm", None) if getattr(model, "takes_edge_weight", False) else None
    return model(batch.x, batch.edge_index, weight)


def _epoch(model: torch.nn.Module, source: Source, opt: torch.optim.Optimizer,
           device: torch.device, timing: bool, bar: Callable) -> dict[str, float]:
    """One training epoch; returns its loss, seconds per stage, targets and edges."""
    model.train()
    t = {"wait_s": 0.0, "h2d_s": 0.0, "train_s": 0.0}
    losses, targets, edges = [], 0, 0
    clock = time.perf_counter
    start = clock()
    it = iter(source.loader)
    progress = bar(total=len(source.loader))
    while True:
        w0 = clock() if timing else 0.0
        try:
            batch = next(it)
        except StopIteration:
            break
        if timing:
            w1 = clock()
            t["wait_s"] += w1 - w0
        if batch.x.device != device:
            batch = batch.to(device, non_blocking=True)
            if timing:
                sync(device)
                w2 = clock()
                t["h2d_s"] += w2 - w1
                w1 = w2
        rows, weights = loss_rows(source, batch)
        opt.zero_grad()
        out = _forward(model, source, batch)
        if rows.numel():
            loss = F.cross_entropy(out[rows], batch.y[rows], reduction="none")
            loss = (loss * weights).sum() if weights is not None else loss.mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        targets += rows.numel()
        edges += batch.edge_index.size(1)
        if timing:
            sync(device)
            t["train_s"] += clock() - w1
        progress.update()
    progress.close()
    t["epoch_s"] = clock() - start
    return {"loss": statistics.mean(losses) if losses else float("nan"), **t,
            "targets": targets, "edges": edges}


def train_run(ds: Dataset, sampler: str, model_name: str, seed: int, s: dict[str, Any],
              device: torch.device, impl: str = GRAPHBATCH, timing: bool = True,
              quiet: bool = False) -> dict[str, Any]:
    """Trains and evaluates one model from ``seed``; returns the run's record (its
    settings, per-epoch curve, best epoch, metrics, throughput, memory)."""
    model_name = "lazygnn" if sampler == "lazy" else model_name
    torch.manual_seed(seed)
    with PeakMemory(device) as mem:
        source = build_source(sampler, ds.data, ds.graph, s, device, impl)
        timer: Optional[StageTimer] = None
        if timing and impl == GRAPHBATCH and isinstance(source.loader, BatchLoader):
            timer = StageTimer()
            timer.attach(source.loader)
        model = build(ds, model_name, s, device)
        opt = torch.optim.Adam(model.parameters(), lr=s["lr"], weight_decay=s["weight_decay"])
        evaluate = Evaluator(ds, model_name, s, device)
        curve: list[dict[str, Any]] = []
        best, best_epoch, elapsed = -math.inf, 0, 0.0
        label = f"{ds.name} {sampler} {model_name} seed {seed}"
        epochs = tqdm(range(1, s["epochs"] + 1), desc=label, disable=quiet, leave=False)
        for epoch in epochs:
            bar = lambda total: tqdm(total=total, desc=f"epoch {epoch}", disable=quiet,
                                     leave=False)
            e = _epoch(model, source, opt, device, timing, bar)
            if timer is not None:
                e.update({f"{k}_s": v for k, v in timer.take().items()})
            e0 = time.perf_counter()
            val, test = evaluate(model)
            elapsed += e["epoch_s"]
            curve.append({"epoch": epoch, **e, "eval_s": time.perf_counter() - e0,
                          "val": val, "test": test, "time_s": elapsed})
            epochs.set_postfix(loss=f"{e['loss']:.3f}", val=f"{val:.3f}")
            if val > best:
                best, best_epoch = val, epoch
            elif epoch - best_epoch >= s["patience"]:
                break
    return _record(ds, sampler, model_name, seed, s, impl, source, evaluate, curve,
                   best_epoch, mem)


def _record(ds: Dataset, sampler: str, model_name: str, seed: int, s: dict[str, Any],
            impl: str, source: Source, evaluate: Evaluator, curve: list[dict], best_epoch: int,
            mem: PeakMemory) -> dict[str, Any]:
    best = curve[best_epoch - 1] if best_epoch else curve[-1]
    reached = next(c for c in curve if c["val"] >= 0.99 * best["val"]) if best_epoch else best
    train_s = sum(c["epoch_s"] for c in curve)
    return {
        "dataset": ds.name, "sampler": sampler, "model": model_name, "impl": impl,
        "seed": seed, "metric": ds.metric, "settings": s, "eval": evaluate.mode,
        "prep_s": source.prep_s, "epochs_run": len(curve), "best_epoch": best["epoch"],
        "val": best["val"], "test": best["test"], "time_to_99_s": reached["time_s"],
        "train_time_s": train_s,
        "targets_per_s": sum(c["targets"] for c in curve) / train_s,
        "edges_per_s": sum(c["edges"] for c in curve) / train_s,
        "start_rss_mib": mem.start_mib, "peak_rss_mib": mem.peak_mib, "rss_scope": mem.scope,
        "cuda_peak_mib": mem.cuda_peak_mib, "curve": curve,
    }


#: Per-epoch means a summary row reports (seconds per epoch).
STAGES = ("epoch_s", "sample_s", "gather_s", "h2d_s", "train_s", "wait_s")


def _mean(values: list[Optional[float]]) -> Optional[float]:
    """The mean of the values measured (None: none was)."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.mean(present) if present else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary row of runs that differ only by seed: metrics as mean and standard
    deviation over seeds, per-epoch stage seconds, throughput, peak memory (the largest
    of the runs')."""
    first = runs[0]
    tests = [r["test"] for r in runs]
    row = {
        "dataset": first["dataset"], "sampler": first["sampler"], "model": first["model"],
        "impl": first["impl"], "metric": first["metric"], "seeds": len(runs),
        "test_mean": _mean(tests), "test_std": statistics.stdev(tests) if len(tests) > 1 else 0.0,
        "val_mean": _mean([r["val"] for r in runs]),
        "epochs_mean": _mean([r["epochs_run"] for r in runs]),
        "best_epoch_mean": _mean([r["best_epoch"] for r in runs]),
        "prep_s": _mean([r["prep_s"] for r in runs]),
    }
    for stage in STAGES:
        row[stage] = _mean([c.get(stage) for r in runs for c in r["curve"]])
    row.update({
        "targets_per_s": _mean([r["targets_per_s"] for r in runs]),
        "edges_per_s": _mean([r["edges_per_s"] for r in runs]),
        "time_to_99_s": _mean([r["time_to_99_s"] for r in runs]),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "cuda_peak_mib": (max(r["cuda_peak_mib"] for r in runs)
                          if first["cuda_peak_mib"] is not None else None),
        "eval": first["eval"],
    })
    return row
