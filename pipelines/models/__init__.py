"""Models domain: per-franchise training assets with a promotion check, weekly schedule, after-sync sensor."""

from __future__ import annotations

from dagster import Definitions

from pipelines.models.assets import franchise_models
from pipelines.models.schedules import models_train_job, models_weekly_schedule
from pipelines.models.sensors import models_after_large_sync_sensor, models_franchises_sensor

defs = Definitions(
    assets=[franchise_models],
    jobs=[models_train_job],
    schedules=[models_weekly_schedule],
    sensors=[models_franchises_sensor, models_after_large_sync_sensor],
)
