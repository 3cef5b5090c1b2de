"""What the demo runs beside the app: a loop on a daemon thread for as long as the app is up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self


class BackgroundLoop:
    """A loop (`run`, which returns once ``_stop`` is set) that `in_background` runs on a daemon thread named
    ``thread_name`` and stops, waiting up to a minute for the round in hand, when its block ends."""

    thread_name = "demo-loop"

    def __init__(self) -> None:
        self._stop = threading.Event()

    def run(self) -> None:
        raise NotImplementedError

    @contextmanager
    def in_background(self) -> Iterator[Self]:
        thread = threading.Thread(target=self.run, daemon=True, name=self.thread_name)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=60)
