"""The mart change queue under bulk loads (migration 0302): a statement that adds many payments or ownership
links marks the practice's local today once, with one time-zone look-up per practice, not one per row."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def _as_practice(conn, practice_id: int) -> None:  # noqa: ANN001
    conn.execute("SET track_functions = 'all'")  # superuser setting, before leaving the superuser role
    conn.execute("SET LOCAL ROLE vetconnect_app")
    conn.execute("SELECT set_config('app.practice_ids', %s, true)", (str(practice_id),))


def _today_lookups(conn) -> int:  # noqa: ANN001
    return (
        conn.execute("SELECT pg_stat_get_xact_function_calls('mart_local_day'::regproc)").fetchone()[0] or 0
    )


def test_a_bulk_insert_of_payments_marks_today_with_one_lookup(world_db, admin_conn):
    a1 = world_db.world.practices["a1"]
    _as_practice(admin_conn, a1.practice_id)
    admin_conn.execute("DELETE FROM mart_dirty_day")

    admin_conn.execute(
        "INSERT INTO payment (practice_id, client_id, method, amount_cents, paid_at) "
        "SELECT %s, %s, 'pin', 100 * g, now() - g * interval '1 day' FROM generate_series(1, 500) g",
        (a1.practice_id, a1.client_id),
    )

    today = dt.datetime.now(ZoneInfo("Europe/Amsterdam")).date()
    marked = admin_conn.execute("SELECT practice_id, day FROM mart_dirty_day").fetchall()
    assert marked == [(a1.practice_id, today)] or marked == [(a1.practice_id, today - dt.timedelta(days=1))]
    assert 1 <= _today_lookups(admin_conn) <= 2  # the filter and the value, per practice; 500 before 0302


def test_a_bulk_insert_of_ownership_links_marks_today_with_one_lookup(world_db, admin_conn):
    a1 = world_db.world.practices["a1"]
    _as_practice(admin_conn, a1.practice_id)
    admin_conn.execute("DELETE FROM mart_dirty_day")
    patients = admin_conn.execute(
        "INSERT INTO patient (practice_id, name, species, sex) "
        "SELECT %s, 'Dier ' || g, 'dog', 'female' FROM generate_series(1, 300) g RETURNING id",
        (a1.practice_id,),
    ).fetchall()
    admin_conn.execute("DELETE FROM mart_dirty_day")
    before = _today_lookups(admin_conn)

    admin_conn.execute(
        "INSERT INTO client_patient (practice_id, client_id, patient_id, is_primary) "
        "SELECT %s, %s, p, true FROM unnest(%s::bigint[]) p",
        (a1.practice_id, a1.client_id, [p[0] for p in patients]),
    )

    assert [r[0] for r in admin_conn.execute("SELECT practice_id FROM mart_dirty_day").fetchall()] == [
        a1.practice_id
    ]
    assert 1 <= _today_lookups(admin_conn) - before <= 2  # 300 before 0302
