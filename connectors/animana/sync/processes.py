"""Practices synced in worker processes (`service.sync_all(..., processes=True)`).

Why processes: fetching, validating and mapping are Python and hold the GIL; in one process two practices take
turns on one core while PostgreSQL waits. Each worker process runs the ordinary `sync_practice` (its own
database engine, its own HTTP client and token, its own prefetch thread, so fetching the next pages overlaps
loading the current batch), one practice at a time; the parent only hands out practices, relays progress and
collects the results.

Crash safety is unchanged: every batch commits with its cursor in one transaction in the worker. A worker
must never outlive its parent (a rerun started after the parent was killed would sync the same practice next to
an orphan), so each worker asks the kernel for SIGKILL when its parent dies (Linux ``PR_SET_PDEATHSIG``).

Workers are started with ``spawn`` (no fork of a process holding threads, connections and locks).
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import pickle
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.animana.client import AnimanaClient
from connectors.animana.settings import AnimanaSettings
from connectors.animana.sync.links import LinkedPractice
from connectors.animana.sync.practice import PracticeResult, Progress, results_in_order, sync_practice
from connectors.animana.transport import RetryPolicy
from warehouse.kernel.db import make_engine

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

    from sqlalchemy import Engine

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Young collections once the tracked objects alive have grown by a million. The batches in flight (up to three of
# 20,000 records, ~35,000 rows each) stay below that, so the collector no longer walks each row before the loader is
# done with it; at 50,000 it did (~4 collections per medium practice, 0.5-1.0 us/record of the producer). This relies
# on the sync leaving no large object in a reference cycle: HTTP responses did (see `AnimanaClient._attempt`).
_STREAMING_GC_THRESHOLDS = (1_000_000, 20, 100)


@dataclass(frozen=True)
class _Setup:
    """What a worker needs to build its own engine and client (live objects do not cross processes)."""

    app_url: str
    settings: AnimanaSettings
    retry: RetryPolicy
    master_key: bytes
    parent_pid: int


@dataclass
class _Worker:
    engine: Engine
    client: AnimanaClient
    master_key: bytes
    progress: Queue[tuple[str, str, int] | None]


_worker: _Worker | None = None  # set in each worker process by `_start_worker`


@contextmanager
def streaming_gc() -> Iterator[None]:
    """For a process that streams records: the objects alive on entry (modules, schemas) move out of the
    collector's sight, and young collections run after a million net allocations instead of 700; both restored on
    exit. The records and rows are acyclic (reference counting frees them); with the defaults the collector kept
    re-walking every live object (page validation 3.7 -> 2.5 us/record, one medium practice)."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*_STREAMING_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@contextmanager
def _parent_main_hidden() -> Iterator[None]:
    """While workers are spawned, the parent's ``__main__`` shows neither a module name nor a file.

    A spawned process first re-runs the parent's ``__main__`` (multiprocessing's preparation step). Workers
    need nothing from it: what they run is imported by name. Re-running it cost each worker the whole CLI's
    import, and in a host whose ``__main__`` is some script (Streamlit's AppTest leaves a page script there)
    the workers ran that script and died before syncing anything."""
    main = sys.modules["__main__"]
    saved = {name: main.__dict__.pop(name) for name in ("__spec__", "__file__") if name in main.__dict__}
    main.__spec__ = None  # multiprocessing reads the attribute; absent would raise
    try:
        yield
    finally:
        del main.__spec__
        main.__dict__.update(saved)


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before the kernel was told
        os._exit(1)


def _start_worker(setup: _Setup, progress: Queue[tuple[str, str, int] | None]) -> None:
    global _worker
    _die_with_parent(setup.parent_pid)
    gc.freeze()  # for the worker's whole life: see `streaming_gc`
    gc.set_threshold(*_STREAMING_GC_THRESHOLDS)
    _worker = _Worker(
        make_engine(setup.app_url, pool_size=1, max_overflow=1),
        AnimanaClient(setup.settings, retry=setup.retry),
        setup.master_key,
        progress,
    )


def _sync_in_worker(practice: LinkedPractice, full: bool, resources: tuple[str, ...]) -> PracticeResult:
    worker = _worker
    if worker is None:
        raise RuntimeError("not in an Animana sync worker process")

    def progress(code: str, resource: str, records: int) -> None:
        worker.progress.put((code, resource, records))

    try:
        return sync_practice(
            worker.engine,
            worker.client,
            practice,
            master_key=worker.master_key,
            full=full,
            resources=resources,
            progress=progress,
        )
    except Exception as exc:
        raise _crossable(exc) from None


def _crossable(exc: Exception) -> Exception:
    """The error itself when it survives the trip to the parent (pickled), else its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any pickling failure: send the text instead
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def sync_in_processes(
    app_engine: Engine,
    client: AnimanaClient,
    practices: Sequence[LinkedPractice],
    *,
    master_key: bytes,
    full: bool,
    resources: tuple[str, ...],
    progress: Progress | None,
    workers: int,
) -> list[PracticeResult]:
    """`sync_all` with up to ``workers`` worker processes. The workers connect to ``app_engine``'s URL with the
    default engine options and build their own client from ``client``'s settings and retry policy. Results come
    in the order given; the first error is raised once the practices already started have finished, practices
    not yet started are skipped."""
    context = multiprocessing.get_context("spawn")
    updates: Queue[tuple[str, str, int] | None] = context.Queue()
    setup = _Setup(
        app_engine.url.render_as_string(hide_password=False),
        client.settings,
        client.retry,
        master_key,
        os.getpid(),
    )

    def relay() -> None:
        while (update := updates.get()) is not None:
            if progress is not None:
                progress(*update)

    relay_thread = threading.Thread(target=relay, name="animana-progress", daemon=True)
    relay_thread.start()
    try:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(practices)),
            mp_context=context,
            initializer=_start_worker,
            initargs=(setup, updates),
        ) as pool:
            with _parent_main_hidden():  # spawn starts the workers inside submit()
                futures = [pool.submit(_sync_in_worker, p, full, resources) for p in practices]
            return results_in_order(futures)
    finally:
        # The pool has joined its workers, so their progress is in the queue ahead of the end mark.
        updates.put(None)
        relay_thread.join()
        updates.close()
