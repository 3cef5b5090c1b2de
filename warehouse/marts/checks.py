"""Reconciliation of the marts with the record: the totals a dashboard shows must equal the source tables."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

# name -> (total over the marts, the same total straight from the source tables); :p is the practice.
TOTALS: dict[str, tuple[str, str]] = {
    "revenue_excl_cents": (
        "SELECT coalesce(sum(revenue_excl_cents), 0) FROM mart_practice_day WHERE practice_id = :p",
        "SELECT coalesce(sum(total_excl_cents), 0) FROM invoice WHERE practice_id = :p "
        "AND status NOT IN ('draft', 'void')",
    ),
    "revenue_incl_cents": (
        "SELECT coalesce(sum(revenue_incl_cents), 0) FROM mart_practice_day WHERE practice_id = :p",
        "SELECT coalesce(sum(total_incl_cents), 0) FROM invoice WHERE practice_id = :p "
        "AND status NOT IN ('draft', 'void')",
    ),
    "visits": (
        "SELECT coalesce(sum(visits), 0) FROM mart_practice_day WHERE practice_id = :p",
        "SELECT count(*) FROM visit WHERE practice_id = :p",
    ),
    "appointments": (
        "SELECT coalesce(sum(appts_booked), 0) FROM mart_practice_day WHERE practice_id = :p",
        "SELECT count(*) FROM appointment WHERE practice_id = :p",
    ),
    "appointments_by_resource": (
        "SELECT coalesce(sum(appts_booked), 0) FROM mart_staff_day WHERE practice_id = :p",
        "SELECT count(*) FROM appointment WHERE practice_id = :p",
    ),
    "no_shows": (
        "SELECT coalesce(sum(appts_no_show), 0) FROM mart_practice_day WHERE practice_id = :p",
        "SELECT count(*) FROM appointment WHERE practice_id = :p AND status = 'no_show'",
    ),
    "outstanding_cents": (
        "SELECT coalesce(sum(outstanding_cents), 0) FROM mart_open_invoice WHERE practice_id = :p",
        "SELECT coalesce(sum(greatest(i.total_incl_cents - coalesce((SELECT sum(amount_cents) FROM payment p "
        "WHERE p.practice_id = i.practice_id AND p.invoice_id = i.id), 0), 0)), 0) FROM invoice i "
        "WHERE i.practice_id = :p AND i.status = 'issued'",
    ),
}


@dataclass(frozen=True)
class Reconciliation:
    practice_id: int
    totals: dict[str, tuple[int, int]]  # name -> (mart, source)
    pending_days: int  # dirty days not yet refreshed: differences are expected while > 0

    @property
    def differences(self) -> dict[str, tuple[int, int]]:
        return {name: pair for name, pair in self.totals.items() if pair[0] != pair[1]}


def reconcile(session: Session, practice_id: int) -> Reconciliation:
    params = {"p": practice_id}
    totals = {
        name: (int(session.scalar(text(mart), params)), int(session.scalar(text(source), params)))
        for name, (mart, source) in TOTALS.items()
    }
    pending = int(session.scalar(text("SELECT count(*) FROM mart_dirty_day WHERE practice_id = :p"), params))
    return Reconciliation(practice_id, totals, pending)
