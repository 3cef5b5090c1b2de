"""The Animana write-back as users read it: the markers on records not yet in step with Animana, the
Integration page's status table and the values of a conflict: English words, Dutch dates and numbers.

The pure parts (:func:`status_table`, :func:`duration`, :func:`readable`) take data and return what is shown;
:func:`markers` and :func:`badge` are the one place the workspaces get their markers from."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import streamlit as st
from babel.numbers import format_decimal
from sqlalchemy.orm import Session

from warehouse.integration.markers import Marker, RecordRef, writeback_markers
from warehouse.integration.modes import MODE_LABELS
from warehouse.integration.status import ModuleStatus
from warehouse.kernel import formatting as fmt

MARKER_TEXT: dict[Marker, str] = {
    "pending": "⟳ being written to Animana",
    "dead": "⚠ not delivered to Animana",
    "conflict": "⚠ conflict with Animana",
}
_MARKER_COLOUR = {"pending": "blue", "dead": "red", "conflict": "orange"}
# "Hybrid (VetConnect writes, Animana is kept up to date)" → the name "Hybrid" and what it means.
MODE_NAMES = {mode: label.split(" (")[0] for mode, label in MODE_LABELS.items()}
MODE_MEANINGS = {mode: label.split(" (", 1)[1].rstrip(")") for mode, label in MODE_LABELS.items()}
SIDE_NAMES = {"local": "VetConnect", "animana": "Animana"}


def markers(session: Session, practice_id: int, records: Iterable[RecordRef]) -> dict[RecordRef, str]:
    """The marker text of each of these records that is not in step with Animana (one query)."""
    return {ref: MARKER_TEXT[m] for ref, m in writeback_markers(session, practice_id, records).items()}


def badge(marker_text: str | None) -> None:
    """A record's marker as a small coloured label (nothing for a record in step)."""
    if marker_text:
        kind = next(k for k, t in MARKER_TEXT.items() if t == marker_text)
        st.badge(marker_text, color=_MARKER_COLOUR[kind])


def duration(seconds: float | None) -> str:
    """``45 s`` → ``< 1 min``, ``3 min``, ``2 h 05 min``, ``3 d 4 h``; nothing → ``–``."""
    if seconds is None:
        return fmt.EMPTY
    minutes = int(seconds // 60)
    if minutes < 1:
        return "< 1 min"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


STATUS_SPEC = {
    "module": ("Module", "text"),
    "mode": ("Mode", "text"),
    "last_sync": ("Last sync", "date_time"),
    "lag": ("Sync lag", "text"),
    "depth": ("Queue", "count"),
    "oldest": ("Oldest waiting", "date_time"),
    "dead": ("Not delivered", "count"),
    "conflicts": ("Open conflicts", "count"),
    "attention": ("Attention", "text"),
}


def status_table(statuses: list[ModuleStatus]) -> pl.DataFrame:
    """One row per module, the columns of :data:`STATUS_SPEC` (``tables.show`` formats and labels them)."""
    return pl.DataFrame(
        [
            {
                "module": s.module_label,
                "mode": MODE_NAMES[s.mode],
                "last_sync": s.last_sync,
                "lag": duration(s.sync_lag_s),
                "depth": s.outbox_depth,
                "oldest": s.oldest_pending,
                "dead": s.dead_letters,
                "conflicts": s.open_conflicts,
                "attention": "; ".join(s.attention),
            }
            for s in statuses
        ],
        schema={"module": pl.String, "mode": pl.String, "last_sync": pl.Datetime(time_zone="UTC"),
                "lag": pl.String, "depth": pl.Int64, "oldest": pl.Datetime(time_zone="UTC"),
                "dead": pl.Int64, "conflicts": pl.Int64, "attention": pl.String},
    )  # fmt: skip


def readable(column: str, value: Any, zone: ZoneInfo = fmt.DEFAULT_TZ) -> str:
    """One value of a conflict's field as a person reads it: Dutch local date and time, ``1.234,5``, euros for
    cents, yes/no."""
    if value is None or value == "":
        return fmt.EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return fmt.date_time(value, zone)
    if isinstance(value, dt.date) or (isinstance(value, str) and _is_iso_date(value)):
        return fmt.date(dt.date.fromisoformat(value) if isinstance(value, str) else value)
    if column.endswith("_cents") and isinstance(value, int):
        return fmt.euros(value)
    if isinstance(value, int | float | Decimal):
        return format_decimal(value, locale=fmt.LOCALE)
    if column == "status":
        return str(value).replace("_", " ")  # "checked_in" → "checked in", as the agenda shows it
    return str(value)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # how JSON carries a date column


def _is_iso_date(value: str) -> bool:
    if not _ISO_DATE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True
