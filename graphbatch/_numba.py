"""numba's threading layer, chosen in one place before any parallel kernel runs.

The default layer (GNU OpenMP) kills forked DataLoader workers once the parent has
run a parallel kernel; ``workqueue`` aborts when two Python threads launch kernels at
once (a prefetch thread beside the training loop). TBB is safe for both, so it is
preferred. The ``tbb`` wheel ships ``libtbb.so.12`` in ``<prefix>/lib``, which the
dynamic loader does not search; loading it by path with ``RTLD_GLOBAL`` first lets
numba's TBB pool resolve it.

The pool is started at import, so that the thread that forks DataLoader workers (the
main thread) is the one TBB knows how to fork from.

Where TBB cannot be loaded, OpenMP is used and :data:`FORK_SAFE` is False: loaders
then start their workers with the ``forkserver`` context instead of ``fork``.
``GRAPHBATCH_THREADING_LAYER`` overrides the choice (``tbb``, ``omp`` or ``workqueue``).
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys

import numba


def _preload_tbb() -> bool:
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        for path in sorted(glob.glob(os.path.join(prefix, "lib", "libtbb.so.12*"))):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                continue
            try:
                from numba.np.ufunc import tbbpool  # noqa: F401
            except ImportError:
                return False
            return True
    return False


def _choose_layer() -> str:
    wanted = os.environ.get("GRAPHBATCH_THREADING_LAYER", "").strip().lower()
    if wanted and wanted not in ("tbb", "omp", "workqueue"):
        raise ValueError(
            f"GRAPHBATCH_THREADING_LAYER must be 'tbb', 'omp' or 'workqueue', got {wanted!r}"
        )
    if wanted in ("", "tbb") and _preload_tbb():
        return "tbb"
    if wanted == "tbb":
        raise ImportError(
            "GRAPHBATCH_THREADING_LAYER=tbb but libtbb.so.12 could not be loaded; "
            "install the 'tbb' package"
        )
    return wanted or "omp"


THREADING_LAYER: str = _choose_layer()
numba.config.THREADING_LAYER = THREADING_LAYER
# Starts the pool now, in the importing (main) thread. TBB stops its pool before a
# fork and restarts it after only when the forking thread is the one that started it;
# left to the first kernel, that is often a prefetch thread, and every later epoch's
# worker fork from the main thread warned that TBB may be broken in the child.
numba.get_num_threads()
#: Whether forked DataLoader workers may run parallel kernels after the parent has.
FORK_SAFE: bool = THREADING_LAYER == "tbb"
