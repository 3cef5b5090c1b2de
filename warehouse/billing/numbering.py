"""Invoice number series: unique and gapless within the series the practice uses.

A practice that moves from Animana keeps its numbering: its synced invoices run to, say, "1001-2026-00885",
so the first invoice issued here is "1001-2026-00886" — the series is detected from its latest invoice and
continued after the highest number of that series. A practice without invoices starts the default series
(per year, "2026-000001"); a practice may also set up a new series deliberately (its own prefix, per year or
running on), from the first number that is still free.

The counter lives in one row per practice (``invoice_series``). Issuing locks that row, increments it and
writes the number in the same transaction: concurrent issuers of one practice take turns, a rolled-back issue
rolls the counter back with it, so the series never has a gap or a duplicate. Issuers of other practices
never wait on each other.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from warehouse.kernel.errors import DomainError
from warehouse.schema.billing import Invoice, InvoiceSeries

DRAFT_PREFIX = "CONCEPT-"
DEFAULT_WIDTH = 6
MAX_PREFIX = 12
_PER_YEAR = re.compile(r"^(?P<prefix>.*?)(?P<year>(?:19|20)\d\d)-(?P<seq>\d+)$")
_RUNNING = re.compile(r"^(?P<prefix>.*?)(?P<seq>\d+)$")
_PREFIX_CHARS = re.compile(r"^[A-Za-z0-9/.\-]*$")


class SeriesError(DomainError):
    """A series the rules refuse; ``field`` names the form field."""


@dataclass(frozen=True)
class Series:
    """``{prefix}{year}-{seq}`` when per year, else ``{prefix}{seq}``; ``seq`` zero-padded to ``width``."""

    prefix: str
    per_year: bool
    width: int

    def format(self, year: int, seq: int) -> str:
        return f"{self.prefix}{f'{year}-' if self.per_year else ''}{seq:0{self.width}d}"

    def parse(self, number: str) -> tuple[int | None, int] | None:
        """``(year, seq)`` of a number of this series (``year`` None when it runs on), else None."""
        if not number.startswith(self.prefix):
            return None
        rest = number[len(self.prefix) :]
        if self.per_year:
            found = re.fullmatch(r"(\d{4})-(\d+)", rest)
            return (int(found[1]), int(found[2])) if found and len(found[2]) >= self.width else None
        return (None, int(rest)) if rest.isdigit() and len(rest) >= self.width else None


DEFAULT_SERIES = Series("", True, DEFAULT_WIDTH)


def detect(number: str) -> Series | None:
    """The series a number belongs to: "1001-2026-00885" is per year with prefix "1001-", width 5; "F00123"
    runs on with prefix "F". None for a number without a trailing sequence."""
    if found := _PER_YEAR.match(number):
        prefix, seq = found["prefix"], found["seq"]
        per_year = True
    elif found := _RUNNING.match(number):
        prefix, seq = found["prefix"], found["seq"]
        per_year = False
    else:
        return None
    if len(prefix) > MAX_PREFIX or len(seq) > 12:
        return None
    return Series(prefix, per_year, len(seq))


def highest(numbers: list[str], series: Series, year: int) -> int:
    """The highest sequence number of ``series`` among ``numbers`` (in ``year`` when it is per year)."""
    seqs = [
        parsed[1]
        for parsed in map(series.parse, numbers)
        if parsed is not None and (not series.per_year or parsed[0] == year)
    ]
    return max(seqs, default=0)


def validate_series(prefix: str, per_year: bool, width: int | str) -> Series:
    """A series as a practice sets it up: a short prefix of letters, digits and - / ., 3 to 10 digits."""
    prefix = (prefix or "").strip()
    if len(prefix) > MAX_PREFIX or not _PREFIX_CHARS.match(prefix):
        raise SeriesError("prefix", f"A prefix is at most {MAX_PREFIX} letters, digits, '-', '/' or '.'.")
    if prefix.startswith(DRAFT_PREFIX[:-1]):
        raise SeriesError("prefix", "CONCEPT marks drafts; choose another prefix.")
    if not per_year and prefix[-1:].isdigit():
        raise SeriesError("prefix", "A prefix of a running series ends in a letter or '-', not in a digit.")
    try:
        digits = int(width)
    except ValueError:
        raise SeriesError("width", "Enter the number of digits, 3 to 10.") from None
    if not 3 <= digits <= 10:
        raise SeriesError("width", "Enter the number of digits, 3 to 10.")
    return Series(prefix, per_year, digits)


def _numbers_like(session: Session, practice_id: int, series: Series) -> list[str]:
    return list(session.scalars(select(Invoice.number).where(
        Invoice.practice_id == practice_id, Invoice.status != "draft",
        Invoice.number.startswith(series.prefix, autoescape=True))))  # fmt: skip


def _detected(session: Session, practice_id: int, year: int) -> tuple[Series, int, str]:
    """The practice's existing series (its synced invoices first, else any issued one) and its highest number
    so far; the default series when the practice has issued nothing yet."""
    for synced in (True, False):
        query = select(Invoice.number).where(
            Invoice.practice_id == practice_id, Invoice.status != "draft", ~Invoice.number.startswith(DRAFT_PREFIX)
        )  # fmt: skip
        if synced:
            query = query.where(Invoice.animana_id.is_not(None))
        latest = session.scalar(query.order_by(Invoice.issued_on.desc(), Invoice.id.desc()).limit(1))
        if latest is not None and (series := detect(latest)) is not None:
            return series, highest(_numbers_like(session, practice_id, series), series, year), "detected"
    return (
        DEFAULT_SERIES,
        highest(_numbers_like(session, practice_id, DEFAULT_SERIES), DEFAULT_SERIES, year),
        "default",
    )


def series_of(session: Session, practice_id: int) -> InvoiceSeries | None:
    return session.scalar(select(InvoiceSeries).where(InvoiceSeries.practice_id == practice_id))


def _locked_series(session: Session, practice_id: int, year: int) -> InvoiceSeries:
    """The practice's series row, locked for this transaction; created (detected) on the first issue. Two
    first issuers both try the insert: the second waits on the key and then finds the first one's row."""
    query = (
        select(InvoiceSeries).where(InvoiceSeries.practice_id == practice_id).with_for_update()
        .execution_options(populate_existing=True)
    )  # fmt: skip
    row = session.scalar(query)
    if row is None:
        series, last, origin = _detected(session, practice_id, year)
        session.execute(
            insert(InvoiceSeries).values(practice_id=practice_id, prefix=series.prefix, per_year=series.per_year,
                                         width=series.width, year=year if series.per_year else None,
                                         last_number=last, origin=origin).on_conflict_do_nothing()
        )  # fmt: skip
        row = session.scalar(query)
        assert row is not None  # inserted above or by the concurrent issuer we waited for
    return row


