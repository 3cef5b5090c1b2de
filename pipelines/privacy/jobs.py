"""The retention purge as a system job: every erased client whose retention period has ended, across all
practices, in one audited system session. Daily at night (the practices' time), after the nightly syncs."""

import datetime as dt

from dagster import Backoff, OpExecutionContext, RetryPolicy, ScheduleDefinition, job, op

from pipelines.animana.resources import WarehouseResource
from warehouse.kernel.tenancy import system_session
from warehouse.privacy.retention import PurgeReport, purge_due


@op(retry_policy=RetryPolicy(max_retries=2, delay=60, backoff=Backoff.EXPONENTIAL))
def retention_purge(context: OpExecutionContext, warehouse: WarehouseResource) -> PurgeReport:
    """Delete the records of erased clients past their retention (``warehouse.privacy.retention``)."""
    with system_session(warehouse.admin_engine, reason="gdpr: retention purge (daily job)") as session:
        report = purge_due(session, dt.datetime.now(dt.UTC))
    context.log.info(f"purged {len(report.erasures)} erased client(s): {report.rows}")
    return report


@job(description="Purge erased clients' records whose retention period has ended")
def retention_purge_job() -> None:
    retention_purge()


retention_purge_daily = ScheduleDefinition(
    job=retention_purge_job, cron_schedule="30 3 * * *", execution_timezone="Europe/Amsterdam"
)
