"""The hub: one search box to reach anything, then today's work for the signed-in user."""

from __future__ import annotations

import streamlit as st

from dashboard.components import session as ctx
from dashboard.components import tables
from dashboard.components.pages import page
from dashboard.components.results import KIND_ICONS, open_hit, page_sizes, show_results
from dashboard.components.suggestions import render_suggestions, shown_once
from dashboard.runtime import app_runtime
from models.serving import suggest_next_actions
from warehouse.hub.service import TASK_LABELS, open_patient, today_for_user
from warehouse.kernel import formatting as fmt
from warehouse.records.patient_record import born_text
from warehouse.search.service import search

AGENDA: tables.Spec = {"starts_at": ("Time", "time"), "patient": ("Patient", "text"), "species": ("Species", "text"),
                       "client": ("Owner", "text"), "type": ("Type", "text"), "resource": ("Vet / room", "text"),
                       "status": ("Status", "status")}  # fmt: skip
UPCOMING: tables.Spec = {"starts_at": ("When", "date_time"), "resource": ("Vet / room", "text"),
                         "status": ("Status", "status")}  # fmt: skip

user = ctx.user()
labels = {p.id: p.name for p in user.practices}
focus = st.session_state.get("focus")
card_open = focus is not None and focus.kind == "patient"
ctx.breadcrumbs("Hub", *([focus.title] if card_open else []))

query = st.text_input(
    "Search", key="hub.query", placeholder="Search clients, patients, appointments, invoices — name, phone, "
    "e-mail, chip, postcode or invoice number", label_visibility="collapsed", icon=":material/search:",
)  # fmt: skip
if unavailable := st.session_state.pop("focus_unavailable", None):
    st.info(f"{unavailable.capitalize()}s open in a workspace that is not available to you yet.")
if query.strip():
    with ctx.tenant() as session:
        results = search(session, query, master_key=app_runtime().master_key(), now=ctx.now(),
                         limits=page_sizes("hub.shown", query))  # fmt: skip
    show_results(results, ctx.permissions(), labels, more_key="hub.shown")

if card_open:
    with ctx.tenant() as session:
        card = open_patient(session, focus.practice_id, focus.patient_id, now=ctx.now())
    if card is not None:
        with st.container(border=True):
            head, close = st.columns([6, 1])
            head.subheader(f"{card.name} · {card.species}{' (deceased)' if card.deceased else ''}")
            if close.button("Close", key="hub.close_card"):
                st.session_state.pop("focus", None)
                st.rerun()
            facts = [card.breed, born_text(card.date_of_birth, card.date_of_birth_estimated),
                     f"chip {card.microchip}" if card.microchip else None, f"owner {card.owner}" if card.owner else None]  # fmt: skip
            st.write(" · ".join(f for f in facts if f))
            if card.upcoming.height:
                tables.show(card.upcoming, UPCOMING, zone=ctx.zone(card.practice_id))
            if st.button("Book an appointment", icon=":material/event:", key="hub.book_for_patient"):
                st.switch_page(page("scheduling").path)
            st.markdown("**Suggested next actions for this patient**")

            def _for_patient() -> list:
                with ctx.tenant() as session:
                    return suggest_next_actions(session, ctx.context(), patient_id=focus.patient_id)

            for_patient = shown_once(f"patient:{focus.patient_id}:{ctx.context()}", _for_patient)
            render_suggestions(for_patient, key="hub.patient_suggestion")

zone = ctx.zone()
with ctx.tenant() as session:
    today = today_for_user(session, user_id=user.user_id, roles=ctx.roles_here(), now=ctx.now(), tz=zone)

st.title(f"Goedendag, {user.full_name.split()[0]}")
scope = (
    "all practices"
    if len(ctx.context().practice_ids) > 1
    else ctx.practice_name(ctx.context().practice_ids[0])
)
st.caption(f"{today.day:%A %d %B %Y} · {scope}")
cols = st.columns(4)
cols[0].metric("Appointments today", today.appointments)
cols[1].metric("Waiting", today.waiting)
cols[2].metric("In consult", today.in_consult)
cols[3].metric("My open tasks", sum(today.task_counts.values()))

left, right = st.columns([3, 2])
with left:
    st.subheader("My agenda" if today.own_agenda else "Today's agenda")
    if today.agenda.height:
        tables.show(today.agenda, AGENDA, zone=zone)
    else:
        st.write("No appointments today.")
with right:
    st.subheader("My tasks")
    if not today.task_counts:
        st.caption("No task list for your role: the dashboards show how the practices are doing.")
    for kind, count in today.task_counts.items():
        tasks = [t for t in today.tasks if t.kind == kind]
        with st.expander(f"{TASK_LABELS[kind]} · {fmt.number(count)}", expanded=bool(tasks)):
            for task in tasks:
                # A task opens what it is about, in the workspace that works on it (as a search hit does).
                if st.button(f"**{task.title}**  \n{task.detail}", key=f"task-{kind}-{task.practice_id}-{task.id}",
                             icon=KIND_ICONS[task.opens().kind], width="stretch"):  # fmt: skip
                    open_hit(task.opens(), ctx.permissions())
            if count > len(tasks):
                st.caption(f"The first {len(tasks)} of {fmt.number(count)}.")
            if not tasks:
                st.caption("Nothing open.")
    with st.container(border=True):
        st.markdown("**Suggested next actions**")

        def _for_user() -> list:
            with ctx.tenant() as session:
                return suggest_next_actions(session, ctx.context(), user_id=user.user_id)

        render_suggestions(shown_once(f"user:{ctx.context()}", _for_user), key="hub.user_suggestion")
