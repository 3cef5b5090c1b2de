"""Devices domain: drop-folder sensor and job, inbox retry job and schedule, lab orders out (`defs`).

The ``warehouse`` resource is the shared one (defined with the Animana domain); this domain adds
``drop_folders``.
"""

from __future__ import annotations

from dagster import Definitions, EnvVar

from pipelines.devices.jobs import device_drop_job, device_inbox_retry_job, device_inbox_retry_schedule
from pipelines.devices.lab_orders import lab_order_send_job, lab_order_sensor
from pipelines.devices.resources import DropFoldersResource
from pipelines.devices.sensors import device_drop_sensor

defs = Definitions(
    jobs=[device_drop_job, device_inbox_retry_job, lab_order_send_job],
    schedules=[device_inbox_retry_schedule],
    sensors=[device_drop_sensor, lab_order_sensor],
    resources={"drop_folders": DropFoldersResource(home=EnvVar("VETCONNECT_HOME"))},
)
