"""Where each practice × module stands with Animana: its mode, the last sync, the write-back queue, dead letters and
open conflicts — for the Integration page, ``vetconnect integration status`` and the Dagster asset check."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.integration.tables import MIRRORED, MODULE_LABELS
from warehouse.schema.tenancy import MODULES

RESOURCES_BY_MODULE = {m: [t.resource for t in MIRRORED.values() if t.module == m] for m in MODULES}

_STATUS = text(
    """
    WITH practices AS (
      SELECT id, code, name, animana_practice_id IS NOT NULL AS linked FROM tenant
      WHERE kind = 'practice' AND offboarded_at IS NULL AND id = ANY(:ps)
    ), modules AS (
      SELECT p.id AS practice_id, m.module, coalesce(pm.mode, 'animana') AS mode, pm.changed_at
      FROM practices p CROSS JOIN unnest(CAST(:modules AS text[])) AS m(module)
      LEFT JOIN practice_module_mode pm ON pm.practice_id = p.id AND pm.module = m.module
    ), synced AS (
      SELECT s.practice_id, r.module,
             max(greatest(s.last_incremental_at, s.last_full_at)) AS last_sync
      FROM sync_state s
      JOIN jsonb_each_text(CAST(:resource_modules AS jsonb)) AS r(resource, module) ON r.resource = s.resource
      WHERE s.source = 'animana' AND s.practice_id = ANY(:ps)
      GROUP BY 1, 2
    ), outbox AS (
      SELECT practice_id, module,
             count(*) FILTER (WHERE state IN ('pending', 'held')) AS depth,
             min(created_at) FILTER (WHERE state IN ('pending', 'held')) AS oldest,
             count(*) FILTER (WHERE state = 'dead') AS dead,
             min(created_at) FILTER (WHERE state = 'dead') AS oldest_dead
      FROM writeback_outbox WHERE practice_id = ANY(:ps) AND state IN ('pending', 'held', 'dead')
      GROUP BY 1, 2
    ), sent AS (
      SELECT practice_id, module, count(*) AS sent_24h,
             percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)) AS lag_p95
      FROM writeback_outbox
      WHERE practice_id = ANY(:ps) AND state = 'done' AND sent_at > now() - interval '1 day'
      GROUP BY 1, 2
    ), conflicts AS (
      SELECT practice_id, module, count(*) AS open_conflicts, min(detected_at) AS oldest_conflict
      FROM writeback_conflict WHERE practice_id = ANY(:ps) AND state = 'open' GROUP BY 1, 2
    )
    SELECT p.id AS practice_id, p.code, p.name, p.linked, m.module, m.mode, m.changed_at, sy.last_sync,
           coalesce(o.depth, 0) AS depth, o.oldest, coalesce(o.dead, 0) AS dead, o.oldest_dead,
           coalesce(se.sent_24h, 0) AS sent_24h, se.lag_p95,
           coalesce(c.open_conflicts, 0) AS open_conflicts, c.oldest_conflict, now() AS now
    FROM practices p JOIN modules m ON m.practice_id = p.id
    LEFT JOIN synced sy ON sy.practice_id = p.id AND sy.module = m.module
    LEFT JOIN outbox o ON o.practice_id = p.id AND o.module = m.module
    LEFT JOIN sent se ON se.practice_id = p.id AND se.module = m.module
    LEFT JOIN conflicts c ON c.practice_id = p.id AND c.module = m.module
    ORDER BY p.code, array_position(CAST(:modules AS text[]), m.module)
    """
)


@dataclass(frozen=True)
class ModuleStatus:
    practice_id: int
    practice_code: str
    practice_name: str
    linked: bool  # the practice is linked to an Animana practice
    module: str
    module_label: str
    mode: str
    mode_changed_at: dt.datetime | None
    last_sync: dt.datetime | None
    sync_lag_s: float | None  # seconds since the last sync of the module's resources
    outbox_depth: int  # pending + held entries
    oldest_pending: dt.datetime | None
    dead_letters: int
    oldest_dead_letter: dt.datetime | None
    sent_24h: int
    writeback_lag_p95_s: float | None  # local commit → acknowledged by Animana, last 24 h
    open_conflicts: int
    oldest_conflict: dt.datetime | None

    @property
    def attention(self) -> list[str]:
        """What a manager should look at, in words."""
        notes = []
        if self.mode != "native" and not self.linked:
            notes.append("practice not linked to Animana: works as native, nothing is captured")
        if self.dead_letters:
            notes.append(f"{self.dead_letters} not delivered (dead letters)")
        if self.open_conflicts:
            notes.append(f"{self.open_conflicts} open conflict(s)")
        return notes


def integration_status(session: Session, practice_ids: list[int]) -> list[ModuleStatus]:
    resource_modules = {t.resource: t.module for t in MIRRORED.values()}
    rows = session.execute(
        _STATUS,
        {"ps": practice_ids, "modules": list(MODULES), "resource_modules": json.dumps(resource_modules)},
    ).all()
    return [
        ModuleStatus(
            r.practice_id,
            r.code,
            r.name,
            r.linked,
            r.module,
            MODULE_LABELS[r.module],
            r.mode,
            r.changed_at,
            r.last_sync,
            (r.now - r.last_sync).total_seconds() if r.last_sync else None,
            r.depth,
            r.oldest,
            r.dead,
            r.oldest_dead,
            r.sent_24h,
            float(r.lag_p95) if r.lag_p95 is not None else None,
            r.open_conflicts,
            r.oldest_conflict,
        )  # fmt: skip
        for r in rows
    ]


def status_frame(statuses: list[ModuleStatus]) -> pl.DataFrame:
    """The statuses as a frame (``--json``, the page's table)."""
    records = [asdict(s) | {"attention": "; ".join(s.attention)} for s in statuses]
    return pl.DataFrame(records, infer_schema_length=None) if records else pl.DataFrame()


def stale_problems(statuses: list[ModuleStatus], *, older_than: dt.timedelta) -> list[str]:
    """Dead letters and open conflicts older than ``older_than`` (the Dagster check warns on these)."""
    problems = []
    now = dt.datetime.now(dt.UTC)
    for s in statuses:
        if s.oldest_dead_letter and now - s.oldest_dead_letter > older_than:
            since = f"{s.oldest_dead_letter:%Y-%m-%d %H:%M} UTC"
            problems.append(f"{s.practice_code}/{s.module}: {s.dead_letters} dead letter(s), oldest {since}")
        if s.oldest_conflict and now - s.oldest_conflict > older_than:
            since = f"{s.oldest_conflict:%Y-%m-%d %H:%M} UTC"
            problems.append(
                f"{s.practice_code}/{s.module}: {s.open_conflicts} open conflict(s), oldest {since}"
            )
    return problems
