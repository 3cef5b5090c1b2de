"""Device jobs: process one practice's drop folder; retry the device inbox from the stored raw copies.

Both reuse the connector and warehouse services the CLI uses (``process_drop_file``, ``reprocess_inbox`` with
``parse_raw``), so a file behaves the same whether ``vetconnect devices drop`` or the sensor picked it up:
stored raw + outcome in one committed transaction, then moved to ``processed/`` or ``failed/``.
"""

# No ``from __future__ import annotations``: Dagster reads the op signatures' Config classes at run time.
from dagster import (
    Backoff,
    Config,
    OpExecutionContext,
    RetryPolicy,
    ScheduleDefinition,
    job,
    op,
)
from sqlalchemy import Engine, text

from connectors.devices.drop import pending_files, process_drop_file
from connectors.devices.ingest import parse_raw
from pipelines.animana.resources import WarehouseResource
from pipelines.devices.resources import DropFoldersResource
from warehouse.ingest.devices.inbox import reprocess_inbox
from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session

__all__ = [
    "DropFolderConfig",
    "InboxRetryConfig",
    "device_drop_job",
    "device_inbox_retry_job",
    "device_inbox_retry_schedule",
    "practice_ids",
]

# A database that is briefly unreachable should not leave files waiting for the next new file.
_RETRY = RetryPolicy(max_retries=3, delay=10, backoff=Backoff.EXPONENTIAL)


def practice_ids(admin_engine: Engine, codes: list[str] | None = None) -> dict[str, int]:
    """Practice code → id (all live practices, or the given codes), read through the audited system session."""
    with system_session(admin_engine, reason="devices: practices with a device feed") as session:
        rows = session.execute(
            text(
                "SELECT code, id FROM tenant WHERE kind = 'practice' AND offboarded_at IS NULL"
                " AND (CAST(:codes AS text[]) IS NULL OR code = ANY(CAST(:codes AS text[]))) ORDER BY code"
            ),
            {"codes": codes},
        ).all()
    found = {r.code: int(r.id) for r in rows}
    missing = sorted(set(codes or ()) - set(found))
    if missing:
        raise LookupError(f"no practice with code {', '.join(repr(c) for c in missing)}")
    return found


def _master_key(warehouse: WarehouseResource) -> bytes | None:
    # Without a usable key DICOM files wait in the inbox (encryption_unavailable); lab results still load.
    return warehouse.key() if warehouse.master_key else None


class DropFolderConfig(Config):
    practice_code: str


@op(retry_policy=_RETRY)
def process_drop_folder(
    context: OpExecutionContext,
    config: DropFolderConfig,
    warehouse: WarehouseResource,
    drop_folders: DropFoldersResource,
) -> dict[str, int]:
    """Store every settled file of one practice's drop folder, then move it (processed/ or failed/)."""
    code = config.practice_code
    practice_id = practice_ids(warehouse.admin_engine, [code])[code]
    key = _master_key(warehouse)
    counts = {"files": 0, "ingested": 0, "duplicate": 0, "inbox": 0, "observations": 0}
    for dropped in pending_files(drop_folders.root / code, code, min_age=drop_folders.min_age_seconds):
        result = process_drop_file(warehouse.app_engine, practice_id, dropped.path, practice_code=code,
                                   master_key=key)  # fmt: skip
        record = result.record
        counts["files"] += 1
        counts[record.status if record.status in counts else "inbox"] += 1
        counts["observations"] += record.observation_count
        context.log.info(f"{dropped.path.name}: {record.status} → {result.moved_to.parent.name}/")
    context.add_output_metadata(dict(counts))
    return counts


@job(description="Process one practice's device drop folder (requested by device_drop_sensor)")
def device_drop_job() -> None:
    process_drop_folder()


class InboxRetryConfig(Config):
    practice_codes: list[str] | None = None  # None: every live practice
    limit: int = 500  # per practice and run


@op(retry_policy=_RETRY)
def retry_device_inbox(
    context: OpExecutionContext, config: InboxRetryConfig, warehouse: WarehouseResource
) -> dict[str, int]:
    """Re-process inbox messages from their raw copies: an order or a patient may exist by now. Messages a
    person must decide stay in the inbox; rows another retry holds are skipped (no double loading)."""
    key = _master_key(warehouse)
    totals = {"retried": 0, "ingested": 0, "still_inbox": 0}
    for code, practice_id in practice_ids(warehouse.admin_engine, config.practice_codes).items():
        with tenant_session(warehouse.app_engine, AccessContext.for_practices([practice_id])) as session:
            summary = reprocess_inbox(session, parser=parse_raw, master_key=key, limit=config.limit)
        if summary.retried:
            context.log.info(f"{code}: retried {summary.retried}, ingested {summary.ingested}")
        totals["retried"] += summary.retried
        totals["ingested"] += summary.ingested
        totals["still_inbox"] += summary.still_inbox
    context.add_output_metadata(dict(totals))
    return totals


@job(description="Retry the device inbox of every practice from the stored raw copies")
def device_inbox_retry_job() -> None:
    retry_device_inbox()


device_inbox_retry_schedule = ScheduleDefinition(
    job=device_inbox_retry_job, cron_schedule="*/15 * * * *", execution_timezone="Europe/Amsterdam"
)
