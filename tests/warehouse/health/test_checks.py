"""Each check's ok, warn and fail from real state: a real PostgreSQL with aged outbox entries, conflicts, device
messages and sync cursors, a real TCP listener, backup directories as part B writes them."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import MASTER_KEY, Database
from warehouse.health.checks import Status
from warehouse.health.facts import SYSTEM_REASON
from warehouse.health.report import HealthSources, run_health
from warehouse.tenants.admin import add_franchise, add_practice

HOUR = 3600


@pytest.fixture
def practice(fresh_db: Database) -> int:
    """One practice linked to Animana, whose only module still fed by Animana is clients (relations, animals)."""
    with fresh_db.system() as session:
        franchise = add_franchise(session, code="HF", name="Health Franchise")
        p = add_practice(
            session, franchise_id=franchise.id, code="HP1", name="Health Practice", master_key=MASTER_KEY
        )
        session.execute(text("UPDATE tenant SET animana_practice_id = '1001' WHERE id = :p"), {"p": p.id})
        for module in ("agenda", "records", "invoices"):
            session.execute(
                text(
                    "UPDATE practice_module_mode SET mode = 'native' WHERE practice_id = :p AND module = :m"
                ),
                {"p": p.id, "m": module},
            )
        return p.id


def _sql(db: Database, statement: str, **params: object) -> None:
    with db.system() as session:
        session.execute(text(statement), params)


def _synced(db: Database, practice_id: int, hours_ago: float) -> None:
    for resource in ("relations", "animals"):
        _sql(db, "INSERT INTO sync_state (practice_id, source, resource, last_incremental_at) VALUES "
                 "(:p, 'animana', :r, now() - make_interval(secs => :s))", p=practice_id, r=resource,
             s=hours_ago * HOUR)  # fmt: skip


def _outbox(db: Database, practice_id: int, state: str, age_s: float) -> None:
    _sql(db, "INSERT INTO writeback_outbox (practice_id, module, table_name, row_id, operation, changes, state, "
             "created_at) VALUES (:p, 'clients', 'client', 1, 'update', '{}', :st, now() - make_interval(secs => :s))",
         p=practice_id, st=state, s=age_s)  # fmt: skip


def _conflict(db: Database, practice_id: int, age_s: float) -> None:
    _sql(db, "INSERT INTO writeback_conflict (practice_id, module, table_name, row_id, fields, detected_at) VALUES "
             "(:p, 'clients', 'client', 1, '{}', now() - make_interval(secs => :s))", p=practice_id, s=age_s)  # fmt: skip


def _unmatched(db: Database, practice_id: int, age_s: float) -> None:
    _sql(db, "INSERT INTO device_message (practice_id, source, raw, sha256, size_bytes, status, inbox_reason, "
             "received_at) VALUES (:p, 'cli', 'x', repeat('0', 64), 1, 'inbox', 'no_patient', "
             "now() - make_interval(secs => :s))", p=practice_id, s=age_s)  # fmt: skip


def _backup(root: Path, label: str, hours_ago: float) -> None:
    folder = root / "backups" / label
    folder.mkdir(parents=True)
    (folder / "backup_manifest").write_text("{}")
    finished = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours_ago)
    (folder / "vetconnect.json").write_text(json.dumps({
        "label": label, "kind": "full", "started_at": finished.isoformat(), "finished_at": finished.isoformat(),
        "size_bytes": 1234}))  # fmt: skip


def _sources(db: Database, home: Path, **kw: object) -> HealthSources:
    return HealthSources(admin_engine=db.admin_engine, backups_dir=home / "backups", **kw)  # type: ignore[arg-type]


def _check(db: Database, home: Path, name: str, **kw: object):  # noqa: ANN202
    return next(c for c in run_health(_sources(db, home, **kw)).checks if c.name == name)


def test_database_is_up_at_head_and_fails_behind_or_unreachable(fresh_db: Database, tmp_path: Path):
    assert _check(fresh_db, tmp_path, "database").status is Status.OK
    with fresh_db.admin_engine.begin() as conn:  # as the migrations' owner, not through the system role
        conn.execute(text("UPDATE alembic_version SET version_num = '0450'"))
    behind = _check(fresh_db, tmp_path, "database")
    assert behind.status is Status.FAIL and "schema at 0450" in behind.detail
    down = run_health(HealthSources(None, tmp_path, database_error="connection refused"))
    assert down.checks[0].status is Status.FAIL and "connection refused" in down.checks[0].detail
    assert down.status is Status.FAIL


def test_one_audited_system_session_per_run(fresh_db: Database, practice: int, tmp_path: Path):
    def reasons() -> int:
        with fresh_db.admin_engine.connect() as conn:
            return conn.scalar(
                text("SELECT count(*) FROM system_access WHERE reason = :r"), {"r": SYSTEM_REASON}
            )

    before = reasons()
    run_health(_sources(fresh_db, tmp_path, animana_probe=lambda _: None))
    assert reasons() == before + 1


def test_sync_lag_ok_warn_fail_and_never(fresh_db: Database, practice: int, tmp_path: Path):
    never = _check(fresh_db, tmp_path, "sync_lag")
    assert never.status is Status.FAIL and "HP1/clients" in never.detail
    _synced(fresh_db, practice, hours_ago=0.1)
    assert _check(fresh_db, tmp_path, "sync_lag").status is Status.OK
    _sql(fresh_db, "UPDATE sync_state SET last_incremental_at = now() - interval '2 hours'")
    warn = _check(fresh_db, tmp_path, "sync_lag")
    assert warn.status is Status.WARN and warn.value == pytest.approx(2 * HOUR, abs=60)
    _sql(fresh_db, "UPDATE sync_state SET last_incremental_at = now() - interval '30 hours'")
    assert _check(fresh_db, tmp_path, "sync_lag").status is Status.FAIL


def test_outbox_oldest_pending_entry(fresh_db: Database, practice: int, tmp_path: Path):
    assert _check(fresh_db, tmp_path, "writeback_outbox").status is Status.OK
    _outbox(fresh_db, practice, "pending", age_s=60)
    assert _check(fresh_db, tmp_path, "writeback_outbox").status is Status.OK
    _outbox(fresh_db, practice, "pending", age_s=20 * 60)
    warn = _check(fresh_db, tmp_path, "writeback_outbox")
    assert warn.status is Status.WARN and "2 waiting" in warn.detail
    _outbox(fresh_db, practice, "pending", age_s=2 * HOUR)
    assert _check(fresh_db, tmp_path, "writeback_outbox").status is Status.FAIL


def test_dead_letters_warn_at_once_and_fail_after_a_day(fresh_db: Database, practice: int, tmp_path: Path):
    assert _check(fresh_db, tmp_path, "dead_letters").status is Status.OK
    _outbox(fresh_db, practice, "dead", age_s=60)
    assert _check(fresh_db, tmp_path, "dead_letters").status is Status.WARN
    _outbox(fresh_db, practice, "dead", age_s=2 * 86400)
    failed = _check(fresh_db, tmp_path, "dead_letters")
    assert failed.status is Status.FAIL and "2 dead letter(s)" in failed.detail and "HP1 2" in failed.detail


def test_conflicts_and_device_inbox_by_age(fresh_db: Database, practice: int, tmp_path: Path):
    assert _check(fresh_db, tmp_path, "conflicts").status is Status.OK
    _conflict(fresh_db, practice, age_s=HOUR)
    assert _check(fresh_db, tmp_path, "conflicts").status is Status.OK
    _conflict(fresh_db, practice, age_s=2 * 86400)
    assert _check(fresh_db, tmp_path, "conflicts").status is Status.WARN
    _conflict(fresh_db, practice, age_s=8 * 86400)
    assert _check(fresh_db, tmp_path, "conflicts").status is Status.FAIL

    _unmatched(fresh_db, practice, age_s=HOUR)
    assert _check(fresh_db, tmp_path, "device_inbox").status is Status.OK
    _unmatched(fresh_db, practice, age_s=8 * 86400)
    inbox = _check(fresh_db, tmp_path, "device_inbox")
    assert inbox.status is Status.FAIL and inbox.detail.startswith("2 unmatched")


def test_animana_probe_per_linked_practice(fresh_db: Database, practice: int, tmp_path: Path):
    asked: list[int] = []

    def probe(animana_id: int) -> str | None:
        asked.append(animana_id)
        return None

    assert _check(fresh_db, tmp_path, "animana", animana_probe=probe).status is Status.OK
    assert asked == [1001]
    refused = _check(fresh_db, tmp_path, "animana", animana_probe=lambda _: "AuthError (HTTP 401): bad token")
    assert refused.status is Status.FAIL and "HP1: AuthError" in refused.detail
    unconfigured = _check(fresh_db, tmp_path, "animana")
    assert unconfigured.status is Status.FAIL and "not configured" in unconfigured.detail


@pytest.fixture
def listener() -> Iterator[str]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield f"127.0.0.1:{server.getsockname()[1]}"


def test_mllp_listener_up_and_down(fresh_db: Database, tmp_path: Path, listener: str):
    up = _check(fresh_db, tmp_path, "mllp_listener", mllp_addresses=(listener,))
    assert up.status is Status.OK
    with socket.create_server(("127.0.0.1", 0)) as closed:
        address = f"127.0.0.1:{closed.getsockname()[1]}"
    down = _check(fresh_db, tmp_path, "mllp_listener", mllp_addresses=(listener, address))
    assert down.status is Status.FAIL and down.value == 1 and address in down.detail
    assert all(c.name != "mllp_listener" for c in run_health(_sources(fresh_db, tmp_path)).checks)


def test_backup_age_from_the_newest_complete_backup(fresh_db: Database, tmp_path: Path):
    none = _check(fresh_db, tmp_path, "backup")
    assert none.status is Status.FAIL and "no backup yet" in none.detail
    _backup(tmp_path, "20261201T020000", hours_ago=60)
    assert _check(fresh_db, tmp_path, "backup").status is Status.FAIL
    _backup(tmp_path, "20261202T020000", hours_ago=30)
    assert _check(fresh_db, tmp_path, "backup").status is Status.WARN
    _backup(tmp_path, "20261203T020000", hours_ago=2)
    (tmp_path / "backups" / "in-progress").mkdir()
    (tmp_path / "backups" / "in-progress" / "backup_manifest").write_text("{}")  # no vetconnect.json yet
    fresh = _check(fresh_db, tmp_path, "backup")
    assert fresh.status is Status.OK and "20261203T020000" in fresh.detail
