"""The client card's consent section: each purpose as it stands (given or not, who, when, how); with CLIENTS_WRITE
a purpose is granted or withdrawn with how the client said so; every earlier grant and withdrawal in an expander."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard.components import session as ctx
from dashboard.components import tables
from warehouse.kernel import formatting
from warehouse.privacy.consent import (
    HOW_LABELS,
    PURPOSE_LABELS,
    SAID_HOWS,
    ConsentError,
    ConsentState,
    Purpose,
    consent_history,
    current_consents,
    record_consent,
)
from warehouse.security.permissions import CLIENTS_WRITE


def _who_when_how(state: ConsentState, practice_id: int) -> str:
    if state.recorded_at is None:
        return "never asked"
    when = formatting.date_time(state.recorded_at, ctx.zone(practice_id))
    return f"{when} · {state.recorded_by or 'unknown user'} · {HOW_LABELS[state.how].lower()}"


def consent_section(practice_id: int, client_id: int) -> None:
    with ctx.tenant() as session:
        current = current_consents(session, practice_id, client_id)
        history = consent_history(session, practice_id, client_id)
    st.markdown("**Consent**")
    # Said in words too: an icon alone is lost on a screen reader (and on a browser without the glyph).
    for purpose, state in current.items():
        mark = ":material/check_circle:" if state.granted else ":material/cancel:"
        word = "given" if state.granted else "not given"
        st.markdown(
            f"{mark} {PURPOSE_LABELS[purpose]}: {word}  \n:small[{_who_when_how(state, practice_id)}]"
        )
    if ctx.may(CLIENTS_WRITE):
        _change_form(practice_id, client_id, current)
    with st.expander(f"Consent history · {len(history)}"):
        if history:
            frame = pl.DataFrame(
                [{"recorded_at": h.recorded_at, "purpose": PURPOSE_LABELS[h.purpose],
                  "granted": "Given" if h.granted else "Withdrawn", "how": HOW_LABELS[h.how],
                  "recorded_by": h.recorded_by or "", "note": h.note or ""} for h in history]
            )  # fmt: skip
            tables.show(frame, {"recorded_at": ("When", "date_time"), "purpose": ("Purpose", "text"),
                                "granted": ("Consent", "text"), "how": ("How", "text"),
                                "recorded_by": ("Recorded by", "text"), "note": ("Note", "text")},
                        zone=ctx.zone(practice_id))  # fmt: skip
        else:
            st.caption("No consent recorded yet.")


def _change_form(practice_id: int, client_id: int, current: dict[Purpose, ConsentState]) -> None:
    # The version in the keys starts the form afresh after a recorded consent, and keeps what was typed after a
    # refusal (``clear_on_submit`` would clear it either way).
    version = st.session_state.get(f"card.consent_version.{client_id}", 0)
    key = f"card.consent.{client_id}.{version}"
    with st.expander("Grant or withdraw consent"), st.form(key, border=False):
        purpose = st.selectbox("Purpose", list(Purpose), format_func=PURPOSE_LABELS.get, key=f"{key}.purpose")
        slots: dict[str, object] = {"purpose": st.empty()}
        how = st.selectbox("How the client said so", SAID_HOWS, format_func=HOW_LABELS.get,
                           key=f"{key}.how")  # fmt: skip
        slots["how"] = st.empty()
        note = st.text_input("Note (optional)", key=f"{key}.note")
        slots["note"] = st.empty()
        cols = st.columns(2)
        grant = cols[0].form_submit_button("Record consent given", type="primary")
        withdraw = cols[1].form_submit_button("Record consent withdrawn")
        errors: dict[str, str] = {}
        if grant or withdraw:
            try:
                with ctx.tenant() as session:
                    record_consent(session, ctx.actor(), practice_id, client_id, purpose, grant, how, note)
            except ConsentError as exc:
                errors = {exc.field: str(exc)}
            else:
                was = "given" if current[Purpose(purpose)].granted else "not given"
                now = "given" if grant else "withdrawn"
                st.session_state["card.flash"] = f"{PURPOSE_LABELS[Purpose(purpose)]}: {now} (was {was})."
                st.session_state[f"card.consent_version.{client_id}"] = version + 1
                st.rerun()
        ctx.field_errors(errors, slots)
