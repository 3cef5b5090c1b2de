"""The health check's view of Animana: per linked practice, one cheap authenticated GET (the record totals),
with few retries and a short deadline — a health run must answer in seconds, not wait out the sync's backoff."""

from __future__ import annotations

from .client import AnimanaClient
from .errors import AnimanaError, SettingsError
from .settings import load_settings
from .transport import RetryPolicy

PROBE_RETRY = RetryPolicy(attempts=2, timeout=10.0, wait_initial=0.2, wait_max=1.0, max_retry_after=2.0)


class AnimanaProbe:
    """Callable with an Animana practice id: None when it answered with our token, else why not (a
    ``warehouse.health.facts.AnimanaProbe``). Thread-safe: one client, one token for the process."""

    def __init__(self, client: AnimanaClient) -> None:
        self._client = client

    def __call__(self, animana_practice_id: int) -> str | None:
        try:
            self._client.counts(animana_practice_id)
        except AnimanaError as exc:
            status = f" (HTTP {exc.status_code})" if exc.status_code else ""
            return f"{type(exc).__name__}{status}: {exc.message}"
        return None


def probe_from_env() -> AnimanaProbe | None:
    """The probe with the ``VETCONNECT_ANIMANA_*`` settings; None when Animana is not configured."""
    try:
        settings = load_settings()
    except SettingsError:
        return None
    return AnimanaProbe(AnimanaClient(settings, retry=PROBE_RETRY))
