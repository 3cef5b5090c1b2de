"""Scheduling: day and week views per resource, the free-slot finder, booking and the appointment's actions."""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from dashboard.components import session as ctx
from dashboard.components.agenda import timeline
from dashboard.components.no_show import render_no_show_risks
from dashboard.components.writeback import badge, markers
from models.serving import no_show_risks
from warehouse.integration.gateway import UpstreamRefused, UpstreamUnavailable
from warehouse.kernel import formatting
from warehouse.kernel.practice_time import local_day_bounds
from warehouse.scheduling import booking, slots, transitions
from warehouse.scheduling.day import schedule
from warehouse.scheduling.errors import BookingConflict, SchedulingError
from warehouse.scheduling.patients import patient_choices
from warehouse.security.permissions import CONSULT_WRITE, SCHEDULE_WRITE

# Animana's agenda fields → the booking form's fields (where its refusal is shown in animana mode).
ANIMANA_FIELDS = {"animal_id": "patient", "relation_id": "patient", "type": "type", "resource_id": "resource",
                  "resource_type": "resource", "start": "time", "end": "time"}  # fmt: skip

can_write = ctx.may(SCHEDULE_WRITE)
can_consult = ctx.may(CONSULT_WRITE)
state = st.session_state

# --- where we are: practice, focus from the hub --------------------------------------------------------------
practice_ids = ctx.context().practice_ids
focus = state.pop("focus", None)
if focus is not None and focus.practice_id in practice_ids:
    state["sched.practice"] = focus.practice_id
    if focus.kind == "appointment" and focus.starts_at:
        state["sched.day"] = focus.starts_at.astimezone(ctx.zone(focus.practice_id)).date()
        state["sched.appointment"] = focus.id
    state["sched.patient_focus"] = (focus.patient_id, focus.client_id)
practice_id = ctx.one_practice("sched.practice")
zone = ctx.zone(practice_id)
ctx.breadcrumbs("Scheduling", ctx.practice_name(practice_id))
st.title("Scheduling")

with ctx.tenant() as session:
    types = slots.appointment_types(session, practice_id)
    staff = slots.resources(session, practice_id, kind="staff")
    all_resources = slots.resources(session, practice_id)

# --- the agenda -------------------------------------------------------------------------------------------------
controls = st.columns([1, 1, 2])
view = controls[0].segmented_control("View", ["Day", "Week"], default="Day", key="sched.view") or "Day"
# The practice's today, not the server's: between local midnight and UTC's the server's date is yesterday.
today = ctx.now().astimezone(zone).date()
day = controls[1].date_input("Date", value=state.get("sched.day", today), format="DD-MM-YYYY")
resource_names = {r.id: r.name for r in all_resources}
shown = controls[2].multiselect("Resources", list(resource_names), format_func=resource_names.get,
                                placeholder="All resources", key="sched.resources")  # fmt: skip
first_day = day - dt.timedelta(days=day.weekday()) if view == "Week" else day
days = 7 if view == "Week" else 1
with ctx.tenant() as session:
    agenda = schedule(session, practice_id, first_day, days=days)
    marked = markers(session, practice_id, (("appointment", i) for i in agenda["id"]))
# Appointments not yet in step with Animana carry their marker in the timeline and the appointment's tab.
agenda = agenda.with_columns(
    pl.col("id").replace_strict({i: m for (_, i), m in marked.items()}, default="", return_dtype=pl.String)
    .alias("writeback")
)  # fmt: skip
if shown:
    agenda = agenda.filter(pl.col("resource_id").is_in(shown))
start, end = local_day_bounds(first_day, zone, days)
if view == "Day":
    start, end = start + dt.timedelta(hours=7), start + dt.timedelta(hours=19)
timeline(agenda, zone, start=start, end=end, key=f"timeline-{view}")
upcoming = agenda.filter(pl.col("status") == "booked")
if upcoming.height:
    with ctx.tenant() as session:
        risks = no_show_risks(session, upcoming["id"].to_list(), practice_ids=[practice_id])
    render_no_show_risks(upcoming, risks, zone)


