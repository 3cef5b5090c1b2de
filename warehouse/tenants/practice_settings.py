"""The practice's own settings: the details its invoices must carry, and its invoice number series.

Both are written by the practice manager (``practice.settings`` at that practice) in a tenant session: the
application role may update only the six invoice-detail columns of a practice row it sees (migration 0350), and
``invoice_series`` is a practice table under RLS. Every change is in the practice's audit chain with old -> new:
the details by the trigger of migration 0350, a series by an entry written here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from warehouse.billing import numbering
from warehouse.billing.practice_details import PRACTICE_DETAILS, practice_detail_errors
from warehouse.kernel.audit import record
from warehouse.kernel.errors import DomainError
from warehouse.schema.operations import AuditLog
from warehouse.schema.tenancy import AppUser, Tenant
from warehouse.security.permissions import PRACTICE_SETTINGS, Actor, require

DETAIL_FIELDS = tuple(PRACTICE_DETAILS)  # address, postcode, city, vat_number, kvk_number, iban


class DetailsInvalid(DomainError):
    """Details the rules refuse; ``errors`` holds a message per field (nothing was saved)."""

    def __init__(self, errors: dict[str, str]) -> None:
        field, message = next(iter(errors.items()))
        super().__init__(field, message)
        self.errors = errors


def _practice(session: Session, practice_id: int) -> Tenant:
    practice = session.scalar(select(Tenant).where(Tenant.id == practice_id, Tenant.kind == "practice"))
    if practice is None:
        raise DomainError("practice", f"No practice {practice_id} is visible to you.")
    return practice


def practice_details(session: Session, practice_id: int) -> dict[str, str]:
    """The details as saved, per field ('' where none is saved yet)."""
    practice = _practice(session, practice_id)
    return {column: getattr(practice, column) or "" for column in DETAIL_FIELDS}


def normalised(values: Mapping[str, str | None]) -> dict[str, str]:
    """The details as they are kept and printed: trimmed; postcode "1016 GV"; VAT number and IBAN in capitals
    without spaces (their electronic form, as banks and the tax office exchange them)."""
    out = {column: " ".join((values.get(column) or "").split()) for column in DETAIL_FIELDS}
    postcode = out["postcode"].replace(" ", "").upper()
    out["postcode"] = f"{postcode[:4]} {postcode[4:]}" if len(postcode) == 6 else out["postcode"].upper()
    out["vat_number"] = out["vat_number"].replace(" ", "").upper()
    out["iban"] = out["iban"].replace(" ", "").upper()
    return out


def save_practice_details(
    session: Session, actor: Actor, *, practice_id: int, values: Mapping[str, str | None]
) -> dict[str, str]:
    """Save all six details or none: every field is checked first (all its errors at once, per field), then
    one UPDATE writes them. Returns the details as saved."""
    require(actor, PRACTICE_SETTINGS, practice_id)
    details = normalised(values)
    if errors := practice_detail_errors(details):
        raise DetailsInvalid(errors)
    practice = _practice(session, practice_id)
    for column, value in details.items():
        setattr(practice, column, value)
    session.flush()
    return details


@dataclass(frozen=True)
class SeriesOverview:
    """What the settings page says about the numbering: the series (as a pattern), how it came to be, the last
    number issued and the one the next issue takes."""

    pattern: str
    origin: str  # detected (continued from Animana / the invoices already there), default, configured
    last_issued: str | None
    next_number: str


def pattern(series: numbering.Series) -> str:
    """ "1001-YYYY-00001" style: what the numbers of a series look like."""
    return f"{series.prefix}{'YYYY-' if series.per_year else ''}{'N' * series.width}"


def series_overview(session: Session, practice_id: int, today: dt.date) -> SeriesOverview:
    upcoming, origin = numbering.next_number_preview(session, practice_id, today)
    row = numbering.series_of(session, practice_id)
    current = numbering.Series(row.prefix, row.per_year, row.width) if row else numbering.detect(upcoming)
    return SeriesOverview(
        pattern(current) if current else upcoming,
        origin,
        numbering.last_issued(session, practice_id),
        upcoming,
    )


def preview_series(
    session: Session, practice_id: int, *, prefix: str, per_year: bool, width: int | str, today: dt.date
) -> str:
    """The first number a series would give if set up today; raises ``SeriesError`` (at its field) for a
    series the rules refuse or whose first number repeats one already used."""
    series = numbering.validate_series(prefix, per_year, width)
    first = numbering.first_number(session, practice_id, series, today)
    if (used := numbering.collision(session, practice_id, first)) is not None:
        raise numbering.SeriesError(
            "prefix",
            f"Its first number {first} would repeat number {used}, already used; choose another prefix.",
        )
    return first


def set_up_invoice_series(
    session: Session, actor: Actor, *, practice_id: int, prefix: str, per_year: bool, width: int | str,
    today: dt.date, confirmed: bool,
) -> str:  # fmt: skip
    """Start numbering the practice's invoices in a new series, deliberately (``confirmed``: the manager saw
    the first number); returns that first number. The change is audited with the old and the new series."""
    require(actor, PRACTICE_SETTINGS, practice_id)
    first = preview_series(session, practice_id, prefix=prefix, per_year=per_year, width=width, today=today)
    if not confirmed:
        raise numbering.SeriesError("confirm", f"Confirm that the next invoice is numbered {first}.")
    before = series_overview(session, practice_id, today)
    series = numbering.set_up_series(session, practice_id, prefix=prefix, per_year=per_year, width=width,
                                     today=today, user_id=actor.user_id)  # fmt: skip
    record(session, practice_id=practice_id, action="set_up", entity="invoice_series", detail={
        "old": {"pattern": before.pattern, "origin": before.origin, "next_number": before.next_number},
        "new": {"pattern": pattern(series), "origin": "configured", "next_number": first},
    })  # fmt: skip
    return first


def _change_text(entry: AuditLog) -> str:
    if entry.entity == "invoice_series":
        old, new = entry.detail.get("old", {}), entry.detail.get("new", {})
        return f"invoice series {old.get('pattern')} → {new.get('pattern')} (next number {new.get('next_number')})"
    return "; ".join(f"{PRACTICE_DETAILS.get(column, column)} {change.get('old') or '(none)'} → {change.get('new') or '(none)'}"
                     for column, change in entry.detail.get("changes", {}).items())  # fmt: skip


def settings_history(session: Session, practice_id: int, *, limit: int = 10) -> pl.DataFrame:
    """The latest changes of the settings, newest first, from the practice's audit chain: ``at`` (UTC), ``by``
    (the colleague's name, None for a system change) and ``change`` (old → new)."""
    rows = session.execute(
        select(AuditLog, AppUser.full_name).outerjoin(AppUser, AppUser.id == AuditLog.actor_user_id)
        .where(AuditLog.practice_id == practice_id,
               ((AuditLog.entity == "practice_details") & (AuditLog.action == "update"))
               | ((AuditLog.entity == "invoice_series") & (AuditLog.action == "set_up")))
        .order_by(AuditLog.seq.desc()).limit(limit)
    ).all()  # fmt: skip
    return pl.DataFrame(
        {"at": [e.occurred_at for e, _ in rows], "by": [name for _, name in rows],
         "change": [_change_text(e) for e, _ in rows]},
        schema={"at": pl.Datetime("us", "UTC"), "by": pl.String, "change": pl.String},
    )  # fmt: skip
