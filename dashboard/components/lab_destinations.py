"""The practice settings page's "Labs and analysers" section: the labs the practice sends the record's orders to,
a new one added (each refusal shown at its field) and one switched off."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard.components import session as ctx
from dashboard.components.forms import empty_next_run
from warehouse.records import lab_destinations as labs
from warehouse.records.errors import RecordsError
from warehouse.schema.clinical import ORDER_MESSAGE_TYPES
from warehouse.security.permissions import NotPermitted

state = st.session_state
KEY = "settings.labs"
# The add form's fields and what they start from (and go back to after a lab is added).
BLANK: dict[str, object] = {"name": "", "host": "", "port": None, "message_type": ORDER_MESSAGE_TYPES[0],
                            "receiving_application": "", "receiving_facility": "", "ack_timeout_seconds": 10,
                            "tests": ""}  # fmt: skip


def _table(destinations: list[labs.DestinationSetup]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "Name": [d.name for d in destinations],
            "Host:port": [d.address for d in destinations],
            "Message type": [d.message_type for d in destinations],
            "Receiving application": [d.receiving_application or "" for d in destinations],
            "Receiving facility": [d.receiving_facility or "" for d in destinations],
            "ACK timeout (s)": [d.ack_timeout_seconds for d in destinations],
            "Tests offered": ["; ".join(f"{t.code} {t.name}" for t in d.tests) for d in destinations],
            "Active": ["yes" if d.active else "no" for d in destinations],
        }
    )


def _done(message: str, empty: dict[str, object]) -> None:
    empty_next_run(empty)
    state["settings.flash"] = message
    st.rerun()


def _add_form(practice_id: int) -> None:
    with st.form(f"{KEY}.add"):
        slots: dict[str, object] = {}
        st.text_input("Name", key=f"{KEY}.name", max_chars=labs.NAME_MAX)
        slots["name"] = st.empty()
        cols = st.columns([3, 1, 1])
        cols[0].text_input("Host", key=f"{KEY}.host", help="Host name or IP address, e.g. lab.example.nl")
        slots["host"] = cols[0].empty()
        cols[1].number_input("Port", min_value=1, max_value=65535, step=1, key=f"{KEY}.port")
        slots["port"] = cols[1].empty()
        cols[2].selectbox("Message type", ORDER_MESSAGE_TYPES, key=f"{KEY}.message_type")
        slots["message_type"] = cols[2].empty()
        cols = st.columns([2, 2, 1])
        cols[0].text_input("Receiving application (MSH-5)", key=f"{KEY}.receiving_application")
        slots["receiving_application"] = cols[0].empty()
        cols[1].text_input("Receiving facility (MSH-6)", key=f"{KEY}.receiving_facility")
        slots["receiving_facility"] = cols[1].empty()
        low, high = labs.ACK_TIMEOUT_RANGE
        cols[2].number_input("ACK timeout (s)", min_value=low, max_value=high, step=1,
                             key=f"{KEY}.ack_timeout_seconds")  # fmt: skip
        slots["ack_timeout_seconds"] = cols[2].empty()
        st.text_area("Tests offered", key=f"{KEY}.tests", help="One a line: the code, then the name, e.g. "
                     "CBC Haematology. An order may also name a code that is not listed.")  # fmt: skip
        slots["tests"] = st.empty()
        add = st.form_submit_button("Add lab", type="primary")
    if not add:
        return
    typed = {field: state[f"{KEY}.{field}"] for field in BLANK}
    try:
        tests = labs.parse_tests(typed["tests"])
        with ctx.tenant() as session:
            labs.add_destination(
                session, ctx.actor(), practice_id=practice_id, name=typed["name"], host=typed["host"],
                port=typed["port"], message_type=typed["message_type"], tests=tests,
                receiving_application=typed["receiving_application"],
                receiving_facility=typed["receiving_facility"], ack_timeout_seconds=typed["ack_timeout_seconds"],
            )  # fmt: skip
    except RecordsError as exc:
        ctx.field_errors({exc.field: str(exc)}, slots)
    except NotPermitted as exc:
        st.error(str(exc))
    else:
        _done(f"Lab {typed['name'].strip()} added: the order form offers it now.",
              {f"{KEY}.{field}": value for field, value in BLANK.items()})  # fmt: skip


def render(practice_id: int) -> None:
    st.subheader("Labs and analysers")
    st.caption("Where lab orders from the record are sent (HL7 over MLLP). A lab switched off is no longer "
               "offered on the order form; orders already queued for it are still sent.")  # fmt: skip
    for field, value in BLANK.items():
        state.setdefault(f"{KEY}.{field}", value)
    with ctx.tenant() as session:
        destinations = labs.practice_destinations(session, practice_id)
    if destinations:
        st.dataframe(_table(destinations), hide_index=True, width="stretch", key=f"{KEY}.list")
    else:
        st.caption("No lab set up yet.")
    with st.expander("Add a lab"):
        _add_form(practice_id)
    active = {d.id: d.name for d in destinations if d.active}
    if not active:
        return
    cols = st.columns([3, 1], vertical_alignment="bottom")
    chosen = cols[0].selectbox("Lab to switch off", list(active), format_func=active.get, key=f"{KEY}.off")
    if cols[1].button("Switch off", key=f"{KEY}.switch_off"):
        try:
            with ctx.tenant() as session:
                labs.switch_off_destination(
                    session, ctx.actor(), practice_id=practice_id, destination_id=chosen
                )
        except (RecordsError, NotPermitted) as exc:
            st.error(str(exc))
        else:
            _done(f"Lab {active[chosen]} switched off: the order form no longer offers it.", {})
