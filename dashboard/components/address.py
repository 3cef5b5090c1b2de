"""A page's address names the record it shows (``/records?practice=3&patient=812``), so that a reload, a
bookmark or a shared link opens the same page and record.

The entry point opens the record an address names once per browser session (as the hub's search would: a
``focus`` the page consumes), then, after every run of a page, writes the record the page shows back into
the address. Pages keep their current record in their own session state; ``RECORDS`` says where.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dashboard.components import session as ctx
from warehouse.search.service import record_hit


@dataclass(frozen=True)
class RecordAddress:
    kind: str  # the query parameter, and the search-hit kind
    practice_key: str  # session state: the page's practice (its practice selectbox)
    record_key: str  # session state: the record the page shows


RECORDS: dict[str, RecordAddress] = {
    "records": RecordAddress("patient", "rec.practice", "rec.patient"),
    "scheduling": RecordAddress("appointment", "sched.practice", "sched.appointment"),
    "billing": RecordAddress("invoice", "bill.practice", "bill.invoice"),
}


def _as_id(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def open_from_address(page_key: str) -> None:
    """Once per browser session: open the record the address names (if the user may see it)."""
    state = st.session_state
    if state.get("address.opened"):
        return
    state["address.opened"] = True
    spec = RECORDS.get(page_key)
    if spec is None:
        return
    practice_id = _as_id(st.query_params.get("practice"))
    record_id = _as_id(st.query_params.get(spec.kind))
    if practice_id is None or record_id is None:
        return
    with ctx.tenant() as session:
        hit = record_hit(session, spec.kind, practice_id, record_id)
    if hit is None:
        state["address.missing"] = f"The {spec.kind} in this address does not exist or is not yours to see."
        return
    state["focus"] = hit


def write_address(page_key: str) -> None:
    """Put the record the page shows into the address (or clear the record part when it shows none)."""
    spec = RECORDS.get(page_key)
    if spec is None:
        return
    state = st.session_state
    record_id = state.get(spec.record_key)
    practice_ids = ctx.context().practice_ids
    practice_id = state.get(spec.practice_key, practice_ids[0] if len(practice_ids) == 1 else None)
    if isinstance(record_id, int) and isinstance(practice_id, int):
        wanted = {"practice": str(practice_id), spec.kind: str(record_id)}
    else:
        wanted = {}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
