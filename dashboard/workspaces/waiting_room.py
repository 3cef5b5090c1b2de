"""The live waiting-room board: expected, waiting (and for how long), in consult, done — refreshes itself."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboard.components import session as ctx
from dashboard.components.pages import page
from dashboard.components.results import open_hit
from warehouse.scheduling import transitions
from warehouse.scheduling.errors import SchedulingError
from warehouse.scheduling.waiting_room import WaitingEntry, waiting_room
from warehouse.search.service import SearchHit
from warehouse.security.permissions import (
    CLIENTS_READ,
    CONSULT_WRITE,
    RECORDS_READ,
    SCHEDULE_WRITE,
    NotPermitted,
)

REFRESH = dt.timedelta(seconds=15)
practice_id = ctx.one_practice("wr.practice")
zone = ctx.zone(practice_id)
ctx.breadcrumbs("Waiting room", ctx.practice_name(practice_id))
st.title("Waiting room")
can_write, can_consult = ctx.may(SCHEDULE_WRITE), ctx.may(CONSULT_WRITE)
can_read_records, can_read_clients = ctx.may(RECORDS_READ), ctx.may(CLIENTS_READ)


def _act(action, appointment_id: int) -> None:  # noqa: ANN001
    try:
        with ctx.tenant() as session:
            action(session, ctx.actor(), practice_id=practice_id, appointment_id=appointment_id)
    except (SchedulingError, NotPermitted) as exc:
        st.session_state["wr.error"] = str(exc)


def _open(entry: WaitingEntry) -> None:
    """The card's patient in the patient record (as a search hit opens it), or, for who may not read records
    here, the owner's client card."""
    if can_read_records and entry.patient_id is not None:
        hit = SearchHit("patient", practice_id, entry.patient_id, entry.patient or "", "", 1.0,
                        patient_id=entry.patient_id, client_id=entry.client_id)  # fmt: skip
        open_hit(hit, ctx.permissions())
    elif can_read_clients and entry.client_id is not None:
        st.session_state["card.client"] = (practice_id, entry.client_id)
        st.switch_page(page("client_card").path)


def _entry(entry: WaitingEntry, column: str) -> None:
    with st.container(border=True):
        st.markdown(f"**{entry.patient or '—'}** · {entry.client or ''}")
        line = f"{entry.starts_at.astimezone(zone):%H:%M} · {entry.type} · {entry.resource}"
        if column == "waiting" and entry.waited_minutes is not None:
            waited = entry.waited_minutes
            st.markdown(
                f"{line}  \n:{'red' if waited >= 20 else 'orange' if waited >= 10 else 'green'}[waiting {waited} min]"
            )
        elif column == "in_consult" and entry.waited_minutes is not None:
            st.caption(f"{line} · waited {entry.waited_minutes} min")
        else:
            st.caption(line)
        if column == "expected" and can_write:
            st.button(
                "Check in",
                key=f"wr.in.{entry.appointment_id}",
                on_click=_act,
                args=(transitions.check_in, entry.appointment_id),
            )
        if column == "waiting" and can_consult:
            st.button("Start consult", key=f"wr.start.{entry.appointment_id}", on_click=_act,
                      args=(transitions.start_consult, entry.appointment_id))  # fmt: skip
        if column == "in_consult" and can_consult:
            st.button("Finish", key=f"wr.done.{entry.appointment_id}", on_click=_act,
                      args=(transitions.finish_consult, entry.appointment_id))  # fmt: skip
        if can_read_records and entry.patient_id is not None:
            opens = ("Open record", ":material/pets:", f"The patient record of {entry.patient}")
        elif can_read_clients and entry.client_id is not None:
            opens = ("Client card", ":material/person:", f"The client card of {entry.client}")
        else:
            return
        label, icon, tip = opens
        if st.button(label, key=f"wr.open.{entry.appointment_id}", icon=icon, help=tip, type="tertiary"):
            _open(entry)


@st.fragment(run_every=REFRESH)
def board() -> None:
    # A fragment rerun skips app.py's session check: without this, a board left open would keep refreshing
    # after its session was revoked or expired. The full rerun lands on the sign-in page with the reason.
    if ctx.signed_in_user() is None:
        st.rerun(scope="app")
    now = ctx.now()
    with ctx.tenant() as session:
        room = waiting_room(session, practice_id, now)
    if error := st.session_state.pop("wr.error", None):
        st.error(error)
    columns = st.columns(4)
    for column, (key, title, entries) in zip(columns, [
        ("expected", "Expected", room.expected), ("waiting", "Waiting", room.waiting),
        ("in_consult", "In consult", room.in_consult), ("done", "Done", room.done),
    ], strict=True):  # fmt: skip
        with column:
            st.subheader(f"{title} · {len(entries)}")
            for entry in entries:
                _entry(entry, key)
    st.caption(f"Updated {now.astimezone(zone):%H:%M:%S}; refreshes every {REFRESH.seconds} s.")


board()
