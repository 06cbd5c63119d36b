"""Each sampler's and model's defaults, and the ``--set key=value`` overrides.

The defaults follow the papers, scaled to the graph where a paper's setting was made
for one size (the catalog runs from 131 to 2.4M nodes):

* ``neighbor``: GraphSAGE's fanouts [25, 10] and batches of 512 seeds (Hamilton et al.,
  2017).
* ``saint-*``: GraphSAINT's budgets on Flickr (Zeng et al., 2020; its Table 8: 8000
  nodes, 4000 edges, 3000 walk roots of length 2), each at most a fixed share of the
  graph so a small graph still gets several subgraphs per epoch, and an epoch of
  ``N / subgraph size`` subgraphs (the paper's epoch: every node about once).
  Normalization pre-samples until nodes are covered 50 times on average.
* ``cluster``: Cluster-GCN on Reddit (Chiang et al., 2019): about 155 nodes per METIS
  part (1500 parts on 233k nodes) and 20 clusters per batch, at most a quarter of the
  parts, so an epoch has at least 4 batches.
* ``lazy``: LazyGNN (Xue et al., 2023) with its constructor's defaults, trained on
  batches of whole clusters (the ``cluster`` partition) with their complete halo.

Every value is overridable per run with ``--set key=value`` (all samplers that have the
key) or ``--set sampler.key=value`` (one sampler). Values of 0 for ``num_steps`` and
``num_parts`` mean "scale to the graph" as above.
"""
from __future__ import annotations

import inspect
import math
from typing import Any

from graphbatch.lazy import LazyGNN

SAMPLERS = ("full", "neighbor", "saint-node", "saint-edge", "saint-rw", "cluster", "lazy")

#: Shared by every sampler: the model and the training loop.
COMMON: dict[str, Any] = {
    "hidden": 128,
    "dropout": 0.5,
    "lr": 0.01,
    "weight_decay": 5e-4,
    "heads": 8,  # GAT
    "K": 10,  # APPNP
    "alpha": 0.1,  # APPNP
    "epochs": 50,
    "patience": 10,  # epochs without a better validation metric before stopping
    # Evaluation runs the model on the whole graph (as the GraphSAINT and Cluster-GCN
    # papers do) when its messages fit in this many floats, else on neighbor-sampled
    # batches of the evaluated nodes.
    "eval_max_floats": 1 << 28,
}


def _lazy_defaults() -> dict[str, Any]:
    """LazyGNN's constructor defaults, so the harness runs the model a user gets."""
    params = inspect.signature(LazyGNN.__init__).parameters
    out = {k: params[k].default for k in ("num_layers", "steps", "alpha", "beta", "gamma",
                                          "eval_steps")}
    # The MLP's BatchNorm keeps the stored state from going stale as the MLP's output
    # drifts in scale, but costs accuracy where training sets are tiny (Cora's public
    # split, 3 seeds: 77.4 ± 2.3 with it, 79.9 ± 1.6 without): "auto" turns it off on
    # public splits, as ``graphbatch bench lazy`` does.
    out["batch_norm"] = "auto"
    return out


#: Per sampler, on top of :data:`COMMON` (whose values a sampler may replace).
DEFAULTS: dict[str, dict[str, Any]] = {
    # One step per epoch: more epochs, more patience.
    "full": {"epochs": 200, "patience": 30},
    "neighbor": {"batch_size": 512, "fanouts": [25, 10]},
    "saint-node": {"batch_size": 8000, "max_share": 0.25, "num_steps": 0,
                   "sample_coverage": 50},
    "saint-edge": {"batch_size": 4000, "max_share": 0.125, "num_steps": 0,
                   "sample_coverage": 50},
    "saint-rw": {"batch_size": 3000, "walk_length": 2, "max_share": 0.1, "num_steps": 0,
                 "sample_coverage": 50},
    "cluster": {"nodes_per_part": 155, "num_parts": 0, "batch_size": 20},
    "lazy": {"nodes_per_part": 155, "num_parts": 0, "batch_size": 20, "epochs": 100,
             "patience": 20, **_lazy_defaults()},
}


def defaults(sampler: str) -> dict[str, Any]:
    """``sampler``'s settings before overrides."""
    return {**COMMON, **DEFAULTS[sampler]}


def _parse_value(key: str, text: str, default: Any) -> Any:
    """``text`` as the type of ``default``: ints, floats, comma-separated int lists."""
    try:
        if default == "auto":
            if text.lower() not in ("auto", "true", "false"):
                raise ValueError
            return text.lower()
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, list):
            return [int(v) for v in text.split(",")]
    except ValueError:
        kind = ("comma-separated ints" if isinstance(default, list) else
                "auto, true or false" if default == "auto" else type(default).__name__)
        raise ValueError(f"--set {key}={text}: expected {kind}") from None
    return text


def parse_overrides(items: list[str], samplers: list[str]) -> dict[str, dict[str, Any]]:
    """``--set`` items (``key=value`` or ``sampler.key=value``) as overrides per sampler
    of ``samplers``. Raises ValueError naming an item with an unknown key or sampler, or
    a value of the wrong type."""
    out: dict[str, dict[str, Any]] = {s: {} for s in samplers}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value or sampler.key=value, got {item!r}")
        scope, dot, name = key.rpartition(".")
        if dot and scope not in SAMPLERS:
            raise ValueError(f"--set {item}: no sampler {scope!r} (samplers: {list(SAMPLERS)})")
        targets = [scope] if dot else list(SAMPLERS)
        known = [s for s in targets if name in defaults(s)]
        if not known:
            keys = sorted({k for s in targets for k in defaults(s)})
            raise ValueError(f"--set {item}: unknown key {name!r}; known keys: {keys}")
        for s in known:
            if s in out:
                out[s][name] = _parse_value(key, text, defaults(s)[name])
    return out


def resolve(sampler: str, overrides: dict[str, Any], num_nodes: int) -> dict[str, Any]:
    """``sampler``'s settings for a graph of ``num_nodes`` nodes: defaults, then
    ``overrides``, then the graph-scaled values (budgets, steps, parts) made concrete."""
    s = {**defaults(sampler), **overrides}
    if sampler.startswith("saint-"):
        # Nodes per unit of budget: a walk visits walk_length + 1, an edge joins two.
        per_unit = {"saint-node": 1, "saint-edge": 2,
                    "saint-rw": s.get("walk_length", 0) + 1}[sampler]
        if "batch_size" not in overrides:
            s["batch_size"] = max(1, min(s["batch_size"],
                                         int(s["max_share"] * num_nodes / per_unit)))
        if s["num_steps"] == 0:
            s["num_steps"] = max(1, math.ceil(num_nodes / (s["batch_size"] * per_unit)))
    if sampler in ("cluster", "lazy"):
        if s["num_parts"] == 0:
            s["num_parts"] = max(2, math.ceil(num_nodes / s["nodes_per_part"]))
        if "batch_size" not in overrides:
            s["batch_size"] = max(1, min(s["batch_size"], s["num_parts"] // 4))
    return s