def take_number(session: Session, practice_id: int, issued_on: dt.date) -> str:
    """The next number of the practice's series, counted under the series row's lock (held until commit)."""
    row = _locked_series(session, practice_id, issued_on.year)
    series = Series(row.prefix, row.per_year, row.width)
    if row.per_year:
        assert row.year is not None
        if issued_on.year < row.year:
            raise SeriesError(
                "issued_on", f"The invoice series is in {row.year} already; it cannot number an invoice of "
                f"{issued_on.year}.",
            )  # fmt: skip
        if issued_on.year > row.year:  # a new year starts its numbers again, after any already there
            row.year = issued_on.year
            row.last_number = highest(_numbers_like(session, practice_id, series), series, row.year)
    row.last_number += 1
    session.flush()
    return series.format(row.year or issued_on.year, row.last_number)


def set_up_series(
    session: Session, practice_id: int, *, prefix: str, per_year: bool, width: int | str, today: dt.date,
    user_id: int | None,
) -> Series:  # fmt: skip
    """A new series the practice chose; it continues after any number of that series already issued, so a
    series set up again never repeats a number."""
    series = validate_series(prefix, per_year, width)
    row = _locked_series(session, practice_id, today.year)
    last = highest(_numbers_like(session, practice_id, series), series, today.year)
    if (used := collision(session, practice_id, series.format(today.year, last + 1))) is not None:
        raise SeriesError("prefix", f"Its first number {series.format(today.year, last + 1)} would repeat number "
                                    f"{used}, already used; choose another prefix.")  # fmt: skip
    row.prefix, row.per_year, row.width = series.prefix, series.per_year, series.width
    row.year = today.year if series.per_year else None
    row.last_number = last
    row.origin, row.created_by = "configured", user_id
    session.flush()
    return series


def collision(session: Session, practice_id: int, number: str) -> str | None:
    """A number of the practice's invoices (any status) that ``number`` repeats, ignoring case ("f0007" repeats
    "F0007": the same number to a reader, an accountant or the tax office); None when it is free. Uses the
    lower-cased number the search keeps indexed (migration 0307)."""
    return session.scalar(select(Invoice.number).where(
        Invoice.practice_id == practice_id, Invoice.search_number == number.lower()).limit(1))  # fmt: skip


def first_number(session: Session, practice_id: int, series: Series, today: dt.date) -> str:
    """The number a series set up today would give first: after any number of it already issued."""
    return series.format(
        today.year, highest(_numbers_like(session, practice_id, series), series, today.year) + 1
    )


def last_issued(session: Session, practice_id: int) -> str | None:
    """The number of the practice's latest issued invoice or credit note (synced or issued here)."""
    return session.scalar(select(Invoice.number).where(
        Invoice.practice_id == practice_id, Invoice.status != "draft", ~Invoice.number.startswith(DRAFT_PREFIX))
        .order_by(Invoice.issued_on.desc().nulls_last(), Invoice.id.desc()).limit(1))  # fmt: skip


def next_number_preview(session: Session, practice_id: int, today: dt.date) -> tuple[str, str]:
    """The number the next issue would take, and how the series came to be (for the page; takes no lock)."""
    row = series_of(session, practice_id)
    if row is None:
        series, last, origin = _detected(session, practice_id, today.year)
        return series.format(today.year, last + 1), origin
    series = Series(row.prefix, row.per_year, row.width)
    if row.per_year and row.year is not None and today.year > row.year:
        last = highest(_numbers_like(session, practice_id, series), series, today.year)
        return series.format(today.year, last + 1), row.origin
    return series.format(row.year or today.year, row.last_number + 1), row.origin
