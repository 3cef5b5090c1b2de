"""Fixtures for the Animana tests: a real simulator over HTTP and clients with a fast retry policy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.animana import AnimanaClient
from connectors.animana.simulator import RunningSimulator, running_simulator
from tests.connectors.animana.animana_support import SECRET, make_client


@pytest.fixture(scope="session")
def sim() -> Iterator[RunningSimulator]:
    """Shared, fault-free simulator. Tests that change data use practice 1004 or their own simulator."""
    with running_simulator(seed=7, practices=4, client_secret=SECRET) as running:
        yield running


@pytest.fixture
def client(sim: RunningSimulator) -> Iterator[AnimanaClient]:
    with make_client(sim) as c:
        yield c


@pytest.fixture
def new_sim() -> Iterator[Callable[..., RunningSimulator]]:
    """Start dedicated simulators (faults, config changes); all are stopped when the test ends."""
    started: list[Any] = []

    def start(**overrides: Any) -> RunningSimulator:
        overrides.setdefault("client_secret", SECRET)
        manager = running_simulator(**overrides)
        started.append(manager)
        return manager.__enter__()

    yield start
    for manager in reversed(started):
        manager.__exit__(None, None, None)
