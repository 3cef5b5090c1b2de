"""The analyst read API: connect as an analyst under RLS and get polars frames.

``connect()`` signs in as the read-only ``vetconnect_analyst`` database role (NOBYPASSRLS, SELECT on the marts
and the non-secret record) and scopes every transaction to the practices of the analyst's memberships — the
same policies that protect the app. Notebooks call these functions; no credentials or SQL live in notebooks.

    from warehouse.marts import analysts
    an = analysts.connect()             # VETCONNECT_ANALYST (user name) and DATABASE_URL from the environment
    an.benchmark(start, end)            # KPIs per practice
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import polars as pl
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from warehouse.kernel.db import make_engine, normalise_url
from warehouse.kernel.tenancy import AccessContext, apply_context, system_session
from warehouse.marts import kpis
from warehouse.migrations.ddl import ANALYST_ROLE
from warehouse.security.accounts import practice_ids_for_user

ANALYST_ROLES = frozenset({"analyst", "franchise_admin", "franchise_manager"})


@dataclass
class Analyst:
    engine: Engine
    context: AccessContext
    username: str

    @property
    def practice_ids(self) -> tuple[int, ...]:
        return self.context.practice_ids

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-only transaction under the analyst's practice set."""
        with Session(self.engine) as session, session.begin():
            session.execute(text("SET TRANSACTION READ ONLY"))
            apply_context(session, self.context)
            yield session

    def _frame(self, sql: str, **params: object) -> pl.DataFrame:
        with self.session() as session:
            return kpis._frame(session, sql, {"ids": list(self.practice_ids), **params})  # noqa: SLF001

    # -- marts -----------------------------------------------------------------------------------------------
    def practices(self) -> pl.DataFrame:
        return self._frame("SELECT id AS practice_id, code, name, city FROM tenant WHERE kind = 'practice' "
                           "AND id = ANY(:ids) ORDER BY name")  # fmt: skip

    def benchmark(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Every KPI per practice for the period (see ``warehouse.marts.kpis.KPIS`` for the definitions)."""
        with self.session() as session:
            return kpis.overview(session, self.practice_ids, start, end).by_practice

    def monthly(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        with self.session() as session:
            return kpis.monthly_trend(session, self.practice_ids, start, end)

    def totals(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        with self.session() as session:
            return kpis.period_totals(session, self.practice_ids, start, end)

    # -- record-level extracts ---------------------------------------------------------------------------------
    def appointments(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        """One row per appointment: when, lead time, type, species, status, length, the invoice value of a
        completed visit of the same patient that day (the revenue a no-show would have brought)."""
        return self._frame(
            """
            SELECT a.practice_id, a.id AS appointment_id, a.client_id, a.patient_id, a.status,
                   (a.starts_at AT TIME ZONE pr.timezone) AS starts_local,
                   extract(isodow FROM a.starts_at AT TIME ZONE pr.timezone)::int AS weekday,
                   extract(hour FROM a.starts_at AT TIME ZONE pr.timezone)::int AS hour,
                   (a.starts_at::date - a.booked_at::date) AS lead_days,
                   (extract(epoch FROM a.ends_at - a.starts_at) / 60)::int AS minutes,
                   coalesce(t.code, '(none)') AS type, p.species, r.name AS resource
            FROM appointment a
            JOIN tenant pr ON pr.id = a.practice_id
            JOIN resource r ON r.practice_id = a.practice_id AND r.id = a.resource_id
            LEFT JOIN patient p ON p.practice_id = a.practice_id AND p.id = a.patient_id
            LEFT JOIN appointment_type t ON t.franchise_id = a.franchise_id AND t.id = a.appointment_type_id
            WHERE a.practice_id = ANY(:ids) AND (a.starts_at AT TIME ZONE pr.timezone)::date BETWEEN :start AND :end
            ORDER BY a.starts_at
            """,
            start=start,
            end=end,
        )

    def invoices(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        return self._frame(
            "SELECT practice_id, id AS invoice_id, client_id, issued_on, status, total_excl_cents, total_incl_cents "
            "FROM invoice WHERE practice_id = ANY(:ids) AND issued_on BETWEEN :start AND :end",
            start=start,
            end=end,
        )

    def client_visit_months(self) -> pl.DataFrame:
        """(practice, client, month) for every month with a visit: the raw material of retention cohorts."""
        return self._frame(
            """
            SELECT DISTINCT v.practice_id, a.client_id,
                   date_trunc('month', v.started_at AT TIME ZONE pr.timezone)::date AS month
            FROM visit v JOIN tenant pr ON pr.id = v.practice_id
            JOIN appointment a ON a.practice_id = v.practice_id AND a.id = v.appointment_id
            WHERE v.practice_id = ANY(:ids) AND a.client_id IS NOT NULL
            """
        )


def analyst_url(admin_url: str, password: str | None = None) -> str:
    return (
        make_url(normalise_url(admin_url))
        .set(username=ANALYST_ROLE, password=password)
        .render_as_string(hide_password=False)
    )


def connect(username: str | None = None, *, database_url: str | None = None) -> Analyst:
    """The analyst's practice set comes from their memberships (looked up once, through the audited system
    session); every read then runs as ``vetconnect_analyst`` under RLS."""
    username = username or os.environ.get("VETCONNECT_ANALYST")
    if not username:
        raise RuntimeError("set VETCONNECT_ANALYST to your VetConnect user name (or pass username=)")
    admin = database_url or os.environ.get("DATABASE_URL")
    if not admin:
        raise RuntimeError(
            "set DATABASE_URL (or pass database_url=); for the embedded server: "
            "export DATABASE_URL=$(vetconnect db url)"
        )
    admin_engine = make_engine(admin, pool_size=1)
    try:
        with system_session(admin_engine, reason=f"analytics: connect analyst {username}") as session:
            row = session.execute(
                text("SELECT u.id, array_agg(m.role) AS roles FROM app_user u JOIN membership m ON m.user_id = u.id "
                     "WHERE u.username = :u AND u.is_active GROUP BY u.id"), {"u": username},
            ).one_or_none()  # fmt: skip
            if row is None or not set(row.roles) & ANALYST_ROLES:
                raise PermissionError(f"{username} holds no analyst or franchise role")
            practice_ids = practice_ids_for_user(session, row.id)
    finally:
        admin_engine.dispose()
    engine = make_engine(analyst_url(admin, os.environ.get("VETCONNECT_ANALYST_DB_PASSWORD")), pool_size=2)
    return Analyst(engine, AccessContext.for_practices(practice_ids, user_id=row.id), username)
