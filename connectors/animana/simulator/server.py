"""Run the simulator with uvicorn: in the foreground (CLI) or in a background thread (tests, notebooks)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from .app import Simulator, SimulatorConfig, create_app


@dataclass(frozen=True)
class RunningSimulator:
    base_url: str
    client_id: str
    client_secret: str
    simulator: Simulator  # the live state, for assertions (stats, cache); change config through `configure`

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change runtime settings (faults, rate_limit, token_ttl, ...) over HTTP, like an operator would."""
        response = httpx.post(f"{self.base_url}/_sim/config", json=settings, timeout=10)
        response.raise_for_status()
        return response.json()

    def mutate(
        self,
        practice: int,
        *,
        edits: int = 0,
        cancellations: int = 0,
        deletions: int = 0,
        seed: int = 0,
        shift_changes: int = 0,
        reminder_changes: int = 0,
    ) -> dict[str, Any]:
        """Change records as a practice would between syncs; `shift_changes` and `reminder_changes` draw from
        their own stream, so adding them leaves what the other counts change as it was."""
        response = httpx.post(
            f"{self.base_url}/_sim/mutate",
            timeout=60,
            json={
                "practice": practice,
                "edits": edits,
                "cancellations": cancellations,
                "deletions": deletions,
                "seed": seed,
                "shift_changes": shift_changes,
                "reminder_changes": reminder_changes,
            },
        )
        response.raise_for_status()
        return response.json()

    def inject(self, practice: int, resource: str, records: list[Any]) -> dict[str, Any]:
        """Append raw payloads; returns {"ids": [...], "high_water_before": ts} (stream after that ts)."""
        response = httpx.post(
            f"{self.base_url}/_sim/inject",
            timeout=30,
            json={"practice": practice, "resource": resource, "records": records},
        )
        response.raise_for_status()
        return response.json()

    def edit(self, practice: int, resource: str, record_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Edit a record as an Animana user would (a new version); returns the record as it now is."""
        response = httpx.post(
            f"{self.base_url}/_sim/edit",
            timeout=30,
            json={"practice": practice, "resource": resource, "id": record_id, "fields": fields},
        )
        response.raise_for_status()
        return response.json()

    def edits(self, practice: int) -> list[dict[str, Any]]:
        """The Animana-side edits made so far (`edit` and the concurrent editor), oldest first."""
        response = httpx.get(f"{self.base_url}/_sim/edits", params={"practice": practice}, timeout=30)
        response.raise_for_status()
        return list(response.json()["edits"])

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.base_url}/_sim/stats", timeout=10).json()


@contextlib.contextmanager
def running_simulator(
    config: SimulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    **overrides: Any,
) -> Iterator[RunningSimulator]:
    """Serve the simulator on a free port (or `port`) in a daemon thread; stop it on exit.

    ``running_simulator(seed=7, practices=2, faults=0.2)`` builds a `SimulatorConfig` from keywords.
    """
    if config is None:
        config = SimulatorConfig(**overrides)
    elif overrides:
        raise TypeError("pass either a SimulatorConfig or keyword overrides, not both")
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, log_level="warning", access_log=False, lifespan="off")
    )
    sock = socket.create_server((host, port))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="animana-simulator"
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the Animana simulator did not start")
        time.sleep(0.01)
    bound_port = sock.getsockname()[1]
    try:
        yield RunningSimulator(
            f"http://{host}:{bound_port}", config.client_id, config.client_secret, app.state.simulator
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(
    config: SimulatorConfig, *, host: str = "127.0.0.1", port: int = 8765, duration: float | None = None
) -> None:
    """Serve in the foreground until interrupted, or for `duration` seconds (smoke tests, CI)."""
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", lifespan="off"))
    if duration is None:
        server.run()
        return
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    time.sleep(duration)
    server.should_exit = True
    thread.join(timeout=10)
