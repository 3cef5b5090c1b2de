"""Franchise dashboard: KPI tiles (vs previous period and franchise median), practices ranked and side by
side, trends with seasonality, drill-down franchise → practice → department/vet, downloads."""

from __future__ import annotations

import plotly.express as px
import polars as pl
import streamlit as st

from dashboard.components import kpi as ui
from dashboard.components import session as ctx
from dashboard.components import tables
from warehouse.kernel import formatting as fmt
from warehouse.marts.kpis import KPI_BY_KEY, KPIS

TILES = ("revenue_excl", "visits", "atv", "no_show_rate", "utilisation", "active_clients", "retention",
         "new_clients", "vacc_compliance", "invoices_per_patient", "lab_revenue", "receivables")  # fmt: skip
DUTCH = {"separators": ",."}  # plotly: decimal comma, thousands dot
RANKING: tables.Spec = {"practice": ("Practice", "text"),
                        **{k.key: (k.label, ui.TABLE_KIND[k.unit]) for k in KPIS}}  # fmt: skip
TREND_MEASURES = {"revenue_excl": "Revenue excl. VAT", "visits": "Visits", "appts_booked": "Appointments",
                  "no_show_rate": "No-show rate", "utilisation": "Utilisation"}  # fmt: skip
TREND: tables.Spec = {"month": ("Month", "month"), "practice": ("Practice", "text"),
                      **{k: (label, ui.TABLE_KIND[KPI_BY_KEY[k].unit]) for k, label in TREND_MEASURES.items()}}  # fmt: skip
COUNTS: tables.Spec = {
    "appts_booked": ("Appointments", "count"), "appts_completed": ("Completed", "count"),
    "appts_no_show": ("No-shows", "count"), "appts_cancelled": ("Cancelled", "count"), "visits": ("Visits", "count"),
    "booked_minutes": ("Booked minutes", "count"), "shift_minutes": ("Shift minutes", "count"),
    "utilisation": ("Utilisation", "percent"),
}  # fmt: skip
DEPARTMENTS: tables.Spec = {"department": ("Department", "text"), **COUNTS}
STAFF: tables.Spec = {"resource": ("Vet", "text"), **COUNTS, "no_show_rate": ("No-show rate", "percent")}

user = ctx.user()
ctx.breadcrumbs("Franchise dashboard")
st.title("Franchise dashboard")
context = user.context
names = {p.id: p.name for p in user.practices}
left, right = st.columns([2, 3])
with left:
    start, end = ui.period_picker("franchise", ctx.now().date())
with right:
    chosen = st.multiselect(
        "Practices",
        list(names),
        default=list(names),
        format_func=lambda p: names[p],
        key="franchise.practices",
    )
practice_ids = tuple(sorted(chosen)) or tuple(sorted(names))
version = ui.fresh(context, practice_ids)
overview = ui.overview(context, practice_ids, start, end, version)
st.caption(f"{fmt.date(start)} – {fmt.date(end)} · {len(practice_ids)} practice(s) · figures as of "
           f"{fmt.date_time(ctx.now())} · change vs the previous period of equal length; hover a tile for its "
           "definition")  # fmt: skip
ui.tiles(overview, TILES)

ranking, trends, drill = st.tabs(["Practices", "Trends", "Drill-down"])
with ranking:
    metric = st.selectbox(
        "Rank by", [k.key for k in KPIS], format_func=lambda k: KPI_BY_KEY[k].label, key="franchise.rank_by"
    )
    ranked = overview.by_practice.sort(
        metric, descending=KPI_BY_KEY[metric].higher_is_better, nulls_last=True
    )
    tables.show(ranked, RANKING)
    ui.downloads(ranked, "practices", RANKING)
    long = overview.by_practice.unpivot(
        index="practice", on=["revenue_excl", "visits", "no_show_rate", "utilisation", "retention", "atv"]
    ).with_columns(pl.col("variable").replace_strict({k.key: k.label for k in KPIS}))
    st.plotly_chart(
        px.bar(
            long.to_pandas(),
            x="practice",
            y="value",
            facet_col="variable",
            facet_col_wrap=3,
            height=520,
            labels={"practice": "Practice", "value": "", "variable": ""},
        )
        .for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
        .update_yaxes(matches=None, showticklabels=True)
        .update_layout(**DUTCH),
        width="stretch",
    )
with trends:
    trend = ui.frame(context, "monthly_trend", practice_ids, start.replace(year=start.year - 1), end, version)
    if trend.height:
        measure = st.selectbox("Measure", list(TREND_MEASURES), format_func=TREND_MEASURES.__getitem__,
                               key="franchise.trend_measure")  # fmt: skip
        label = TREND_MEASURES[measure]
        shown = trend.with_columns(pl.col("practice_id").replace_strict(names, default="?").alias("practice"))
        st.plotly_chart(
            px.line(shown.to_pandas(), x="month", y=measure, color="practice", markers=True,
                    labels={"month": "Month", measure: label, "practice": "Practice"}).update_layout(**DUTCH),
            width="stretch",
        )  # fmt: skip
        seasonal = (
            shown.group_by("year", "month_of_year").agg(pl.col(measure).sum()).sort("year", "month_of_year")
        )
        st.caption("Seasonality: all selected practices, one line per year")
        st.plotly_chart(
            px.line(seasonal.to_pandas(), x="month_of_year", y=measure, color=seasonal["year"].cast(pl.String),
                    markers=True, labels={"month_of_year": "Month", measure: label, "color": "Year"})
            .update_layout(**DUTCH), width="stretch",
        )  # fmt: skip
        ui.downloads(shown, "trend", TREND)
    else:
        st.info("No data in this period.")
with drill:
    practice = st.selectbox("Practice", practice_ids, format_func=lambda p: names[p], key="franchise.drill")
    departments = ui.frame(context, "department_breakdown", (practice,), start, end, version)
    staff = ui.frame(context, "staff_breakdown", (practice,), start, end, version)
    st.subheader(names[practice])
    if departments.height:
        tables.show(departments, DEPARTMENTS)
        department = st.selectbox(
            "Department", departments["department"].to_list(), key="franchise.department"
        )
        vets = staff.filter(pl.col("department") == department, pl.col("kind") == "staff")
        tables.show(vets, STAFF)
        ui.downloads(vets, "staff", STAFF)
    else:
        st.info("No appointments in this period.")
