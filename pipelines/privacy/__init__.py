"""Privacy domain: the daily retention purge of erased clients' records (`defs`). The ``warehouse`` resource is
the shared one (defined with the Animana domain).

The purge itself is `warehouse.privacy.retention.purge_due`, which `vetconnect gdpr purge` runs without Dagster.
"""

from __future__ import annotations

from dagster import Definitions

from pipelines.privacy.jobs import retention_purge, retention_purge_daily, retention_purge_job

defs = Definitions(jobs=[retention_purge_job], schedules=[retention_purge_daily])

__all__ = ["defs", "retention_purge"]
