"""The Animana domain's Dagster `Definitions` (assets, schedules, sensor, resources), exposed as
`pipelines.animana.defs`."""

from __future__ import annotations

from dagster import Definitions, EnvVar

from pipelines.animana.assets import animana_sync
from pipelines.animana.freshness import (
    animana_freshness_job,
    animana_freshness_schedule,
    animana_mirror_fresh,
)
from pipelines.animana.resources import AnimanaResource, WarehouseResource
from pipelines.animana.schedules import (
    animana_incremental_schedule,
    animana_nightly_full_schedule,
    animana_sync_job,
)
from pipelines.animana.sensors import animana_practices_sensor


def resources() -> dict[str, object]:
    return {
        "warehouse": WarehouseResource(
            database_url=EnvVar("DATABASE_URL"), master_key=EnvVar("VETCONNECT_MASTER_KEY")
        ),
        "animana": AnimanaResource(
            url=EnvVar("VETCONNECT_ANIMANA_URL"),
            client_id=EnvVar("VETCONNECT_ANIMANA_CLIENT_ID"),
            client_secret=EnvVar("VETCONNECT_ANIMANA_CLIENT_SECRET"),
        ),
    }


defs = Definitions(
    assets=[animana_sync],
    asset_checks=[animana_mirror_fresh],
    jobs=[animana_sync_job, animana_freshness_job],
    schedules=[animana_incremental_schedule, animana_nightly_full_schedule, animana_freshness_schedule],
    sensors=[animana_practices_sensor],
    resources=resources(),
)
