"""Referrals: refer a patient to another practice (also of another franchise) with the owner's consent; the
practice's outgoing referrals (status, letter, revoke); the referrals addressed to it (the read-only history,
accept, findings back, complete)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard.components import session as ctx
from dashboard.runtime import app_runtime
from warehouse.kernel import formatting as fmt
from warehouse.referrals import queries, service
from warehouse.referrals.errors import ReferralError
from warehouse.referrals.letter import referral_letter_pdf
from warehouse.scheduling.patients import patient_choices
from warehouse.schema.referrals import CONSENT_HOWS
from warehouse.security.permissions import RECORDS_READ, REFERRALS_WRITE, NotPermitted


def dutch(frame: pl.DataFrame, moment: str, quantity: str | None = None) -> pl.DataFrame:
    """The grid's ``moment`` column as the practice's local date and time, and ``quantity`` with a decimal
    comma (``0.5`` -> ``0,5``, ``2.0`` -> ``2``); what is not recorded as the empty mark, not "None"."""
    columns = [pl.col(moment).map_elements(lambda t: fmt.date_time(t, zone), return_dtype=pl.String)]
    if quantity:
        columns.append(pl.col(quantity).map_elements(lambda q: fmt.number(q, 3).rstrip("0").rstrip(","),
                                                     return_dtype=pl.String))  # fmt: skip
    return frame.with_columns(columns).with_columns(pl.col(pl.String).fill_null(fmt.EMPTY))


ctx.user()
state = st.session_state
practice_id = ctx.one_practice("ref.practice")
zone = ctx.zone(practice_id)
can_write = ctx.may(REFERRALS_WRITE)
ctx.breadcrumbs("Referrals", ctx.practice_name(practice_id))
st.title("Referrals")
flash = state.pop("ref.flash", None)
if flash:
    st.success(flash)

refer_tab, outgoing_tab, incoming_tab = st.tabs(["Refer", "Outgoing", "Incoming"])

with refer_tab:
    if not can_write:
        st.info(f"Your role at {ctx.here()} cannot refer patients.")
    else:
        with ctx.tenant() as session:
            choices = patient_choices(session, practice_id, query=state.get("ref.query", ""),
                                      patient_id=state.get("ref.patient"))  # fmt: skip
            practices = [p for p in queries.practice_directory(session) if p.id != practice_id]
        by_id = {c.id: c for c in choices}
        st.text_input("Find patient", key="ref.query", placeholder="Name or chip number")
        errors: dict[str, str] = {}
        with st.form("ref.form"):
            patient_id = st.selectbox("Patient", list(by_id), format_func=lambda i: by_id[i].label, index=None,
                                      key="ref.patient")  # fmt: skip
            patient_slot = st.empty()
            names = {p.id: p.label for p in practices}
            to_practice = st.selectbox("Refer to practice", list(names), format_func=names.get, index=None,
                                       key="ref.to")  # fmt: skip
            to_slot = st.empty()
            reason = st.text_area("Reason for referral", key="ref.reason")
            reason_slot = st.empty()
            how = st.selectbox("Owner's consent to share the record, given", CONSENT_HOWS, index=None,
                               format_func=lambda h: h.replace("_", " "), key="ref.how")  # fmt: skip
            how_slot = st.empty()
            days = st.number_input("Record shared for (days)", min_value=1, max_value=service.MAX_VALID_DAYS,
                                   value=service.DEFAULT_VALID_DAYS, key="ref.days")  # fmt: skip
            days_slot = st.empty()
            submitted = st.form_submit_button("Refer", type="primary")
        if submitted:
            if patient_id is None:
                errors["patient_id"] = "Choose the patient."
            elif to_practice is None:
                errors["to_practice_id"] = "Choose the practice to refer to."
            else:
                try:
                    with ctx.tenant() as session:
                        referral = service.refer_patient(
                            session, ctx.actor(), practice_id=practice_id, patient_id=patient_id,
                            to_practice_id=to_practice, reason=reason, consent_how=how or "", valid_days=int(days),
                        )  # fmt: skip
                        until = referral.valid_until
                except ReferralError as exc:
                    errors[exc.field] = str(exc)
                except NotPermitted as exc:
                    errors["patient_id"] = str(exc)
                else:
                    state["ref.flash"] = (
                        f"Referred to {names[to_practice]}; the record is shared until {fmt.date(until, tz=zone)}."
                    )
                    st.rerun()
        ctx.field_errors(errors, {"patient_id": patient_slot, "to_practice_id": to_slot, "reason": reason_slot,
                                  "consent_how": how_slot, "valid_days": days_slot})  # fmt: skip

with outgoing_tab:
    with ctx.tenant() as session:
        outgoing = queries.outgoing_referrals(session, practice_id, now=ctx.now())
    if not outgoing.height:
        st.caption("No referrals made yet.")
    for row in outgoing.iter_rows(named=True):
        with st.expander(f"{row['patient']} → {row['other_practice']} · {row['status']} · "
                         f"until {fmt.date(row['valid_until'], tz=zone)}"):  # fmt: skip
            st.markdown(f"**Reason:** {row['reason']}  \n**Referring vet:** {row['referring_vet']}  \n"
                        f"**Findings received:** {row['reports']}")  # fmt: skip
            with ctx.tenant() as session:
                pdf = referral_letter_pdf(
                    session, practice_id, row["id"], master_key=app_runtime().master_key()
                )
            st.download_button("Referral letter (PDF)", pdf, file_name=f"referral-{row['id']}.pdf",
                               mime="application/pdf", key=f"ref.letter.{row['id']}")  # fmt: skip
            if can_write and row["status"] in ("open", "accepted", "not yet valid"):
                revoke_reason = st.text_input("Why revoke", key=f"ref.revoke_reason.{row['id']}")
                if st.button("Revoke", key=f"ref.revoke.{row['id']}"):
                    try:
                        with ctx.tenant() as session:
                            service.revoke_referral(session, ctx.actor(), practice_id=practice_id,
                                                    referral_id=row["id"], reason=revoke_reason)  # fmt: skip
                    except (ReferralError, NotPermitted) as exc:
                        st.error(str(exc))
                    else:
                        state["ref.flash"] = "Referral revoked: the other practice no longer sees the record."
                        st.rerun()

with incoming_tab:
    with ctx.tenant() as session:
        incoming = queries.incoming_referrals(session, [practice_id], now=ctx.now())
    if not incoming.height:
        st.caption("No referrals addressed to this practice.")
    for row in incoming.iter_rows(named=True):
        key = f"{row['practice_id']}.{row['id']}"
        active = row["status"] in ("open", "accepted")
        with st.expander(f"{row['patient']} from {row['other_practice']} · {row['status']}", expanded=active):
            st.markdown(f"**Reason:** {row['reason']}  \n**Referring vet:** {row['referring_vet']}  \n"
                        f"**Shared until:** {fmt.date(row['valid_until'], tz=zone)}")  # fmt: skip
            if not active:
                continue
            if ctx.may(RECORDS_READ) and st.button("Read the history", key=f"ref.read.{key}"):
                state["ref.reading"] = (row["practice_id"], row["id"])
            if state.get("ref.reading") == (row["practice_id"], row["id"]):
                try:
                    with ctx.tenant() as session:
                        history = queries.referred_history(
                            session, ctx.actor(), practice_id=row["practice_id"], referral_id=row["id"],
                            master_key=app_runtime().master_key(),
                        )  # fmt: skip
                except (ReferralError, NotPermitted) as exc:
                    st.error(str(exc))
                else:
                    st.markdown(
                        f"**Owner:** {history.owner_name or fmt.EMPTY} · {history.owner_phone or fmt.EMPTY}"
                    )
                    st.dataframe(dutch(history.visits, "started_at"), hide_index=True, width="stretch", column_config={
                        "started_at": "When", "reason": "Reason", "subjective": "Subjective",
                        "objective": "Objective", "assessment": "Assessment", "plan": "Plan",
                        "diagnoses": "Diagnoses"})  # fmt: skip
                    st.dataframe(dutch(history.lab_results, "observed_at"), hide_index=True, width="stretch",
                                 column_config={
                        "observed_at": "Observed", "code": "Code", "text": "Test", "value": "Value",
                        "unit": "Unit", "flag": "Flag"})  # fmt: skip
                    st.dataframe(dutch(history.prescriptions, "prescribed_at", "quantity"), hide_index=True,
                                 width="stretch", column_config={
                        "prescribed_at": "Prescribed", "product_name": "Medicine", "quantity": "Quantity",
                        "dosage_instructions": "Dosage"})  # fmt: skip
            if not can_write:
                continue
            if row["status"] == "open" and st.button("Accept", key=f"ref.accept.{key}"):
                try:
                    with ctx.tenant() as session:
                        service.accept_referral(session, ctx.actor(), practice_id=row["practice_id"],
                                                referral_id=row["id"])  # fmt: skip
                except (ReferralError, NotPermitted) as exc:
                    st.error(str(exc))
                else:
                    state["ref.flash"] = "Referral accepted."
                    st.rerun()
            errors = {}
            with st.form(f"ref.findings.{key}"):
                findings = st.text_area("Findings", key=f"ref.f.text.{key}")
                findings_slot = st.empty()
                diagnosis = st.text_input("Diagnosis", key=f"ref.f.diagnosis.{key}")
                letter = st.text_area("Letter to the referring vet", key=f"ref.f.letter.{key}")
                complete = st.checkbox(
                    "The referral is completed (ends our access)", key=f"ref.f.complete.{key}"
                )
                sent = st.form_submit_button("Send findings", type="primary")
            if sent:
                try:
                    with ctx.tenant() as session:
                        service.send_findings(
                            session, ctx.actor(), practice_id=row["practice_id"], referral_id=row["id"],
                            findings=findings, diagnoses=[service.Finding(diagnosis.strip())] if diagnosis.strip() else [],
                            letter=letter,
                        )  # fmt: skip
                        if complete:
                            service.complete_referral(session, ctx.actor(), practice_id=row["practice_id"],
                                                      referral_id=row["id"])  # fmt: skip
                except (ReferralError, NotPermitted) as exc:
                    errors["findings"] = str(exc)
                else:
                    state["ref.flash"] = f"Findings sent to {row['other_practice']}."
                    st.rerun()
            ctx.field_errors(errors, {"findings": findings_slot})
