"""Thread control for scikit-learn's OpenMP code.

HistGradientBoosting parallelises with OpenMP. On a shared machine (the app, Dagster runs and other jobs on a
few cores) OpenMP's spinning workers make it many times *slower* than one thread: measured on a loaded 2-core
box, training 75 s with 2 threads against 3.3 s with 1, and predicting one context 1.6 s (p95) against 1 ms.
So the OpenMP pool is set to ``VETCONNECT_MODEL_THREADS`` (default 1) before the first fit or prediction of
each thread: OpenMP keeps the setting per calling thread (a thread started later, e.g. a Streamlit script
thread or a training worker, starts again from one OpenMP thread per core). Setting it per call (a
``threadpool_limits`` context) would cost ~8 ms of library introspection each time, more than the prediction
itself; once per thread costs that once.
"""

from __future__ import annotations

import os
import threading

from threadpoolctl import threadpool_limits


def model_threads() -> int:
    try:
        return max(1, int(os.environ.get("VETCONNECT_MODEL_THREADS", "1")))
    except ValueError:
        return 1


_limited = threading.local()


def limit_model_threads() -> int:
    """Idempotent per thread: the thread's first call sets its OpenMP pool size; later calls are free."""
    threads = getattr(_limited, "threads", None)
    if threads is None:
        threads = model_threads()
        threadpool_limits(limits=threads, user_api="openmp")
        _limited.threads = threads
    return threads
