"""Dashboards: every KPI recomputed from the source tables equals the mart figure; both pages render under
AppTest for a signed-in manager."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import run_page, signed_in
from sqlalchemy import text

from warehouse.kernel.tenancy import AccessContext
from warehouse.marts import kpis
from warehouse.marts.refresh import refresh_all

START, END = dt.date(2025, 1, 1), dt.date(2026, 6, 30)

# Each KPI straight from the record (independent SQL, not the mart builder): :p, :start, :end.
SOURCE = {
    "revenue_excl": "SELECT sum(total_excl_cents) / 100.0 FROM invoice WHERE practice_id = :p "
    "AND status NOT IN ('draft', 'void') AND issued_on BETWEEN :start AND :end",
    "revenue_incl": "SELECT sum(total_incl_cents) / 100.0 FROM invoice WHERE practice_id = :p "
    "AND status NOT IN ('draft', 'void') AND issued_on BETWEEN :start AND :end",
    "visits": "SELECT count(*) FROM visit WHERE practice_id = :p "
    "AND (started_at AT TIME ZONE 'Europe/Amsterdam')::date BETWEEN :start AND :end",
    "atv": "SELECT sum(total_excl_cents) / 100.0 / count(*) FILTER (WHERE credit_of_id IS NULL) FROM invoice "
    "WHERE practice_id = :p AND status NOT IN ('draft', 'void') AND issued_on BETWEEN :start AND :end",
    "invoices_per_patient": "SELECT (SELECT count(*) FROM invoice WHERE practice_id = :p AND status = 'issued' "
    "AND issued_on BETWEEN :start AND :end)::float / (SELECT count(DISTINCT (patient_id, (started_at AT TIME ZONE "
    "'Europe/Amsterdam')::date)) FROM visit WHERE practice_id = :p "
    "AND (started_at AT TIME ZONE 'Europe/Amsterdam')::date BETWEEN :start AND :end)",
    "appts_booked": "SELECT count(*) FROM appointment WHERE practice_id = :p "
    "AND (starts_at AT TIME ZONE 'Europe/Amsterdam')::date BETWEEN :start AND :end",
    "appts_completed": "SELECT count(*) FROM appointment WHERE practice_id = :p AND status = 'done' "
    "AND (starts_at AT TIME ZONE 'Europe/Amsterdam')::date BETWEEN :start AND :end",
    "appts_cancelled": "SELECT count(*) FROM appointment WHERE practice_id = :p AND status = 'cancelled' "
    "AND (starts_at AT TIME ZONE 'Europe/Amsterdam')::date BETWEEN :start AND :end",
    "no_show_rate": "SELECT count(*) FILTER (WHERE status = 'no_show')::float / count(*) FILTER (WHERE status <> "
    "'cancelled') FROM appointment WHERE practice_id = :p "
    "AND (starts_at AT TIME ZONE 'Europe/Amsterdam')::date BETWEEN :start AND :end",
    "utilisation": "SELECT (SELECT sum(extract(epoch FROM a.ends_at - a.starts_at) / 60) FROM appointment a "
    "WHERE a.practice_id = :p AND a.status <> 'cancelled' AND (a.starts_at AT TIME ZONE 'Europe/Amsterdam')::date "
    "BETWEEN :start AND :end AND EXISTS (SELECT 1 FROM staff_shift s WHERE s.practice_id = a.practice_id "
    "AND s.resource_id = a.resource_id AND (s.starts_at AT TIME ZONE 'Europe/Amsterdam')::date = "
    "(a.starts_at AT TIME ZONE 'Europe/Amsterdam')::date))::float / (SELECT sum(extract(epoch FROM ends_at - "
    "starts_at) / 60) FROM staff_shift WHERE practice_id = :p "
    "AND (starts_at AT TIME ZONE 'Europe/Amsterdam')::date BETWEEN :start AND :end)",
    "vacc_compliance": "SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM vaccination w WHERE "
    "w.practice_id = v.practice_id AND w.patient_id = v.patient_id AND w.vaccine_name = v.vaccine_name AND "
    "w.given_on > v.given_on AND abs(w.given_on - v.due_on) <= 30))::float / nullif(count(*), 0) "
    "FROM vaccination v WHERE v.practice_id = :p AND v.due_on BETWEEN :start AND :end",
    # Sent (a message sent or delivered; without any message, the reminder's own send), then within 30 days a
    # booking of the patient or a dose of the reminder's vaccine.
    "reminder_compliance": "WITH send AS (SELECT reminder_id, sent_at FROM message_outbox WHERE practice_id = :p "
    "AND state IN ('sent', 'delivered') UNION ALL SELECT id, sent_at FROM reminder r WHERE practice_id = :p AND "
    "sent_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM message_outbox m WHERE m.practice_id = :p AND "
    "m.reminder_id = r.id AND m.channel IS NOT NULL)) SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM send s "
    "WHERE s.reminder_id = r.id AND (EXISTS (SELECT 1 FROM appointment a WHERE a.practice_id = :p AND a.patient_id "
    "= r.patient_id AND a.booked_at > s.sent_at AND a.booked_at <= s.sent_at + interval '30 days') OR EXISTS "
    "(SELECT 1 FROM vaccination v JOIN vaccination w ON w.practice_id = v.practice_id AND w.patient_id = "
    "v.patient_id AND w.vaccine_name = v.vaccine_name AND w.id <> v.id WHERE v.practice_id = :p AND v.id = "
    "r.vaccination_id AND w.given_on - (s.sent_at AT TIME ZONE 'Europe/Amsterdam')::date BETWEEN 0 AND 30))))"
    "::float / nullif(count(*), 0) FROM reminder r WHERE r.practice_id = :p AND r.status <> 'cancelled' "
    "AND r.due_on BETWEEN :start AND :end",
    "lab_revenue": "SELECT nullif(sum(l.line_excl_cents), 0) / 100.0 FROM invoice_line l JOIN invoice i "
    "ON i.practice_id = l.practice_id AND i.id = l.invoice_id JOIN product p ON p.id = l.product_id "
    "WHERE l.practice_id = :p AND p.kind = 'lab' AND i.issued_on BETWEEN :start AND :end",
    "receivables": "SELECT sum(greatest(i.total_incl_cents - coalesce((SELECT sum(amount_cents) FROM payment y "
    "WHERE y.practice_id = i.practice_id AND y.invoice_id = i.id), 0), 0)) / 100.0 FROM invoice i "
    "WHERE i.practice_id = :p AND i.status = 'issued'",
    "active_clients": "SELECT count(DISTINCT a.client_id) FROM visit v JOIN appointment a ON a.practice_id = "
    "v.practice_id AND a.id = v.appointment_id WHERE v.practice_id = :p AND date_trunc('month', v.started_at AT "
    "TIME ZONE 'Europe/Amsterdam') > date_trunc('month', CAST(:end AS date)) - interval '18 months' "
    "AND (v.started_at AT TIME ZONE 'Europe/Amsterdam')::date < date_trunc('month', CAST(:end AS date)) "
    "+ interval '1 month'",
}


def test_every_kpi_recomputed_from_the_source_tables_matches_the_marts(mart_world):
    db = mart_world.db
    refresh_all(db.app_engine, db.admin_engine)
    practice = mart_world.practices[1].practice_id
    with db.as_app(AccessContext.for_practices([practice])) as session:
        tiles = {t.kpi.key: t.value for t in kpis.overview(session, [practice], START, END).tiles}
        for key, sql in SOURCE.items():
            expected = session.scalar(text(sql), {"p": practice, "start": START, "end": END})
            expected = None if expected is None else float(expected)
            assert tiles[key] == (None if expected is None else pytest.approx(expected, rel=1e-9)), key
        no_shows = kpis.no_show_list(session, practice, START, END, limit=5)
        newest = session.scalars(
            text("SELECT starts_at FROM appointment WHERE practice_id = :p AND status = 'no_show' AND "
                 "(starts_at AT TIME ZONE 'Europe/Amsterdam')::date BETWEEN :start AND :end "
                 "ORDER BY starts_at DESC LIMIT 5"),
            {"p": practice, "start": START, "end": END},
        ).all()  # fmt: skip
        assert no_shows["starts_at"].to_list() == newest and newest
        assert no_shows["patient"].null_count() == 0
    assert tiles["visits"] > 0
    # Filled for a practice loaded from Animana: the roster and the reminders are VetConnect's own.
    assert 0 < tiles["utilisation"] < 1
    assert 0 < tiles["reminder_compliance"] < 1
    assert tiles["lab_revenue"] > 0  # the blood tests of the Animana price list are lab articles
    assert set(SOURCE) | {"new_clients", "retention"} == {k.key for k in kpis.KPIS}


def test_franchise_dashboard_renders_tiles_ranking_and_drill_down_for_a_franchise_manager(app_env):
    user = signed_in(app_env.db, "fm", "franchise_manager", app_env.practices)
    at = run_page("franchise_dashboard.py", user)
    assert not at.exception, at.exception
    assert at.title[0].value == "Franchise dashboard"
    labels = {m.label for m in at.metric}
    assert {"Revenue excl. VAT", "No-show rate", "Utilisation", "Active clients"} <= labels
    assert all(m.help for m in at.metric)  # every tile explains itself
    assert len(at.dataframe[0].value) == 2  # both practices ranked
    at.selectbox(key="franchise.rank_by").select("no_show_rate").run()
    assert not at.exception


def test_practice_dashboard_renders_for_a_practice_manager(app_env):
    practice = app_env.practices[0]
    user = signed_in(app_env.db, "pm", "practice_manager", [practice])
    at = run_page("practice_dashboard.py", user)
    assert not at.exception, at.exception
    assert at.title[0].value == practice.code
    assert {"Revenue incl. VAT", "Utilisation", "Receivables"} <= {m.label for m in at.metric}
    assert len(at.tabs) == 3
