"""Thread control for scikit-learn's OpenMP code.

HistGradientBoosting parallelises with OpenMP. On a shared machine (the app, Dagster runs and other jobs on a
few cores) OpenMP's spinning workers make it many times *slower* than one thread: measured on a loaded 2-core
box, training 75 s with 2 threads against 3.3 s with 1, and predicting one context 1.6 s (p95) against 1 ms.
So the process's OpenMP pool is set once to ``VETCONNECT_MODEL_THREADS`` (default 1) before the first fit or
prediction. Setting it per call (a ``threadpool_limits`` context) would cost ~8 ms of library introspection
each time, more than the prediction itself.
"""

from __future__ import annotations

import os
from functools import cache

from threadpoolctl import threadpool_limits


def model_threads() -> int:
    try:
        return max(1, int(os.environ.get("VETCONNECT_MODEL_THREADS", "1")))
    except ValueError:
        return 1


@cache
def limit_model_threads() -> int:
    """Idempotent: the first call sets the process's OpenMP pool size; later calls are free."""
    threads = model_threads()
    threadpool_limits(limits=threads, user_api="openmp")
    return threads
