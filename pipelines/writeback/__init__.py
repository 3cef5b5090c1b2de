"""Write-back domain: the per-practice push of the outbox to Animana as an asset with its check, the sensor
that runs it when entries are due, and an hourly schedule (`defs`). The ``warehouse`` and ``animana`` resources
are the shared ones (defined with the Animana domain).

The push itself is `connectors.animana.writeback`, which `vetconnect integration push` runs without Dagster.
"""

from __future__ import annotations

from dagster import Definitions

from pipelines.writeback.assets import animana_writeback
from pipelines.writeback.schedules import writeback_hourly_schedule, writeback_job
from pipelines.writeback.sensors import writeback_due_sensor

defs = Definitions(
    assets=[animana_writeback],
    jobs=[writeback_job],
    schedules=[writeback_hourly_schedule],
    sensors=[writeback_due_sensor],
)

__all__ = ["defs"]
