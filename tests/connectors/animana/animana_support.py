"""Helpers shared by the Animana tests."""

from __future__ import annotations

from typing import Any

from connectors.animana import RESOURCE_ORDER, AnimanaClient, RetryPolicy, load_settings
from connectors.animana.models import AnimanaRecord, RejectedRecord, Tombstone
from connectors.animana.simulator import RunningSimulator

SECRET = "s3cr3t-Animana-Test-Value"
# Short waits keep the suite fast; Retry-After tests set max_retry_after explicitly.
FAST = RetryPolicy(
    attempts=10, timeout=60, wait_initial=0.01, wait_max=0.2, wait_jitter=0.02, max_retry_after=3
)


def make_client(sim: RunningSimulator, retry: RetryPolicy = FAST, **settings: Any) -> AnimanaClient:
    config = load_settings(
        url=sim.base_url, client_id=sim.client_id, client_secret=sim.client_secret, **settings
    )
    return AnimanaClient(config, retry=retry)


def dump(item: Any) -> Any:
    if isinstance(item, AnimanaRecord | Tombstone):
        return item.model_dump(mode="json")
    if isinstance(item, RejectedRecord):
        return {"rejected": item.reason, "raw": item.raw}
    raise TypeError(type(item))


def stream_all(
    client: AnimanaClient, practice_id: int, resources: tuple[str, ...] = RESOURCE_ORDER, **kwargs: Any
) -> dict[str, list[Any]]:
    return {r: [dump(i) for i in client.iter_records(practice_id, r, **kwargs)] for r in resources}
