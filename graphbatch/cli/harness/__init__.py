"""The training harness behind ``graphbatch bench``: every sampler and model on every
dataset, trained on the dataset's standard split with model selection on validation,
timed per stage, with peak memory per run.

* :mod:`.settings`: each sampler's defaults (from the papers) and ``--set`` overrides.
* :mod:`.models`: the models (standard PyG layers) and how a batch feeds them.
* :mod:`.samplers`: one training source per sampler (loader, loss targets, weights).
* :mod:`.measure`: stage timing, peak host and device memory, metrics.
* :mod:`.train`: one run (dataset, sampler, model, seed) and the summary rows.
* :mod:`.pyg`: PyG's own loaders as reference rows (``--compare pyg``).
"""
