"""Audit trail: who read or changed what at the practice, when and from which sign-in session, newest first and
a page at a time; and whether the practice's hash chain still verifies."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboard.components import session as ctx
from warehouse.kernel import formatting as fmt
from warehouse.security import audit_trail
from warehouse.security.audit_trail import ACTIONS, AuditFilter, AuditFilterError
from warehouse.security.permissions import AUDIT_READ

ANY = "any"
SUBJECTS = {ANY: "Any record", "patient": "A patient's record", "client": "A client's record"}
state = st.session_state
if not ctx.may(AUDIT_READ):
    st.error(f"Your role at {ctx.here()} cannot read the audit trail.")
    st.stop()
practice_id = ctx.one_practice("audit.practice")
ctx.breadcrumbs("Audit trail", ctx.practice_name(practice_id))
st.title("Audit trail")
actor = ctx.actor()
zone = ctx.zone(practice_id)
today = ctx.now().astimezone(zone).date()

# The chain check reads the practice's whole log: once when the page is first opened, then on request.
chain_key = f"audit.chain.{practice_id}"
if chain_key not in state or st.button("Verify the chain again", key="audit.verify"):
    with ctx.tenant() as session:
        state[chain_key] = (audit_trail.chain_status(session, actor, practice_id), ctx.now())
report, checked_at = state[chain_key]
if report.ok:
    st.success(f"Chain verified: {fmt.number(report.entries_checked)} entries intact "
               f"(checked {fmt.date_time(checked_at, zone)}).", icon=":material/verified:")  # fmt: skip
else:
    st.error(f"The chain does not verify: {len(report.problems)} problem(s) in "
             f"{fmt.number(report.entries_checked)} entries (checked {fmt.date_time(checked_at, zone)}).")  # fmt: skip
    st.dataframe([{"Entry": p.seq, "Problem": p.problem} for p in report.problems], hide_index=True,
                 key="audit.problems")  # fmt: skip

with ctx.tenant() as session:
    staff = audit_trail.staff(session, actor, practice_id)
    entities = audit_trail.entities(session, actor, practice_id)

with st.form("audit.filter"):
    cols = st.columns(3)
    who = cols[0].selectbox("User", [ANY, *staff], format_func=lambda u: "Anyone" if u == ANY else staff[u],
                            key="audit.f.user")  # fmt: skip
    subject = cols[1].selectbox("Record", list(SUBJECTS), format_func=SUBJECTS.get, key="audit.f.subject")
    subject_id = cols[2].number_input("Patient or client number", min_value=1, step=1, value=None,
                                      key="audit.f.subject_id")  # fmt: skip
    slots: dict[str, object] = {"subject_id": cols[2].empty()}
    cols = st.columns(4)
    entity = cols[0].selectbox("Kind of record", [ANY, *entities], key="audit.f.entity",
                               format_func=lambda e: "Any" if e == ANY else e.replace("_", " "))  # fmt: skip
    action = cols[1].selectbox("Action", [ANY, *ACTIONS], key="audit.f.action",
                               format_func=lambda a: "Any" if a == ANY else a.replace("_", " "))  # fmt: skip
    since = cols[2].date_input("From", value=today - dt.timedelta(days=30), format="DD-MM-YYYY",
                               key="audit.f.since")  # fmt: skip
    until = cols[3].date_input("To", value=today, format="DD-MM-YYYY", key="audit.f.until")
    slots["until"] = cols[3].empty()
    applied = st.form_submit_button("Show entries", type="primary")
if applied or "audit.cursors" not in state:
    state["audit.cursors"] = [None]  # the ``before`` of each page shown so far: the first page has none

audit_filter = AuditFilter(
    user_id=None if who == ANY else who,
    subject=None if subject == ANY else subject,
    subject_id=None if subject == ANY or subject_id is None else int(subject_id),
    entity=None if entity == ANY else entity,
    action=None if action == ANY else action,
    since=since or None,
    until=until or None,
)
try:
    with ctx.tenant() as session:
        page = audit_trail.audit_page(
            session, actor, practice_id, audit_filter, before=state["audit.cursors"][-1]
        )
        if audit_filter.subject is not None and audit_filter.subject_id is not None:
            name = audit_trail.subject_name(
                session, practice_id, audit_filter.subject, audit_filter.subject_id
            )
            slots["subject_id"].caption(f"{audit_filter.subject.capitalize()}: {name}")  # type: ignore[attr-defined]
except AuditFilterError as exc:
    ctx.field_errors({exc.field: str(exc)}, slots)
    st.stop()

if not page.entries:
    st.info("No entries match these filters.")
else:
    st.dataframe(
        [
            {
                "When": fmt.date_time(e.occurred_at, zone),
                "User": e.user_name or ("system" if e.user_id is None else f"user {e.user_id}"),
                "Session": str(e.session_id) if e.session_id else "",
                "Action": e.action.replace("_", " "),
                "Record": e.entity.replace("_", " "),
                "Numbers": ", ".join(str(i) for i in e.entity_ids[:10])
                + (" …" if len(e.entity_ids) > 10 else ""),
                "Detail": audit_trail.readable_detail(e.detail),
                "Entry": e.seq,
            }
            for e in page.entries
        ],
        hide_index=True,
        width="stretch",
        key="audit.entries",
    )
cols = st.columns([1, 1, 4])
if len(state["audit.cursors"]) > 1 and cols[0].button("Newer", key="audit.newer"):
    state["audit.cursors"].pop()
    st.rerun()
if page.next_before is not None and cols[1].button("Older", key="audit.older"):
    state["audit.cursors"].append(page.next_before)
    st.rerun()
cols[2].caption(f"Page {len(state['audit.cursors'])}, newest first.")
