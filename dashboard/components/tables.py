"""Tables as users read them: labelled columns, Dutch numbers, money, dates and local times, "–" for nothing.

A page describes its table once, ``{column: (label, kind)}``, and shows it with :func:`show`; columns left out
of the spec are not shown (ids, cents beside euros). :func:`labelled` is the pure part (a frame of display
strings under the labels), :func:`for_download` keeps machine values for CSV/Excel but under the same labels.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Literal
from zoneinfo import ZoneInfo

import polars as pl
import streamlit as st
from babel.dates import format_date

from warehouse.kernel import formatting as fmt

Kind = Literal[
    "text",
    "count",
    "number1",
    "ratio",
    "cents",
    "euros",
    "percent",
    "date",
    "month",
    "date_time",
    "time",
    "status",
]
Spec = Mapping[str, tuple[str, Kind]]


def _month(value: dt.date | None) -> str:
    return fmt.EMPTY if value is None else format_date(value, "MMM y", locale=fmt.LOCALE)


def _euros(value: float | None) -> str:
    return fmt.EMPTY if value is None else fmt.euros(round(value * 100))


# What a stored status reads as (appointments and invoices).
STATUS_LABELS = {"booked": "Booked", "checked_in": "Checked in", "in_consult": "In consult", "done": "Done",
                 "no_show": "No-show", "cancelled": "Cancelled", "draft": "Draft", "issued": "Issued",
                 "paid": "Paid", "credited": "Credited"}  # fmt: skip


def _status(value: str) -> str:
    return STATUS_LABELS.get(value, value.replace("_", " ").capitalize())


FORMATS: dict[str, Callable[[Any], str]] = {
    "text": lambda v: fmt.EMPTY if v is None or v == "" else str(v),
    "count": fmt.number,
    "number1": lambda v: fmt.number(v, 1),
    "ratio": lambda v: fmt.number(v, 2),
    "cents": fmt.euros,
    "euros": _euros,
    "percent": fmt.percent,
    "date": fmt.date,
    "month": _month,
    "date_time": fmt.date_time,
    "time": fmt.time,
    "status": _status,
}
RIGHT = {"count", "number1", "ratio", "cents", "euros", "percent"}  # figures line up on the right


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # NaN reads as missing too


# Kinds that read a timestamp in local time: the zone of the practice the table is about.
LOCAL_TIME = {"date", "date_time", "time"}


def labelled(frame: pl.DataFrame, spec: Spec, *, zone: ZoneInfo = fmt.DEFAULT_TZ) -> pl.DataFrame:
    """The spec's columns in its order, each formatted to display strings and named by its label (times in
    ``zone``)."""
    shown = {}
    for column, (label, kind) in spec.items():
        form = partial(FORMATS[kind], tz=zone) if kind in LOCAL_TIME else FORMATS[kind]
        shown[label] = [fmt.EMPTY if _missing(v) else form(v) for v in frame[column].to_list()]
    return pl.DataFrame(shown, schema=dict.fromkeys(shown, pl.String))


def show(frame: pl.DataFrame, spec: Spec, *, key: str | None = None, zone: ZoneInfo = fmt.DEFAULT_TZ) -> None:
    """``st.dataframe`` of :func:`labelled`, figures right-aligned, times in ``zone``."""
    config = {
        label: st.column_config.TextColumn(label, alignment="right" if kind in RIGHT else "left")
        for label, kind in spec.values()
    }
    st.dataframe(
        labelled(frame, spec, zone=zone), hide_index=True, width="stretch", column_config=config, key=key
    )


def for_download(frame: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """Machine values (numbers stay numbers for a spreadsheet) under the labels users read on the page."""
    return frame.select(pl.col(column).alias(label) for column, (label, _) in spec.items())
