"""What a user reads, in Dutch: numbers, money, percentages, dates and local times (Babel's CLDR data).

Pages, PDFs and messages format through these functions so that every figure a user sees has the same
form: ``84.075,8``, ``€ 84.075,80``, ``15,3 %``, ``do 3 dec 2026``, ``09:05`` in the practice's own time
zone. Stored values stay machine values (integer cents, UTC timestamps); only the display changes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, format_decimal, format_percent

LOCALE = "nl_NL"
DEFAULT_TZ = ZoneInfo("Europe/Amsterdam")
EMPTY = "–"  # what a missing value reads as (never "None")

Number = int | float | Decimal


def _plain(text: str) -> str:
    # CLDR puts a no-break space after the euro sign; a plain one reads the same, and what users type or
    # copy (and what tests look for) is a plain space.
    return text.replace("\xa0", " ")


def number(value: Number | None, decimals: int = 0) -> str:
    """``84075.8`` -> ``84.076`` (decimals=0) or ``84.075,8`` (decimals=1)."""
    if value is None:
        return EMPTY
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=LOCALE)


def measured(value: str | None) -> str:
    """A value as a lab or device sent it (a decimal point), in Dutch form with the decimals it came with:
    ``"18.2"`` -> ``18,2``, ``"0.450"`` -> ``0,450``, ``"1250"`` -> ``1.250``. Text that is not a plain number
    (``"negative"``, ``"<0.5"``) is shown as sent."""
    if value is None or not value.strip():
        return EMPTY
    try:
        parsed = Decimal(value.strip())
    except InvalidOperation:
        return value
    if not parsed.is_finite():
        return value
    return number(parsed, max(0, -int(parsed.as_tuple().exponent)))


def euros(cents: int | None) -> str:
    """Integer cents -> ``€ 1.234,50``."""
    if cents is None:
        return EMPTY
    return _plain(format_currency(Decimal(cents) / 100, "EUR", locale=LOCALE))


def euros_whole(amount: Number | None) -> str:
    """An amount in euros rounded to whole euros (KPI tiles): ``€ 84.076``."""
    if amount is None:
        return EMPTY
    return _plain(format_currency(amount, "EUR", format="¤ #,##0", locale=LOCALE, currency_digits=False))


def percent(fraction: Number | None, decimals: int = 1) -> str:
    """``0.153`` -> ``15,3 %``."""
    if fraction is None:
        return EMPTY
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "") + " %"
    return _plain(format_percent(fraction, format=pattern, locale=LOCALE))


def local(moment: dt.datetime, tz: ZoneInfo = DEFAULT_TZ) -> dt.datetime:
    """A stored (UTC or aware) timestamp in the practice's time zone; a naive one is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(tz)


def date(day: dt.date | dt.datetime | None, *, weekday: bool = False, tz: ZoneInfo = DEFAULT_TZ) -> str:
    """``do 3 dec 2026`` (weekday=True) or ``3 dec 2026``; a timestamp is first put in local time."""
    if day is None:
        return EMPTY
    if isinstance(day, dt.datetime):
        day = local(day, tz).date()
    return format_date(day, "EEE d MMM y" if weekday else "d MMM y", locale=LOCALE)


def time(moment: dt.datetime | None, tz: ZoneInfo = DEFAULT_TZ) -> str:
    """Local clock time ``09:05``."""
    if moment is None:
        return EMPTY
    return format_time(local(moment, tz), "HH:mm", locale=LOCALE)


def date_time(moment: dt.datetime | None, tz: ZoneInfo = DEFAULT_TZ) -> str:
    """Local ``3 dec 2026 09:05``."""
    if moment is None:
        return EMPTY
    return format_datetime(local(moment, tz), "d MMM y HH:mm", locale=LOCALE)
