"""Device inbox: results the analysers sent that could not be put in a record by themselves. A vet, nurse or
practice manager finds the patient (exact search) and the message is loaded for that patient, as it was read
when it arrived (or when the inbox retry last read its raw copy again)."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboard.components import session as ctx
from dashboard.runtime import master_key_if_set
from warehouse.ingest.devices.inbox import InboxItem, SetAsideItem, inbox, resolve_inbox, set_aside
from warehouse.ingest.devices.inputs import InboxError
from warehouse.ingest.devices.patient_search import find_patients
from warehouse.kernel import formatting as fmt
from warehouse.security.permissions import DEVICE_INBOX, NotPermitted

REASONS = {
    "no_patient_match": "No matching patient",
    "ambiguous_patient": "More than one patient matches",
    "patient_conflict": "Order and patient disagree",
    "no_observations": "No results in the message",
    "load_failed": "Could not be stored",
    "encryption_unavailable": "Cannot store the file encrypted",
}


SET_ASIDE_DAYS = 14


def set_aside_rows(items: list[SetAsideItem], practice_names: dict[int, str]) -> list[dict[str, object]]:
    return [
        {
            "Message": i.message_id,
            "Received": fmt.date_time(i.received_at),
            "Practice": practice_names.get(i.practice_id, str(i.practice_id)),
            "Sender": i.sender,
            "Control id": i.control_id,
            "Judged": (
                f"Duplicate of message {i.duplicate_of}: same content, not loaded again"
                if i.duplicate_of is not None
                else f"New message, loaded: control id also used by message {i.same_control_id_as}"
            ),
        }
        for i in items
    ]


def inbox_rows(items: list[InboxItem], practice_names: dict[int, str]) -> list[dict[str, object]]:
    zones = {practice_id: ctx.zone(practice_id) for practice_id in {i.practice_id for i in items}}
    return [
        {
            "message": i.message_id,
            "received": i.received_at.astimezone(zones[i.practice_id]).strftime("%d-%m-%Y %H:%M"),
            "practice": practice_names.get(i.practice_id, str(i.practice_id)),
            "reason": REASONS.get(i.reason or "", i.reason),
            "detail": i.detail,
            "sender": i.sender or i.source,
            "file": i.filename,
            "format": i.detected_format,
            "tries": i.attempts,
        }
        for i in items
    ]


user = ctx.user()
ctx.breadcrumbs("Device inbox")
st.title("Device inbox")
st.caption("Lab and imaging results that need a person: match them to a patient and they are loaded from the copy "
           "stored when they arrived.")  # fmt: skip
if flash := st.session_state.pop("dev_inbox.flash", None):
    st.success(flash)
names = {p.id: p.name for p in user.practices}
with ctx.tenant() as session:
    items = inbox(session, limit=500)
    judged = set_aside(session, since=ctx.now() - dt.timedelta(days=SET_ASIDE_DAYS))
if judged:
    with st.expander(
        f"Judged by content, last {SET_ASIDE_DAYS} days · {len(judged)}", icon=":material/content_copy:"
    ):
        st.caption("A message is a duplicate only when its content is the same as one already loaded (a resend); "
                   "a message that reuses an earlier control id with other content is loaded as a new one.")  # fmt: skip
        st.dataframe(set_aside_rows(judged, names), hide_index=True, width="stretch")
if not items:
    st.info("Nothing waiting: every device message is in a patient record.")
    st.stop()

st.dataframe(inbox_rows(items, names), hide_index=True, width="stretch")

by_id = {i.message_id: i for i in items}
message_id = st.selectbox(
    "Message", list(by_id), key="dev_inbox.message",
    format_func=lambda m: f"#{m} · {by_id[m].sender or by_id[m].source} · {REASONS.get(by_id[m].reason or '', by_id[m].reason)}",
)  # fmt: skip
item = by_id[message_id]
st.markdown(f"**{REASONS.get(item.reason or '', item.reason)}** — {item.detail or ''}")
if not ctx.actor().may(DEVICE_INBOX, item.practice_id):
    st.info(f"At {names.get(item.practice_id, 'this practice')} a veterinarian, nurse or practice manager "
            "matches these messages to a patient.")  # fmt: skip
    st.stop()

query = st.text_input("Find the patient: microchip, patient id, or the patient's or owner's name (exact)",
                      key="dev_inbox.query")  # fmt: skip
if query.strip():
    with ctx.tenant() as session:
        choices = [c for c in find_patients(session, query) if c.practice_id == item.practice_id]
    if not choices:
        st.warning(
            f"No patient of {names.get(item.practice_id, 'this practice')} matches '{query.strip()}' exactly."
        )
    else:
        by_patient = {c.patient_id: c for c in choices}
        patient_id = st.radio(
            "Patient", list(by_patient), key="dev_inbox.patient",
            format_func=lambda p: f"{by_patient[p].name} ({by_patient[p].species}) · owner {by_patient[p].owners or '—'}"
            f" · chip {by_patient[p].microchip or '—'} · id {p}",
        )  # fmt: skip
        if st.button("Load the results for this patient", type="primary", key="dev_inbox.resolve"):
            try:
                with ctx.tenant() as session:
                    result = resolve_inbox(session, item.message_id, patient_id, ctx.actor(),
                                           master_key=master_key_if_set())  # fmt: skip
            except (InboxError, NotPermitted) as exc:
                st.error(str(exc))
            else:
                chosen = by_patient[patient_id]
                st.session_state["dev_inbox.flash"] = (
                    f"Message #{item.message_id}: {result.observation_count} observations ingested for "
                    f"{chosen.name} (patient {chosen.patient_id})."
                )
                for key in ("dev_inbox.query", "dev_inbox.patient", "dev_inbox.message"):
                    st.session_state.pop(key, None)
                st.rerun()
