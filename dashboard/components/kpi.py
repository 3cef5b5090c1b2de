"""KPI tiles, cached mart reads and table downloads shared by the franchise and practice dashboards."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import polars as pl
import polars.selectors as cs
import streamlit as st

from dashboard.components.tables import Kind, Spec, for_download
from dashboard.runtime import app_runtime
from warehouse.kernel import formatting as fmt
from warehouse.kernel.tenancy import AccessContext, tenant_session
from warehouse.marts import kpis
from warehouse.marts.refresh import refresh_pending

TTL = 300  # seconds; the marts' refresh stamp (``version``) is in every key, so a refresh is seen at once
# A KPI's unit -> how a table shows it (dashboard.components.tables).
TABLE_KIND: dict[str, Kind] = {"eur": "euros", "pct": "percent", "ratio": "ratio", "count": "count"}


def _fmt(unit: str, value: float | None) -> str:
    if unit == "eur":
        return fmt.euros_whole(value)
    if unit == "pct":
        return fmt.percent(value)
    if unit == "ratio":
        return fmt.number(value, 2)
    return fmt.number(value)


def fresh(context: AccessContext, practice_ids: tuple[int, ...]) -> dt.datetime | None:
    """Bring the practices' marts up to date before a dashboard reads them (the work of the day so far: only
    the days changed since the last refresh are recomputed) and return their refresh stamp, the ``version``
    the cached reads below are keyed by."""
    with tenant_session(app_runtime().app_engine, context) as session:
        return refresh_pending(session, practice_ids)


def as_of(now: dt.datetime) -> None:
    """The moment the figures are current to, in the practice's local time."""
    st.caption(f"Figures as of {fmt.date_time(now)}")


@st.cache_data(ttl=TTL, max_entries=64, show_spinner=False)
def overview(
    context: AccessContext, practice_ids: tuple[int, ...], start: dt.date, end: dt.date,
    version: dt.datetime | None = None,
) -> kpis.Overview:  # fmt: skip
    # The access context is an argument, so the tenant is part of the cache key; so is the marts' version.
    with tenant_session(app_runtime().app_engine, context) as session:
        return kpis.overview(session, practice_ids, start, end)


@st.cache_data(ttl=TTL, max_entries=256, show_spinner=False)
def frame(
    context: AccessContext, name: str, practice_ids: tuple[int, ...], start: dt.date, end: dt.date,
    version: dt.datetime | None = None,
) -> pl.DataFrame:  # fmt: skip
    """One of the period read functions of ``warehouse.marts.kpis`` by name."""
    reader = {
        "monthly_trend": kpis.monthly_trend,
        "staff_breakdown": kpis.staff_breakdown,
        "department_breakdown": kpis.department_breakdown,
        "heatmap": kpis.heatmap,
        "compliance": kpis.compliance,
        "top_diagnoses": kpis.top_diagnoses,
    }[name]
    with tenant_session(app_runtime().app_engine, context) as session:
        return reader(session, practice_ids, start, end)


@st.cache_data(ttl=TTL, max_entries=64, show_spinner=False)
def ageing(
    context: AccessContext, practice_ids: tuple[int, ...], as_of: dt.date, version: dt.datetime | None = None
) -> pl.DataFrame:
    with tenant_session(app_runtime().app_engine, context) as session:
        return kpis.receivables_ageing(session, practice_ids, as_of)


@st.cache_data(ttl=60, max_entries=64, show_spinner=False)
def no_shows(context: AccessContext, practice_id: int, start: dt.date, end: dt.date) -> pl.DataFrame:
    with tenant_session(app_runtime().app_engine, context) as session:
        return kpis.no_show_list(session, practice_id, start, end)


def tiles(overview: kpis.Overview, keys: Sequence[str], *, columns: int = 4) -> None:
    """KPI tiles: value, change vs the previous period, the franchise median, the definition as tooltip."""
    chosen = [t for t in overview.tiles if t.kpi.key in keys]
    for offset in range(0, len(chosen), columns):
        for col, tile in zip(st.columns(columns), chosen[offset : offset + columns], strict=False):
            sign = "+" if (tile.change or 0) >= 0 else "-"  # ASCII minus: st.metric reads it for the arrow
            delta = (
                None if tile.change is None else f"{sign}{fmt.percent(abs(tile.change))} vs previous period"
            )
            median = (
                "" if tile.median is None else f"\n\nFranchise median: {_fmt(tile.kpi.unit, tile.median)}"
            )
            col.metric(
                tile.kpi.label,
                _fmt(tile.kpi.unit, tile.value),
                delta=delta,
                delta_color="normal" if tile.kpi.higher_is_better else "inverse",
                help=tile.kpi.definition + median,
                border=True,
            )
            if tile.median is not None:
                col.caption(f"median {_fmt(tile.kpi.unit, tile.median)}")


def downloads(
    table: pl.DataFrame, name: str, spec: Spec | None = None, zone: ZoneInfo = fmt.DEFAULT_TZ
) -> None:
    """CSV and Excel downloads of a table: machine values, under the page's labels when a spec is given; Excel's
    times are wall-clock times in ``zone`` (the practice's, on a practice's page)."""
    if spec is not None:
        table = for_download(table, spec)
    left, right = st.columns(2)
    left.download_button(
        "CSV", table.write_csv().encode(), file_name=f"{name}.csv", mime="text/csv", key=f"csv.{name}",
        icon=":material/download:",
    )  # fmt: skip
    buffer = io.BytesIO()
    # Excel has no time zones: write local wall-clock times.
    local = table.with_columns(
        cs.datetime(time_zone="*").dt.convert_time_zone(str(zone)).dt.replace_time_zone(None)
    )
    local.write_excel(buffer, worksheet=name[:31])
    right.download_button(
        "Excel", buffer.getvalue(), file_name=f"{name}.xlsx", key=f"xlsx.{name}", icon=":material/download:",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )  # fmt: skip


def period_picker(key: str, today: dt.date) -> tuple[dt.date, dt.date]:
    default = (today.replace(day=1) - dt.timedelta(days=365)).replace(day=1), today
    chosen = st.date_input("Period", value=default, key=f"{key}.period", format="DD-MM-YYYY")
    if isinstance(chosen, tuple) and len(chosen) == 2:
        return chosen[0], chosen[1]
    return default
