"""Franchise dashboard: KPI tiles (vs previous period and franchise median), practices ranked and side by
side, trends with seasonality, drill-down franchise → practice → department/vet, downloads."""

from __future__ import annotations

import plotly.express as px
import polars as pl
import streamlit as st

from dashboard.components import kpi as ui
from dashboard.components import session as ctx
from warehouse.marts.kpis import KPI_BY_KEY, KPIS

TILES = ("revenue_excl", "visits", "atv", "no_show_rate", "utilisation", "active_clients", "retention",
         "new_clients", "vacc_compliance", "invoices_per_patient", "lab_revenue", "receivables")  # fmt: skip

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
overview = ui.overview(context, practice_ids, start, end)
st.caption(f"{start:%d-%m-%Y} – {end:%d-%m-%Y} · {len(practice_ids)} practice(s) · change vs the previous "
           "period of equal length; hover a tile for its definition")  # fmt: skip
ui.tiles(overview, TILES)

ranking, trends, drill = st.tabs(["Practices", "Trends", "Drill-down"])
with ranking:
    metric = st.selectbox(
        "Rank by", [k.key for k in KPIS], format_func=lambda k: KPI_BY_KEY[k].label, key="franchise.rank_by"
    )
    ranked = overview.by_practice.sort(
        metric, descending=KPI_BY_KEY[metric].higher_is_better, nulls_last=True
    )
    st.dataframe(ranked.drop("practice_id"), hide_index=True, width="stretch")
    ui.downloads(ranked, "practices")
    long = overview.by_practice.unpivot(
        index="practice", on=["revenue_excl", "visits", "no_show_rate", "utilisation", "retention", "atv"]
    )
    st.plotly_chart(
        px.bar(
            long.to_pandas(), x="practice", y="value", facet_col="variable", facet_col_wrap=3, height=520
        ).update_yaxes(matches=None, showticklabels=True),
        width="stretch",
    )
with trends:
    trend = ui.frame(context, "monthly_trend", practice_ids, start.replace(year=start.year - 1), end)
    if trend.height:
        measure = st.selectbox("Measure", ["revenue_excl", "visits", "appts_booked", "no_show_rate", "utilisation"],
                               key="franchise.trend_measure")  # fmt: skip
        shown = trend.with_columns(pl.col("practice_id").replace_strict(names, default="?").alias("practice"))
        st.plotly_chart(px.line(shown.to_pandas(), x="month", y=measure, color="practice", markers=True),
                        width="stretch")  # fmt: skip
        seasonal = (
            shown.group_by("year", "month_of_year").agg(pl.col(measure).sum()).sort("year", "month_of_year")
        )
        st.caption("Seasonality: all selected practices, one line per year")
        st.plotly_chart(
            px.line(seasonal.to_pandas(), x="month_of_year", y=measure, color=seasonal["year"].cast(pl.String),
                    markers=True), width="stretch",
        )  # fmt: skip
        ui.downloads(shown, "trend")
    else:
        st.info("No data in this period.")
with drill:
    practice = st.selectbox("Practice", practice_ids, format_func=lambda p: names[p], key="franchise.drill")
    departments = ui.frame(context, "department_breakdown", (practice,), start, end)
    staff = ui.frame(context, "staff_breakdown", (practice,), start, end)
    st.subheader(names[practice])
    if departments.height:
        st.dataframe(departments.drop("practice_id"), hide_index=True, width="stretch")
        department = st.selectbox(
            "Department", departments["department"].to_list(), key="franchise.department"
        )
        vets = staff.filter(pl.col("department") == department, pl.col("kind") == "staff")
        st.dataframe(vets.drop("practice_id", "resource_id"), hide_index=True, width="stretch")
        ui.downloads(vets, "staff")
    else:
        st.info("No appointments in this period.")
