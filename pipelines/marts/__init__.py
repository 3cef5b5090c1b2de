"""Marts domain: the practice's vaccination reminders and marts assets, the marts' reconciliation check, and
their schedules (`defs`)."""

from __future__ import annotations

from dagster import Definitions

from pipelines.marts.assets import practice_marts
from pipelines.marts.reminders import vaccination_reminders
from pipelines.marts.schedules import marts_full_schedule, marts_incremental_schedule, marts_refresh_job

defs = Definitions(
    assets=[vaccination_reminders, practice_marts],
    jobs=[marts_refresh_job],
    schedules=[marts_incremental_schedule, marts_full_schedule],
)
