"""The patient record's "Referral reports" section: the findings other practices sent back on this patient's
referrals, and the way to refer the patient."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import streamlit as st

from dashboard.components import session as ctx
from dashboard.components.pages import page
from warehouse.kernel import formatting as fmt
from warehouse.referrals.queries import referral_reports
from warehouse.security.permissions import REFERRALS_WRITE


def referral_reports_section(practice_id: int, patient_id: int, *, zone: ZoneInfo) -> None:
    with ctx.tenant() as session:
        reports = referral_reports(session, practice_id, patient_id)
    st.subheader("Referral reports")
    if ctx.may(REFERRALS_WRITE) and st.button("Refer to another practice", key="rec.refer"):
        st.session_state["ref.practice"] = practice_id
        st.session_state["ref.patient"] = patient_id
        st.switch_page(page("referrals").path)
    if not reports:
        st.caption("No findings from a referral yet.")
    for report in reports:
        with st.expander(
            f"{fmt.date(report.submitted_at, tz=zone)} · {report.from_practice} · {report.reason}"
        ):
            st.markdown(f"**Findings** ({report.written_by or fmt.EMPTY})  \n{report.findings}")
            if report.diagnoses:
                st.markdown(f"**Diagnoses:** {report.diagnoses}")
            if report.lab_results:
                st.dataframe(
                    [{k: r[k] for k in ("code", "text", "value", "unit", "reference", "flag")} for r in report.lab_results],
                    hide_index=True, width="stretch",
                    column_config={"code": "Code", "text": "Test", "value": "Value", "unit": "Unit",
                                   "reference": "Reference", "flag": "Flag"},
                )  # fmt: skip
            if report.letter:
                st.markdown(f"**Letter**  \n{report.letter}")