def _clear_booking_form() -> None:
    """Empty the booking form after a booking; runs before its widgets are created.

    Widget state is assigned, not deleted: Streamlit sends an assigned value to the browser, whereas a
    deleted one is only forgotten by the server. The browser then kept showing the booked patient and sent
    its label back with the next action, where the page took it for the patient's id (a traceback on every
    action after a booking)."""
    state["sched.patient"] = None
    state["sched.patient_kept"] = None
    state["sched.patient_query"] = ""
    state["sched.reason"] = ""
    state.pop("sched.offer", None)
    state.pop("sched.offer_for", None)


# The key keeps the open tab across the rerun a save causes (otherwise it jumps back to "Book").
book_tab, manage_tab = st.tabs(["Book", "Appointment"], key="sched.tab")

# --- booking ----------------------------------------------------------------------------------------------------
with book_tab:
    if not can_write:
        st.info("Your role can view the agenda but not book.")
    else:
        focus_patient, focus_client = state.pop("sched.patient_focus", (None, None))
        if state.pop("sched.clear_form", False):
            _clear_booking_form()
        finder, picker = st.columns(2)
        query = finder.text_input(
            "Find patient", key="sched.patient_query", placeholder="Name or chip number"
        )
        with ctx.tenant() as session:
            # Keep the chosen patient among the choices while the user edits the rest of the form. The id is
            # the last run's validated choice, never the widget's raw state: that is what the browser sent,
            # which may be a label the current options do not have.
            keep = focus_patient or state.get("sched.patient_kept")
            choices = patient_choices(session, practice_id, query=query, patient_id=keep,
                                            client_id=focus_client)  # fmt: skip
        by_id = {c.id: c for c in choices}
        if focus_patient in by_id:
            state["sched.patient"] = focus_patient
        patient_id = picker.selectbox("Patient", list(by_id), format_func=lambda i: by_id[i].label, index=None,
                                      placeholder="Find the patient, then choose", key="sched.patient")  # fmt: skip
        state["sched.patient_kept"] = patient_id
        patient_slot = picker.empty()
        if patient_id is not None and (state.get("sched.offer_for") or (patient_id,))[0] != patient_id:
            # Another patient was chosen: the slots on offer were for the previous one.
            state.pop("sched.offer", None)
            state.pop("sched.offer_for", None)
        species = by_id[patient_id].species if patient_id in by_id else None
        # Only the types this patient's species may have (the service checks again).
        type_by_id = {
            t.id: t
            for t in sorted(types, key=lambda t: (t.code != "consult", t.name))
            if not (species and t.species and species not in t.species)
        }
        if state.get("sched.type") not in type_by_id:
            state["sched.type"] = next(iter(type_by_id), None)  # assigned, so the browser shows it too
        staff_names = {r.id: r.name for r in staff}
        errors: dict[str, str] = {}
        with st.form("book", border=True):
            left, right = st.columns(2)
            with left:
                type_id = st.selectbox("Appointment type", list(type_by_id), key="sched.type",
                                       format_func=lambda i: f"{type_by_id[i].name} · {type_by_id[i].duration_minutes} min")  # fmt: skip
                type_slot = st.empty()
                reason = st.text_input("Reason", key="sched.reason")
            with right:
                resource_id = st.selectbox("Vet / nurse", [None, *staff_names], key="sched.resource",
                                           format_func=lambda i: "First available" if i is None else staff_names[i])  # fmt: skip
                resource_slot = st.empty()
                book_day = st.date_input("Day", value=day, key="sched.book_day", format="DD-MM-YYYY")
                book_time = st.time_input(
                    "Time", value=dt.time(9, 0), step=dt.timedelta(minutes=5), key="sched.time"
                )
                time_slot = st.empty()
            buttons = st.columns([1, 1, 4])
            book_clicked = buttons[0].form_submit_button("Book", type="primary")
            find_clicked = buttons[1].form_submit_button("Find free slots")
        slots_box = st.container()

        def _book(resource: int, starts_at: dt.datetime, patient: int, patient_name: str) -> None:
            with ctx.tenant() as session:
                appointment = booking.book(session, ctx.actor(), practice_id=practice_id, appointment_type_id=type_id,
                                         resource_id=resource, starts_at=starts_at, patient_id=patient,
                                         reason=reason)  # fmt: skip
                booked_id = appointment.id
            state["sched.flash"] = (
                f"Booked {patient_name} on {formatting.date(starts_at, weekday=True, tz=zone)} at {formatting.time(starts_at, zone)} "
                f"with {staff_names.get(resource, resource)} (appointment {booked_id})."
            )
            # The widgets exist in this run, so their state can only be reset on the next one (before them).
            state["sched.clear_form"] = True
            state["sched.day"] = starts_at.astimezone(zone).date()
            st.rerun()

        def _offer(not_before: dt.datetime, resource: int | None) -> None:
            with ctx.tenant() as session:
                state["sched.offer"] = slots.find_free_slots(
                    session, slots.SlotQuery(practice_id, type_id, not_before, resource_id=resource,
                                             species=by_id[patient_id].species if patient_id else None, limit=8),
                )  # fmt: skip
            # The slots were found for this patient (species rules): a slot books for them, whatever the patient
            # box says on the rerun the click causes (its widget value can arrive empty from the browser then).
            state["sched.offer_for"] = (patient_id, by_id[patient_id].name) if patient_id else None

        if book_clicked or find_clicked:
            if patient_id is None:
                errors["patient"] = "Choose the patient (search by name or chip above)."
            if type_id is None:
                errors["type"] = "Choose the appointment type."
            if book_clicked and resource_id is None:
                errors["resource"] = "Choose who sees the patient, or use “Find free slots”."
            requested = dt.datetime.combine(book_day, book_time, zone)
            if book_clicked and requested < ctx.now() - dt.timedelta(minutes=5):
                errors["time"] = "That time has passed; choose a time in the future."
            if not errors:
                try:
                    if book_clicked:
                        _book(resource_id, requested, patient_id, by_id[patient_id].name)
                    else:
                        _offer(max(requested, ctx.now()), resource_id)
                except BookingConflict as conflict:
                    with ctx.tenant() as session:
                        blocker = schedule(session, practice_id, conflict.existing_starts_at.astimezone(zone).date()).filter(
                            pl.col("id") == conflict.existing_appointment_id)  # fmt: skip
                    who = f" ({blocker['patient'][0]}, {blocker['type'][0]})" if blocker.height else ""
                    errors["time"] = f"Not free: {conflict}{who}. The next free slots are below."
                    _offer(requested, resource_id)
                except SchedulingError as exc:
                    errors[exc.field if exc.field in ("patient", "type", "resource") else "time"] = str(exc)
                except UpstreamRefused as exc:  # animana mode: Animana's own refusal, at the field it names
                    errors[ANIMANA_FIELDS.get(exc.field, "time")] = str(exc)
                except UpstreamUnavailable as exc:
                    errors["time"] = f"{exc} Nothing was booked; try again in a moment."
        if flash := state.pop("sched.flash", None):
            st.success(flash)
        ctx.field_errors(errors, {"patient": patient_slot, "type": type_slot, "resource": resource_slot,
                                  "time": time_slot})  # fmt: skip
        offer = state.get("sched.offer")
        if offer is not None:
            with slots_box:
                if not offer:
                    st.warning("No free slot in the next 7 days for this type and vet.")
                else:
                    offered_name = (state.get("sched.offer_for") or (None, ""))[1]
                    st.markdown(f"**Free slots** for {offered_name}" if offered_name else "**Free slots**")
                    # One row that wraps, in time order (a grid of columns reads down, out of order).
                    row_of_slots = st.container(horizontal=True)
                    for slot in offer:
                        label = (f"{formatting.date(slot.starts_at, weekday=True, tz=zone)} {formatting.time(slot.starts_at, zone)}"
                                 f" · {slot.resource_name}")  # fmt: skip
                        if row_of_slots.button(
                            label, key=f"slot-{slot.resource_id}-{slot.starts_at:%Y%m%d%H%M}"
                        ):
                            offered_for = state.get("sched.offer_for")
                            if offered_for is None:
                                st.error("Choose the patient first.")
                            else:
                                try:
                                    _book(slot.resource_id, slot.starts_at, *offered_for)
                                except (BookingConflict, SchedulingError) as exc:
                                    st.error(f"{exc} — pick another slot.")

