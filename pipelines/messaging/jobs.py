"""Messages to owners in Dagster: every 15 minutes during the day, each practice queues what is due
(``warehouse.messaging.generate``) and sends it (``connectors.messaging.dispatch``) — the same round as
``vetconnect messages send``.

Why a schedule and not a sensor: what becomes due is mostly a matter of the clock (a reminder's send date, the
day before an appointment, a retry's backoff running out), which a sensor would have to poll for anyway. Why
15 minutes: a booking's confirmation should reach the owner while they still remember booking, and a retry's
backoff (30 s, 1 min, 2 min …) is picked up on the next tick. Why only from 08:00 to 20:45 (Europe/Amsterdam,
where the practices are): an SMS about a vaccination at three in the morning wakes an owner up; what falls due
at night is queued and sent at eight.

One practice's failure (its database rows, a bug) does not keep the others' messages back: every practice is
tried, then the run fails naming the ones that did not finish. A rerun is harmless — generation queues each
message once and the dispatcher sends only what is due, under ids the gateways deduplicate.
"""

# No ``from __future__ import annotations``: Dagster reads the op signatures' Config classes at run time.
import datetime as dt

from dagster import (
    Backoff,
    Config,
    Failure,
    OpExecutionContext,
    RetryPolicy,
    ScheduleDefinition,
    job,
    op,
)

from connectors.messaging.dispatch import send_due_messages
from pipelines.animana.resources import WarehouseResource
from pipelines.messaging.resources import MessageGatewaysResource
from warehouse.kernel.tenancy import system_session
from warehouse.messaging.outbox import live_practices

__all__ = ["MessagesConfig", "messages_daytime_schedule", "messages_send_job", "send_due_owner_messages"]

COUNTED = ("queued", "skipped", "sent", "delivered", "retry", "bounced", "failed")


class MessagesConfig(Config):
    practice_code: str | None = None  # None: every live practice


@op(retry_policy=RetryPolicy(max_retries=2, delay=30, backoff=Backoff.EXPONENTIAL))
def send_due_owner_messages(
    context: OpExecutionContext,
    config: MessagesConfig,
    warehouse: WarehouseResource,
    messaging: MessageGatewaysResource,
) -> dict[str, dict[str, int]]:
    """Queue and send each practice's due messages; per practice code, what happened."""
    with system_session(warehouse.admin_engine, reason="messages: practices to send for") as session:
        practices = live_practices(session, config.practice_code)
    if config.practice_code and not practices:
        raise Failure(f"no practice with code {config.practice_code!r}")
    now = dt.datetime.now(dt.UTC)
    report: dict[str, dict[str, int]] = {}
    unfinished: dict[str, str] = {}
    for practice_id, code in practices:
        try:
            made, run = send_due_messages(
                warehouse.app_engine, practice_id, warehouse.key(), messaging.gateways, now=now
            )
        except Exception as exc:  # noqa: BLE001 - reported below; the other practices still get their round
            context.log.exception(f"{code}: messages not finished")
            unfinished[code] = f"{exc.__class__.__name__}: {exc}"
            continue
        counts = {"queued": made.queued, "skipped": made.skipped, **run.counts}
        report[code] = {k: counts.get(k, 0) for k in COUNTED}
        if any(report[code].values()):
            context.log.info(f"{code}: " + ", ".join(f"{k} {v}" for k, v in report[code].items() if v))
    context.add_output_metadata(
        {k: sum(r[k] for r in report.values()) for k in COUNTED} | {"practices": len(report)}
    )
    if unfinished:
        raise Failure(
            f"messages not finished at {len(unfinished)} practice(s): {', '.join(sorted(unfinished))}",
            metadata=unfinished,
        )
    return report


@job(description="Queue and send the messages due to owners at every practice (e-mail and SMS)")
def messages_send_job() -> None:
    send_due_owner_messages()


messages_daytime_schedule = ScheduleDefinition(
    name="messages_daytime_schedule",
    job=messages_send_job,
    cron_schedule="*/15 8-20 * * *",
    execution_timezone="Europe/Amsterdam",
)
