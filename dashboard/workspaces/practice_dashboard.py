"""Practice dashboard: the KPIs of one practice, utilisation by vet, weekday/hour heat map, no-shows,
receivables ageing, reminder and vaccination compliance."""

from __future__ import annotations

import datetime as dt

import plotly.express as px
import polars as pl
import streamlit as st

from dashboard.components import kpi as ui
from dashboard.components import session as ctx
from models.serving import expected_no_shows
from warehouse.tenancy import AccessContext

TILES = ("revenue_excl", "revenue_incl", "visits", "atv", "appts_booked", "no_show_rate", "utilisation",
         "active_clients", "retention", "new_clients", "vacc_compliance", "receivables")  # fmt: skip
WEEKDAYS = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}

user = ctx.user()
names = {p.id: p.name for p in user.practices}
practice_id = ctx.practice_choice() or st.selectbox(
    "Practice", list(names), format_func=lambda p: names[p], key="practice_dashboard.practice"
)
context = AccessContext.for_practices([practice_id], user_id=user.user_id)
ctx.breadcrumbs("Practice dashboard", names.get(practice_id, str(practice_id)))
st.title(names.get(practice_id, "Practice dashboard"))
start, end = ui.period_picker("practice", ctx.now().date())
overview = ui.overview(context, (practice_id,), start, end)
ui.tiles(overview, TILES)

schedule, money, care = st.tabs(["Schedule", "Receivables", "Compliance & diagnoses"])
with schedule:
    staff = ui.frame(context, "staff_breakdown", (practice_id,), start, end)
    vets = staff.filter(pl.col("kind") == "staff") if staff.height else staff
    st.subheader("Utilisation by vet")
    if vets.height:
        st.plotly_chart(px.bar(vets.to_pandas(), x="resource", y="utilisation", hover_data=["booked_minutes",
                        "shift_minutes", "appts_booked"]), width="stretch")  # fmt: skip
        st.dataframe(vets.drop("practice_id", "resource_id"), hide_index=True, width="stretch")
        ui.downloads(vets, "utilisation")
    heat = ui.frame(context, "heatmap", (practice_id,), start, end)
    st.subheader("Appointments by weekday and hour")
    if heat.height:
        grid = heat.with_columns(pl.col("weekday").replace_strict(WEEKDAYS).alias("day"))
        st.plotly_chart(px.density_heatmap(grid.to_pandas(), x="hour", y="day", z="appts_booked", histfunc="sum",
                        category_orders={"day": list(WEEKDAYS.values())}, nbinsx=24), width="stretch")  # fmt: skip
    st.subheader("No-shows")
    monday = ctx.now().date() - dt.timedelta(days=ctx.now().weekday())
    with ctx.tenant() as session:
        expected = expected_no_shows(session, practice_id, monday)
    if expected["scored"]:
        st.metric(
            "Expected no-shows this week", f"{expected['expected_no_shows']:.1f}",
            help=f"Sum of the no-show model's probabilities over the {expected['scored']} booked appointments "
            f"of the week starting {monday:%d-%m} (of {expected['appointments']} booked).",
        )  # fmt: skip
    else:
        st.caption("Expected no-shows this week: no promoted no-show model for this franchise yet.")
    missed = ui.no_shows(context, practice_id, start, end)
    st.dataframe(missed, hide_index=True, width="stretch")
    if missed.height:
        ui.downloads(missed, "no_shows")
with money:
    ageing = ui.ageing(context, (practice_id,), ctx.now().date())
    st.subheader("Receivables ageing (days since invoice date)")
    if ageing.height:
        st.plotly_chart(px.bar(ageing.to_pandas(), x="bucket", y="outstanding", text="invoices",
                               category_orders={"bucket": ["0-30", "31-60", "61-90", ">90"]}), width="stretch")  # fmt: skip
        ui.downloads(ageing, "receivables")
    else:
        st.info("Nothing outstanding.")
with care:
    comp = ui.frame(context, "compliance", (practice_id,), start, end)
    st.subheader("Vaccination and reminder compliance (by due month)")
    if comp.height:
        st.plotly_chart(px.line(comp.to_pandas(), x="month", y=["vacc_compliance", "reminder_compliance"],
                                markers=True), width="stretch")  # fmt: skip
        st.dataframe(comp, hide_index=True, width="stretch")
    st.subheader("Top diagnoses")
    st.dataframe(
        ui.frame(context, "top_diagnoses", (practice_id,), start, end), hide_index=True, width="stretch"
    )
