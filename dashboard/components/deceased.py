"""The "Mark deceased" action of a patient: the date of death, then the question that says what it cancels ("This
cancels 2 appointments and 3 reminders. Continue?"), then the marking itself (``warehouse.records.deceased``).

Only for a user whose roles at the practice hold CLIENTS_WRITE, and only while the patient is alive. Each widget key
carries the patient, so the action can sit beside several animals on one page.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboard.components import session as ctx
from warehouse.integration.gateway import UpstreamRefused, UpstreamUnavailable
from warehouse.records.deceased import DeceasedPreview, mark_deceased, preview_deceased
from warehouse.records.errors import RecordsError
from warehouse.scheduling.errors import SchedulingError
from warehouse.security.permissions import CLIENTS_WRITE, NotPermitted


def deceased_action(practice_id: int, patient_id: int, *, deceased: bool, today: dt.date) -> None:
    """Draw the action for one patient (nothing for a deceased patient or a user who may not mark one)."""
    state = st.session_state
    key = f"dec.{practice_id}.{patient_id}"
    if flash := state.pop(f"{key}.done", None):
        st.success(flash)
    if deceased or not ctx.may(CLIENTS_WRITE):
        return
    asked: DeceasedPreview | None = state.get(f"{key}.preview")
    with st.expander("Mark deceased", icon=":material/heart_broken:", expanded=asked is not None):
        deceased_on = st.date_input("Date of death", value=today, format="DD-MM-YYYY", key=f"{key}.on")
        date_slot = st.empty()
        errors: dict[str, str] = {}
        if asked is None:
            if st.button("Mark deceased", key=f"{key}.ask"):
                try:
                    with ctx.tenant() as session:
                        state[f"{key}.preview"] = preview_deceased(
                            session, practice_id=practice_id, patient_id=patient_id, now=ctx.now()
                        )
                except RecordsError as exc:
                    errors[exc.field] = str(exc)
                else:
                    st.rerun()
        else:
            question = st.empty()
            question.warning(asked.question, icon=":material/warning:")
            go, back = st.columns(2)
            if back.button("Go back", key=f"{key}.back"):
                state.pop(f"{key}.preview")
                st.rerun()
            if go.button("Continue", type="primary", key=f"{key}.confirm"):
                errors = _mark(practice_id, patient_id, deceased_on, asked, today)
                if "confirm" in errors:  # things changed since the question: this is the new one
                    question.warning(errors.pop("confirm"), icon=":material/warning:")
        ctx.field_errors(errors, {"deceased_on": date_slot})


def _mark(
    practice_id: int, patient_id: int, deceased_on: dt.date | None, asked: DeceasedPreview, today: dt.date
) -> dict[str, str]:
    """Mark the patient deceased as the user agreed and rerun; the errors per field when refused (nothing is
    saved then). A ``confirm`` error is the question asked again, its preview kept for the next "Continue"."""
    state = st.session_state
    key = f"dec.{practice_id}.{patient_id}"
    try:
        with ctx.tenant() as session:
            done = mark_deceased(
                session, ctx.actor(), practice_id=practice_id, patient_id=patient_id, deceased_on=deceased_on,
                confirmed=asked, today=today, now=ctx.now(),
            )  # fmt: skip
    except RecordsError as exc:
        if exc.field == "confirm":
            with ctx.tenant() as session:
                state[f"{key}.preview"] = preview_deceased(
                    session, practice_id=practice_id, patient_id=patient_id, now=ctx.now()
                )
        return {exc.field: str(exc)}
    except (NotPermitted, SchedulingError, UpstreamRefused, UpstreamUnavailable) as exc:
        return {"deceased_on": f"{exc} Nothing was changed."}
    state.pop(f"{key}.preview")
    cancelled = [f"{n} {word}{'' if n == 1 else 's'}"
                 for n, word in ((len(done.appointment_ids), "appointment"), (len(done.reminder_ids), "reminder"))
                 if n]  # fmt: skip
    state[f"{key}.done"] = f"{done.name} is recorded as deceased" + (
        f"; cancelled {' and '.join(cancelled)}." if cancelled else "."
    )
    st.rerun()
