"""The OpenMP limit holds in every thread that fits or predicts, not only the first one."""

from __future__ import annotations

import threading

from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

from models.runtime import limit_model_threads, model_threads


def test_every_thread_gets_the_limit() -> None:
    limit_model_threads()
    seen: list[int] = []

    def work() -> None:
        limit_model_threads()
        seen.append(_openmp_effective_n_threads())

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    # OpenMP keeps the setting per calling thread: a process-wide "once" left later threads on every core.
    assert seen == [model_threads()]