# --- one appointment: check in, reschedule, cancel, no-show, consult ---------------------------------------------
with manage_tab:
    listed = agenda.filter(pl.col("status") != "cancelled").sort("starts_at")
    if listed.is_empty():
        st.info("No appointments in this view to act on.")
    else:
        rows = {r["id"]: r for r in listed.iter_rows(named=True)}

        def _label(appointment_id: int) -> str:
            r = rows[appointment_id]
            return (f"{r['starts_at'].astimezone(zone):%a %d-%m %H:%M} · {r['patient'] or '—'} · {r['type']} · "
                    f"{r['resource']} · {r['status'].replace('_', ' ')}{' · ' + r['writeback'] if r['writeback'] else ''}")  # fmt: skip

        if state.get("sched.appointment") not in rows:
            state["sched.appointment"] = next(iter(rows))  # assigned, so the browser shows it too
        selected = st.selectbox("Appointment", list(rows), format_func=_label, key="sched.appointment")
        row = rows[selected]
        badge(row["writeback"])
        outcome = st.empty()

        def _act(action, **kwargs) -> None:  # noqa: ANN001
            try:
                with ctx.tenant() as session:
                    action(session, ctx.actor(), practice_id=practice_id, appointment_id=selected, **kwargs)
            except BookingConflict as conflict:
                outcome.error(f"Not free: {conflict}.")
            except (SchedulingError, UpstreamRefused, UpstreamUnavailable) as exc:
                outcome.error(str(exc))
            else:
                state["sched.flash_manage"] = f"{action.__name__.replace('_', ' ').capitalize()}: done."
                st.rerun()

        if flash := state.pop("sched.flash_manage", None):
            st.success(flash)
        if can_write:
            buttons = st.columns(4)
            if row["status"] == "booked" and buttons[0].button(
                "Check in", type="primary", key="sched.check_in"
            ):
                _act(transitions.check_in)
            if row["status"] == "booked" and buttons[1].button("Mark no-show", key="sched.no_show"):
                _act(transitions.mark_no_show)
            if (
                can_consult
                and row["status"] == "checked_in"
                and buttons[2].button("Start consult", key="sched.start")
            ):
                _act(transitions.start_consult)
            if (
                can_consult
                and row["status"] == "in_consult"
                and buttons[2].button("Finish consult", key="sched.finish")
            ):
                _act(transitions.finish_consult)
            if row["status"] == "booked":
                with st.form("reschedule"):
                    st.markdown("**Reschedule**")
                    cols = st.columns(3)
                    local = row["starts_at"].astimezone(zone)
                    new_day = cols[0].date_input(
                        "New day", value=local.date(), format="DD-MM-YYYY", key=f"sched.new_day.{selected}"
                    )
                    new_time = cols[1].time_input("New time", value=local.time(), step=dt.timedelta(minutes=5),
                                                  key=f"sched.new_time.{selected}")  # fmt: skip
                    new_resource = cols[2].selectbox("Vet / nurse", list(staff_names := {r.id: r.name for r in staff}),
                                                     index=list(staff_names).index(row["resource_id"]) if row["resource_id"] in staff_names else 0,
                                                     format_func=staff_names.get, key=f"sched.new_resource.{selected}")  # fmt: skip
                    if st.form_submit_button("Reschedule"):
                        _act(booking.reschedule, starts_at=dt.datetime.combine(new_day, new_time, zone),
                             resource_id=new_resource)  # fmt: skip
            if row["status"] in ("booked", "checked_in"):
                with st.form("cancel"):
                    st.markdown("**Cancel**")
                    cancel_reason = st.text_input("Reason for cancelling", key="sched.cancel_reason")
                    cancel_slot = st.empty()
                    if st.form_submit_button("Cancel appointment"):
                        if not cancel_reason.strip():
                            cancel_slot.error("Say why the appointment is cancelled.")
                        else:
                            _act(transitions.cancel, reason=cancel_reason)
        else:
            st.caption("Your role can view appointments but not change them.")
