"""Incremental refresh equals a full rebuild; marts reconcile with the record; marts are tenant-isolated."""

from __future__ import annotations

import psycopg
from conftest import sync
from sqlalchemy import text

from tests.conftest import _libpq
from warehouse.kernel.tenancy import AccessContext
from warehouse.marts.checks import reconcile
from warehouse.marts.refresh import ALL_MARTS, refresh_all


def snapshot(db) -> dict[str, list[tuple]]:  # noqa: ANN001
    with psycopg.connect(_libpq(db.admin_url)) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in ALL_MARTS}  # noqa: S608


def refresh(db, *, full: bool = False):  # noqa: ANN001, ANN201
    return refresh_all(db.app_engine, db.admin_engine, full=full)


def test_incremental_refresh_after_upstream_and_local_changes_equals_a_full_rebuild(mart_world):
    world, db = mart_world, mart_world.db
    first = refresh(db)  # the initial load marked every day: an incremental refresh builds everything
    assert {r.practice_id for r in first} == {p.practice_id for p in world.practices}
    assert all(r.days > 0 for r in first)
    built = snapshot(db)
    assert all(
        built[t] for t in ("mart_practice_day", "mart_staff_day", "mart_hour_day", "mart_practice_month")
    )
    refresh(db, full=True)
    assert snapshot(db) == built
    assert refresh(db) == []  # nothing dirty, nothing done

    # Upstream edits, cancellations and deletions arrive through the sync …
    world.sim.mutate(1002, edits=12, cancellations=3, deletions=6, seed=5)
    sync(world)
    # … and local writes move rows between days and delete them (old days must be recomputed too).
    with db.system("test: local changes") as session:
        session.execute(text(
            "UPDATE appointment SET starts_at = starts_at + interval '3 days', ends_at = ends_at + interval '3 days' "
            "WHERE id = (SELECT min(id) FROM appointment WHERE status = 'done')"))  # fmt: skip
        session.execute(
            text("UPDATE invoice SET issued_on = issued_on - 40 WHERE id = (SELECT max(id) FROM invoice)")
        )
        session.execute(text("DELETE FROM vaccination WHERE id = (SELECT min(id) FROM vaccination)"))
        session.execute(text("DELETE FROM payment WHERE id = (SELECT min(id) FROM payment)"))
        session.execute(text(
            "DELETE FROM staff_shift WHERE id = (SELECT min(id) FROM staff_shift)"))  # fmt: skip
    pending = {r.practice_id: r.days for r in refresh(db)}
    assert pending and all(0 < days < 200 for days in pending.values())  # a handful of days, not the history
    incremental = snapshot(db)
    assert incremental != built
    refresh(db, full=True)
    assert snapshot(db) == incremental

    for practice in world.practices:
        with db.as_app(AccessContext.for_practices([practice.practice_id])) as session:
            result = reconcile(session, practice.practice_id)
        assert result.pending_days == 0
        assert result.differences == {}, result


def test_marts_are_visible_only_to_their_practice_and_franchise_roll_ups_sum_the_practices(mart_world):
    db = mart_world.db
    refresh(db)
    ids = [p.practice_id for p in mart_world.practices]
    totals = {}
    for pid in ids:
        with db.as_app(AccessContext.for_practices([pid])) as session:
            seen = set(session.scalars(text("SELECT DISTINCT practice_id FROM mart_practice_day")))
            totals[pid] = session.scalar(text("SELECT sum(revenue_incl_cents) FROM mart_practice_day"))
        assert seen == {pid}
    with db.as_app(AccessContext.for_practices(ids)) as session:
        assert session.scalar(text("SELECT sum(revenue_incl_cents) FROM mart_practice_day")) == sum(
            totals.values()
        )
    with db.as_app(AccessContext.for_practices([])) as session:
        assert session.scalar(text("SELECT count(*) FROM mart_practice_day")) == 0
