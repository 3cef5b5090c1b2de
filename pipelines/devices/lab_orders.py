"""Lab orders out in Dagster: ``lab_order_sensor`` requests a ``lab_order_send_job`` run for each practice with
queued orders; the run sends them (``connectors.devices.order_sender``) and records each lab's answer.

The sensor reads which practices have queued orders through the audited system session (one read per tick,
every 30 s): orders belong to practices, and no practice context exists before the practice is known. The
run key is the practice and its newest queued order, so a backlog is requested once and a new order asks again.
"""

# No ``from __future__ import annotations``: Dagster reads the op signatures' Config classes at run time.
from dagster import (
    Backoff,
    Config,
    OpExecutionContext,
    RetryPolicy,
    RunConfig,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    job,
    op,
    sensor,
)
from sqlalchemy import text

from connectors.devices.order_sender import send_queued_orders
from pipelines.animana.resources import WarehouseResource
from pipelines.devices.jobs import practice_ids
from warehouse.kernel.tenancy import system_session

__all__ = ["LabOrderSendConfig", "lab_order_send_job", "lab_order_sensor", "queued_by_practice"]

_QUEUED = text(
    """SELECT t.code, max(o.id) AS newest, count(*) AS queued FROM lab_order o JOIN tenant t ON t.id = o.practice_id
       WHERE o.delivery_state = 'queued' AND t.offboarded_at IS NULL GROUP BY t.code ORDER BY t.code"""
)


def queued_by_practice(warehouse: WarehouseResource) -> dict[str, tuple[int, int]]:
    """Practice code → (newest queued order id, number of queued orders)."""
    with system_session(
        warehouse.admin_engine, reason="devices: practices with lab orders to send"
    ) as session:
        return {r.code: (int(r.newest), int(r.queued)) for r in session.execute(_QUEUED)}


class LabOrderSendConfig(Config):
    practice_code: str


@op(retry_policy=RetryPolicy(max_retries=3, delay=10, backoff=Backoff.EXPONENTIAL))
def send_lab_orders(
    context: OpExecutionContext, config: LabOrderSendConfig, warehouse: WarehouseResource
) -> dict[str, int]:
    """Send the practice's queued orders; a refusal or timeout is recorded on the order (not a failed run)."""
    code = config.practice_code
    summary = send_queued_orders(warehouse.app_engine, practice_ids(warehouse.admin_engine, [code])[code])
    for line in summary.lines:
        context.log.info(line)
    counts = {"sent": summary.sent, **dict(summary.counts)}
    context.add_output_metadata(counts)
    return counts


@job(description="Send one practice's queued lab orders over MLLP (requested by lab_order_sensor)")
def lab_order_send_job() -> None:
    send_lab_orders()


@sensor(job=lab_order_send_job, minimum_interval_seconds=30)
def lab_order_sensor(
    context: SensorEvaluationContext, warehouse: WarehouseResource
) -> list[RunRequest] | SkipReason:
    queued = queued_by_practice(warehouse)
    if not queued:
        return SkipReason("no queued lab orders")
    return [
        RunRequest(
            run_key=f"lab-orders:{code}:{newest}",
            run_config=RunConfig(ops={"send_lab_orders": LabOrderSendConfig(practice_code=code)}),
            tags={"practice": code, "queued": str(count)},
        )
        for code, (newest, count) in queued.items()
    ]
