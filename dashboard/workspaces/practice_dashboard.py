"""Practice dashboard: the KPIs of one practice, utilisation by vet, weekday/hour heat map, no-shows,
receivables ageing, reminder and vaccination compliance."""

from __future__ import annotations

import datetime as dt

import plotly.express as px
import polars as pl
import streamlit as st

from dashboard.components import kpi as ui
from dashboard.components import session as ctx
from dashboard.components import tables
from models.serving import expected_no_shows
from warehouse.kernel import formatting as fmt
from warehouse.kernel.tenancy import AccessContext

TILES = ("revenue_excl", "revenue_incl", "visits", "atv", "appts_booked", "no_show_rate", "utilisation",
         "active_clients", "retention", "new_clients", "vacc_compliance", "receivables")  # fmt: skip
WEEKDAYS = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}
DUTCH = {"separators": ",."}  # plotly: decimal comma, thousands dot
STAFF: tables.Spec = {
    "resource": ("Vet", "text"), "department": ("Department", "text"), "appts_booked": ("Appointments", "count"),
    "appts_completed": ("Completed", "count"), "appts_no_show": ("No-shows", "count"),
    "appts_cancelled": ("Cancelled", "count"), "visits": ("Visits", "count"),
    "booked_minutes": ("Booked minutes", "count"), "shift_minutes": ("Shift minutes", "count"),
    "utilisation": ("Utilisation", "percent"), "no_show_rate": ("No-show rate", "percent"),
}  # fmt: skip
NO_SHOWS: tables.Spec = {
    "starts_at": ("Appointment", "date_time"), "patient": ("Patient", "text"), "client": ("Client", "text"),
    "resource": ("With", "text"), "type": ("Type", "text"), "lead_days": ("Booked days ahead", "count"),
}  # fmt: skip
AGEING: tables.Spec = {
    "bucket": ("Days since invoice date", "text"), "invoices": ("Invoices", "count"),
    "outstanding": ("Outstanding", "euros"),
}  # fmt: skip
COMPLIANCE: tables.Spec = {
    "month": ("Due month", "month"), "vacc_due": ("Boosters due", "count"),
    "vacc_done_30d": ("Given within 30 days", "count"), "vacc_compliance": ("Vaccination compliance", "percent"),
    "reminders_due": ("Reminders due", "count"), "reminders_done": ("Reminders that worked", "count"),
    "reminder_compliance": ("Reminder compliance", "percent"),
}  # fmt: skip
DIAGNOSES: tables.Spec = {
    "venom_code": ("VeNom code", "text"),
    "term": ("Diagnosis", "text"),
    "diagnoses": ("Diagnoses", "count"),
}

user = ctx.user()
names = {p.id: p.name for p in user.practices}
practice_id = ctx.practice_choice() or st.selectbox(
    "Practice", list(names), format_func=lambda p: names[p], key="practice_dashboard.practice"
)
context = AccessContext.for_practices([practice_id], user_id=user.user_id)
ctx.breadcrumbs("Practice dashboard", names.get(practice_id, str(practice_id)))
st.title(names.get(practice_id, "Practice dashboard"))
start, end = ui.period_picker("practice", ctx.now().date())
version = ui.fresh(context, (practice_id,))
ui.as_of(ctx.now())
overview = ui.overview(context, (practice_id,), start, end, version)
ui.tiles(overview, TILES)

schedule, money, care = st.tabs(["Schedule", "Receivables", "Compliance & diagnoses"])
with schedule:
    staff = ui.frame(context, "staff_breakdown", (practice_id,), start, end, version)
    vets = staff.filter(pl.col("kind") == "staff") if staff.height else staff
    st.subheader("Utilisation by vet")
    if vets.height:
        chart = px.bar(vets.to_pandas(), x="resource", y="utilisation", labels={"resource": "Vet",
                       "utilisation": "Utilisation"}).update_layout(**DUTCH).update_yaxes(tickformat=".0%")  # fmt: skip
        st.plotly_chart(chart, width="stretch")
        tables.show(vets, STAFF)
        ui.downloads(vets, "utilisation", STAFF, ctx.zone(practice_id))
    heat = ui.frame(context, "heatmap", (practice_id,), start, end, version)
    st.subheader("Appointments by weekday and hour (local time)")
    if heat.height:
        grid = heat.with_columns(pl.col("weekday").replace_strict(WEEKDAYS).alias("day"))
        chart = px.density_heatmap(
            grid.to_pandas(), x="hour", y="day", z="appts_booked", histfunc="sum", nbinsx=24,
            category_orders={"day": list(WEEKDAYS.values())},
            labels={"hour": "Hour (local time)", "day": "Day", "appts_booked": "Appointments"},
        ).update_layout(**DUTCH)  # fmt: skip
        st.plotly_chart(chart, width="stretch")
    st.subheader("No-shows")
    monday = ctx.now().date() - dt.timedelta(days=ctx.now().weekday())
    with ctx.tenant() as session:
        expected = expected_no_shows(session, practice_id, monday)
    if expected["scored"]:
        st.metric(
            "Expected no-shows this week", fmt.number(expected["expected_no_shows"], 1),
            help=f"Sum of the no-show model's probabilities over the {fmt.number(expected['scored'])} booked "
            f"appointments of the week starting {fmt.date(monday)} (of {fmt.number(expected['appointments'])} booked).",
        )  # fmt: skip
    else:
        st.caption("Expected no-shows this week: no promoted no-show model for this franchise yet.")
    missed = ui.no_shows(context, practice_id, start, end)
    if missed.height:
        tables.show(missed, NO_SHOWS)
        ui.downloads(missed, "no_shows", NO_SHOWS, ctx.zone(practice_id))
    else:
        st.caption("No no-shows in this period.")
with money:
    ageing = ui.ageing(context, (practice_id,), ctx.now().date(), version)
    st.subheader("Receivables ageing (days since invoice date)")
    if ageing.height:
        chart = px.bar(
            ageing.to_pandas(), x="bucket", y="outstanding", text="invoices",
            category_orders={"bucket": ["0-30", "31-60", "61-90", ">90"]},
            labels={"bucket": "Days since invoice date", "outstanding": "Outstanding (€)", "invoices": "Invoices"},
        ).update_layout(**DUTCH)  # fmt: skip
        st.plotly_chart(chart, width="stretch")
        tables.show(ageing, AGEING)
        ui.downloads(ageing, "receivables", AGEING, ctx.zone(practice_id))
    else:
        st.info("Nothing outstanding.")
with care:
    comp = ui.frame(context, "compliance", (practice_id,), start, end, version)
    st.subheader("Vaccination and reminder compliance (by due month)")
    if comp.height:
        shares = comp.unpivot(index="month", on=["vacc_compliance", "reminder_compliance"]).with_columns(
            pl.col("variable").replace_strict(
                {k: COMPLIANCE[k][0] for k in ("vacc_compliance", "reminder_compliance")}
            )  # fmt: skip
        )
        chart = px.line(shares.to_pandas(), x="month", y="value", color="variable", markers=True,
                        labels={"month": "Due month", "value": "Compliance", "variable": ""})  # fmt: skip
        st.plotly_chart(chart.update_layout(**DUTCH).update_yaxes(tickformat=".0%"), width="stretch")
        tables.show(comp, COMPLIANCE)
    st.subheader("Top diagnoses")
    diagnoses = ui.frame(context, "top_diagnoses", (practice_id,), start, end, version)
    if diagnoses.height:
        tables.show(diagnoses, DIAGNOSES)
    else:
        st.caption("No diagnoses recorded in this period.")
