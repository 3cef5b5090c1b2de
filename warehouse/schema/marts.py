"""Marts: pre-aggregated facts for dashboards and notebooks, rebuilt from the record by ``warehouse.marts``.

Marts are derived: they reference only the tenant (a refresh, not a foreign key, keeps them consistent with
the record). Every mart is a practice table like any other (``practice_id`` leads every key, RLS forced), so a franchise
roll-up is a plain ``SUM`` over the rows the session may see. Days are the practice's local calendar days.

- ``mart_practice_day``: one row per practice and day with every additive measure (money in cents).
- ``mart_staff_day``: per bookable resource (vet, nurse, room): appointments, booked and shift minutes, visits.
- ``mart_appointment_type_day``: per appointment type (0 = no type).
- ``mart_hour_day``: per hour of the day (weekday/hour heat map).
- ``mart_diagnosis_day``: diagnoses per VeNom code/term.
- ``mart_practice_month``: client history measures (new, active in 18 months, 12-month retention).
- ``mart_open_invoice``: invoices with an outstanding amount (receivables; ageing is computed at read time).
- ``mart_dirty_day``: the change queue — practice-days whose source rows changed since the last refresh,
  filled by statement-level triggers on the source tables (migration 0006).
- ``mart_refresh``: when a practice's marts were last recomputed (the dashboards' "as of").
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKeyConstraint, Index, SmallInteger, String, func
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema.base import Base, practice_table


def _tenant_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["practice_id"], ["tenant.id"])


def _measure() -> Mapped[int]:
    return mapped_column(server_default="0")


class MartPracticeDay(Base):
    __tablename__ = "mart_practice_day"
    __table_args__ = (_tenant_fk(), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    revenue_excl_cents: Mapped[int] = _measure()
    revenue_incl_cents: Mapped[int] = _measure()
    invoices: Mapped[int] = _measure()  # issued invoices, credit notes excluded
    credit_notes: Mapped[int] = _measure()
    lab_revenue_excl_cents: Mapped[int] = _measure()
    visits: Mapped[int] = _measure()
    patients_seen: Mapped[int] = _measure()  # distinct patients with a visit that day
    appts_booked: Mapped[int] = _measure()  # every appointment scheduled for the day, whatever its status
    appts_completed: Mapped[int] = _measure()
    appts_cancelled: Mapped[int] = _measure()
    appts_no_show: Mapped[int] = _measure()
    booked_minutes: Mapped[int] = _measure()  # not cancelled, on resources with a shift that day
    shift_minutes: Mapped[int] = _measure()
    vacc_due: Mapped[int] = _measure()  # vaccinations whose booster falls due that day
    vacc_done_30d: Mapped[int] = _measure()  # … of which given within 30 days of the due date
    reminders_due: Mapped[int] = _measure()
    reminders_done: Mapped[int] = _measure()


class MartStaffDay(Base):
    __tablename__ = "mart_staff_day"
    __table_args__ = (_tenant_fk(), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    resource_id: Mapped[int] = mapped_column(primary_key=True)
    appts_booked: Mapped[int] = _measure()
    appts_completed: Mapped[int] = _measure()
    appts_cancelled: Mapped[int] = _measure()
    appts_no_show: Mapped[int] = _measure()
    booked_minutes: Mapped[int] = _measure()  # not cancelled
    shift_minutes: Mapped[int] = _measure()
    visits: Mapped[int] = _measure()


class MartAppointmentTypeDay(Base):
    __tablename__ = "mart_appointment_type_day"
    __table_args__ = (_tenant_fk(), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    appointment_type_id: Mapped[int] = mapped_column(primary_key=True)  # 0: no type
    appts_booked: Mapped[int] = _measure()
    appts_completed: Mapped[int] = _measure()
    appts_cancelled: Mapped[int] = _measure()
    appts_no_show: Mapped[int] = _measure()
    booked_minutes: Mapped[int] = _measure()


class MartHourDay(Base):
    __tablename__ = "mart_hour_day"
    __table_args__ = (_tenant_fk(), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    appts_booked: Mapped[int] = _measure()
    appts_no_show: Mapped[int] = _measure()
    booked_minutes: Mapped[int] = _measure()


class MartDiagnosisDay(Base):
    __tablename__ = "mart_diagnosis_day"
    __table_args__ = (_tenant_fk(), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    venom_code: Mapped[str] = mapped_column(String(16), primary_key=True)  # '' when uncoded
    term: Mapped[str] = mapped_column(String(200), primary_key=True)
    diagnoses: Mapped[int] = _measure()


class MartPracticeMonth(Base):
    __tablename__ = "mart_practice_month"
    __table_args__ = (_tenant_fk(), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)  # first day of the month
    active_clients: Mapped[int] = _measure()  # a visit in the 18 months up to this month's end
    new_clients: Mapped[int] = _measure()  # first visit ever at the practice in this month
    retention_base: Mapped[int] = _measure()  # clients with a visit in months m-23 … m-12
    retained_clients: Mapped[int] = _measure()  # … of whom also a visit in months m-11 … m


class MartOpenInvoice(Base):
    __tablename__ = "mart_open_invoice"
    __table_args__ = (_tenant_fk(), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int]
    issued_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    total_incl_cents: Mapped[int]
    paid_cents: Mapped[int]
    outstanding_cents: Mapped[int]


class MartDirtyDay(Base):
    """A practice-day to recompute. Triggers insert (old and new day of every written row); a refresh deletes
    the rows it recomputes in the same transaction, so a failed refresh leaves the queue as it was."""

    __tablename__ = "mart_dirty_day"
    __table_args__ = (_tenant_fk(), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    marked_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class MartRefresh(Base):
    """When the practice's marts were last recomputed; written in the refresh's own transaction."""

    __tablename__ = "mart_refresh"
    __table_args__ = (_tenant_fk(), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    refreshed_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


Index("ix_mart_open_invoice_issued", MartOpenInvoice.practice_id, MartOpenInvoice.issued_on)
